"""Training and inference throughput (images/s) of NB201 and DARTS networks on this machine.

Run: ``python perf/train_throughput.py`` (CPU defaults take well under a minute on 2 idle cores; other
busy processes slow multi-threaded CPU runs many times over, so try ``--threads 1`` then), or
``python perf/train_throughput.py --device cuda`` for the GPU path the trainer uses (bf16 autocast,
channels-last, cuDNN autotuning). Each row shows the batch size and precision it was measured with.
The step is the trainer's: SGD with Nesterov momentum, cross-entropy, one optimizer step per batch.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

NB201_BEST = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3")


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=None, help="default: 32 on CPU, 256 on CUDA")
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement (CPU 2, CUDA 30)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (CPU 1, CUDA 5)")
    p.add_argument(
        "--precision", choices=("auto", "fp32", "bf16"), default="auto", help="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--nb201-C", type=int, default=16)
    p.add_argument("--nb201-N", type=int, default=5)
    p.add_argument("--darts-C", type=int, default=None, help="default: 16 on CPU, 36 on CUDA")
    p.add_argument("--darts-layers", type=int, default=None, help="default: 8 on CPU, 20 on CUDA")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    return p.parse_args()


def _measure(
    model: Any, batch: int, image_size: int, steps: int, warmup: int, device: Any, bf16: bool, train: bool
) -> float:
    """Images per second over ``steps`` timed steps; synchronises only around the timed block."""
    import torch

    cuda = device.type == "cuda"
    x = torch.randn(batch, 3, image_size, image_size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    criterion = torch.nn.CrossEntropyLoss()
    model.train(train)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            logits = out[0] if isinstance(out, tuple) else out
            if train:
                loss = criterion(logits, y)
        if train:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    with torch.set_grad_enabled(train):
        for _ in range(warmup):
            step()
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    args = _parse()
    import torch

    from lapt.tools.nets import DARTS_V2, build_network, count_flops, count_params
    from lapt.tools.train.device import resolve_device, set_threads

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    threads = set_threads(args.threads) if not cuda else 0
    if cuda:
        torch.backends.cudnn.benchmark = True
    batch = args.batch_size or (256 if cuda else 32)
    steps = args.steps or (30 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and cuda)
    precision = "bf16 autocast" if bf16 else "fp32"
    darts_c = args.darts_C or (36 if cuda else 16)
    darts_layers = args.darts_layers or (20 if cuda else 8)
    nets = [
        (f"nb201 C={args.nb201_C} N={args.nb201_N}", "nb201", NB201_BEST, {"C": args.nb201_C, "N": args.nb201_N}),
        (f"darts C={darts_c} L={darts_layers}", "darts", DARTS_V2, {"C": darts_c, "layers": darts_layers}),
    ]
    where = f"{device}" + (f" ({torch.cuda.get_device_name(device)})" if cuda else f" ({threads} threads)")
    print(
        f"device {where}; image {args.image_size}x{args.image_size}x3; {steps} timed steps after "
        f"{warmup} warm-up; torch {torch.__version__}"
    )
    header = (
        f"{'network':<20} {'params M':>9} {'FLOPs M':>9} {'batch':>6} {'precision':>14} "
        f"{'train img/s':>12} {'infer img/s':>12}"
    )
    print(header)
    print("-" * len(header))
    for label, space, genotype, net in nets:
        model = build_network(space, genotype, num_classes=10, in_channels=3, **net)
        params = count_params(model) / 1e6
        flops = count_flops(model, (3, args.image_size, args.image_size)) / 1e6
        model = model.to(device)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        train_ips = _measure(model, batch, args.image_size, steps, warmup, device, bf16, train=True)
        infer_ips = _measure(model, batch, args.image_size, steps, warmup, device, bf16, train=False)
        print(
            f"{label:<20} {params:>9.3f} {flops:>9.1f} {batch:>6} {precision:>14} {train_ips:>12.1f} {infer_ips:>12.1f}"
        )
        del model
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
