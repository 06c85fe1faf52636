"""The trainer learns, and every way a trial can break comes back as data, not as an exception."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from lapt.tools.nets import NB201Network  # noqa: E402 - after the importorskip guard
from lapt.tools.train import TrainingInputError  # noqa: E402
from lapt.tools.train import trial as trial_module  # noqa: E402
from lapt.tools.train.datasets import load_dataset  # noqa: E402
from lapt.tools.train.trainer import TrainConfig, Trainer, _random_crop_flip  # noqa: E402
from lapt.tools.train.trial import run_trial  # noqa: E402

CELL = ["nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "skip_connect", "nor_conv_1x1"]
TINY = {"C": 4, "N": 1}
THREADS = 1  # 1 thread: stays within the 2 cores even while another test process runs


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k", max_train_images=2000)


@pytest.fixture(scope="module")
def mnist_small():
    return load_dataset("mnist5k", max_train_images=256)


@pytest.fixture(scope="module")
def mnist_tiny(mnist_small):
    """128 training and 100 validation/test images: enough to run the slower DARTS network once."""
    d = mnist_small
    return dataclasses.replace(d, x_train=d.x_train[:128], y_train=d.y_train[:128], x_val=d.x_val[:100],
                               y_val=d.y_val[:100], x_test=d.x_test[:100], y_test=d.y_test[:100])


def _config(**overrides) -> TrainConfig:
    settings = {"epochs": 1, "batch_size": 64, "lr": 0.1, "num_threads": THREADS, "device": "cpu"}
    return TrainConfig(**{**settings, **overrides})


def test_one_epoch_on_mnist5k_learns(mnist):
    result = run_trial("nb201", CELL, mnist, _config(batch_size=32), TINY)
    assert result["status"] == "ok", result["error"]
    assert result["val_acc"] > 20 and result["test_acc"] > 20  # chance is 10 %
    assert result["params"] > 0 and result["flops"] > 0 and result["train_seconds"] > 0
    assert result["peak_memory_mb"] > 0 and result["device"] == "cpu"
    assert result["split"] == {"train": 2000, "val": 500, "test": 500}
    assert result["error"] is None and result["failure"] is None
    assert torch.get_num_threads() == THREADS


def test_same_seed_same_result(mnist_small):
    a = run_trial("nb201", CELL, mnist_small, _config(seed=3), TINY)
    b = run_trial("nb201", CELL, mnist_small, _config(seed=3), TINY)
    assert (a["val_acc"], a["train_loss"]) == (b["val_acc"], b["train_loss"])


def test_darts_with_aux_head_and_label_smoothing_trains(mnist_tiny):
    genotype = [[["sep_conv_3x3", 0], ["skip_connect", 1]]] * 8
    net = {"C": 8, "layers": 5, "auxiliary": True, "drop_path_prob": 0.1}
    result = run_trial("darts", genotype, mnist_tiny, _config(label_smoothing=0.1, grad_clip=5.0), net)
    assert result["status"] == "ok", result["error"]


def test_tnb101_trains(mnist_small):
    result = run_trial("tnb101", ["nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "none"],
                       mnist_small, _config(), {"C": 8})
    assert result["status"] == "ok", result["error"]


def test_nan_loss_is_a_failed_trial(mnist_small):
    result = run_trial("nb201", CELL, mnist_small, _config(lr=1e6), TINY)
    assert result["status"] == "failed" and result["failure"] == "nan"
    assert result["error"].startswith("NonFiniteLossError:")
    assert result["val_acc"] is None and result["params"] is not None


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "OutOfMemoryError"),
        (RuntimeError("CUDA error: out of memory"), "RuntimeError"),
    ],
)
def test_out_of_memory_is_a_failed_trial_and_memory_is_released(monkeypatch, mnist_small, exc, name):
    def explode(self, x):
        raise exc

    released = []
    real_release = trial_module.release_memory
    monkeypatch.setattr(NB201Network, "forward", explode)
    monkeypatch.setattr(trial_module, "release_memory", lambda d: (released.append(d), real_release(d)))
    result = run_trial("nb201", CELL, mnist_small, _config(), TINY)
    assert result["status"] == "failed" and result["failure"] == "oom"
    assert result["error"].startswith(f"{name}:") and "out of memory" in result["error"]
    assert released == [torch.device("cpu")]


def test_a_network_that_cannot_be_built_is_a_failed_trial(mnist_small):
    result = run_trial("tnb101", ["none"] * 6, mnist_small, _config(), {"C": 5})
    assert result["status"] == "failed" and result["failure"] == "build"
    assert result["error"].startswith("NetworkBuildError:") and result["params"] is None


def test_any_other_error_is_a_failed_trial(monkeypatch, mnist_small):
    def broken(self, x):
        raise ValueError("shapes do not line up\nsecond line")

    monkeypatch.setattr(NB201Network, "forward", broken)
    result = run_trial("nb201", CELL, mnist_small, _config(), TINY)
    assert result["status"] == "failed" and result["failure"] == "error"
    assert result["error"] == "ValueError: shapes do not line up"


@pytest.mark.parametrize(
    "overrides", [{"epochs": 0}, {"lr": 0.0}, {"label_smoothing": 1.0}, {"device": "tpu"}, {"num_threads": 0}]
)
def test_bad_settings_raise_training_input_error(overrides):
    with pytest.raises(TrainingInputError):
        Trainer(_config(**overrides))


def test_crop_flip_keeps_pixels_and_shapes():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    out = _random_crop_flip(x, torch.Generator().manual_seed(0), pad=0)
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    padded = _random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert padded.shape == x.shape


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_in_bf16(mnist_small):
    result = run_trial("nb201", CELL, mnist_small, _config(device="cuda"), TINY)
    assert result["status"] == "ok", result["error"]
    assert result["device"].startswith("cuda") and result["peak_memory_mb"] > 0
