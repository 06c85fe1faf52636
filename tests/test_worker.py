"""The JSON worker (in process and as a subprocess) and the TrainingEvaluator built on it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from lapt.tools.train.worker import run_request
from lapt.tools.training_evaluator import TrainingEvaluator

CELL = ["nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "skip_connect", "nor_conv_1x1"]
QUICK = {"net": {"C": 4, "N": 1}, "max_train_images": 256, "batch_size": 64, "lr": 0.1}
FORBIDDEN = ("pydantic", "langchain", "langgraph", "langsmith", "openai")
RESULT_KEYS = {"status", "val_acc", "test_acc", "params", "flops", "train_seconds", "peak_memory_mb",
               "device", "error", "split"}


def _request(**overrides):
    return {"space": "nb201", "genotype": CELL, "num_threads": 1, "device": "cpu", **QUICK, **overrides}


def test_in_process_request_round_trips_as_json():
    result = run_request(_request(task="cifar10"))
    assert result["status"] == "ok", result["error"]
    assert set(result) >= RESULT_KEYS
    assert result["split"] == {"train": 256, "val": 500, "test": 500}
    assert result["task"] == "cifar10" and result["request"]["epochs"] == 1  # defaults filled in
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"epoch": 2}, "unknown request field"),
        ({"space": "nasnet"}, "unknown space"),
        ({"genotype": ["nor_conv_3x3"] * 5}, "6 op names"),
        ({"genotype": ["conv"] * 6}, "unknown op"),
        ({"space": "darts", "genotype": [[["sep_conv_3x3", 0], ["sep_conv_3x3", 0]]] * 8, "net": {}}, "differ"),
        ({"epochs": 0}, "epochs must be"),
        ({"lr": "fast"}, "lr must be"),
        ({"batch_size": True}, "batch_size must be"),
        ({"net": {"width": 8}}, "net: 'width' is not a setting of the nb201 network (it takes C, N)"),
        ({"net": {"C": 2.5}}, "net: C must be an integer in [1, 1024], got 2.5"),
        ({"net": {"C": "8"}}, "net: C must be an integer"),
        ({"seed": 2**32}, "seed must be an integer in [0, 2**32)"),
        ({"space": "tnb101", "genotype": ["none"] * 6, "net": {"C": 5}}, "C must be an even integer"),
        ({"dataset": "imagenet"}, "unknown dataset"),
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_bad_requests_are_invalid_not_failed(overrides, match):
    result = run_request(_request(**overrides))
    assert result["status"] == "invalid"
    assert match in result["error"] and result["error"].startswith("TrainingInputError:")


def test_missing_fields_and_non_objects_are_invalid():
    assert "missing request field(s): genotype" in run_request({"space": "nb201"})["error"]
    assert run_request(["nb201"])["status"] == "invalid"


def test_unbuildable_network_is_failed_not_invalid():
    from lapt.tools.train.datasets import load_dataset
    from lapt.tools.train.trainer import TrainConfig
    from lapt.tools.train.trial import run_trial

    # A trial given settings its network cannot take fails as a trial (requests are refused earlier).
    data = load_dataset("mnist5k", max_train_images=64)
    result = run_trial("tnb101", ["none"] * 6, data, TrainConfig(device="cpu", num_threads=1), {"C": 5})
    assert result["status"] == "failed" and result["failure"] == "build" and "even" in result["error"]


def _run_worker(payload: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-m", "lapt.tools.train.worker"], input=payload,
                          capture_output=True, text=True, timeout=120, check=False)


def test_subprocess_worker_imports_no_llm_stack():
    # The child trains with one thread while this process waits.
    proc = _run_worker(json.dumps(_request()), "-X", "importtime")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "ok", result["error"]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "lapt.tools.train.trial" in imported  # importtime did report the imports (worker is __main__)
    assert not {m for m in imported if m.split(".")[0] in FORBIDDEN}


def test_subprocess_worker_reports_unreadable_json_as_invalid():
    proc = _run_worker("{not json")
    assert proc.returncode == 0
    result = json.loads(proc.stdout)
    assert result["status"] == "invalid" and "not valid JSON" in result["error"]


def test_evaluator_module_does_not_import_torch():
    code = ("import sys, lapt.tools.training_evaluator as t; t.TrainingEvaluator().settings(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_evaluator_settings_are_a_stable_cache_key():
    a = TrainingEvaluator(epochs=2, net={"nb201": {"C": 8}}, in_process=True)
    b = TrainingEvaluator(epochs=2, net={"nb201": {"C": 8}}, in_process=False, timeout_s=60)
    assert a.settings() == b.settings()  # how a trial runs does not change its result
    assert a.settings() != TrainingEvaluator(epochs=3).settings()
    json.dumps(a.settings())
    assert a.request("nb201", tuple(CELL))["net"] == {"C": 8}
    assert a.request("darts", [])["net"] == {}
    assert TrainingEvaluator(net={"C": 8}).request("tnb101", [])["net"] == {"C": 8}


@pytest.mark.parametrize("in_process", [True, False])
def test_evaluator_trains_in_process_and_in_a_subprocess(in_process):
    evaluator = TrainingEvaluator(num_threads=1, device="cpu", in_process=in_process, **QUICK)
    result = evaluator.evaluate("nb201", tuple(CELL), task="cifar10")
    assert result["status"] == "ok", result["error"]
    assert result["task"] == "cifar10" and result["params"] > 0


def test_evaluator_reports_a_dead_worker_as_failed(monkeypatch):
    evaluator = TrainingEvaluator(in_process=False, timeout_s=0.01)
    result = evaluator.evaluate("nb201", CELL)
    assert result["status"] == "failed" and result["error"].startswith("TimeoutExpired")
    assert set(result) >= RESULT_KEYS


def test_unexpected_error_while_loading_is_failed_not_raised(monkeypatch):
    import lapt.tools.train.worker as worker

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(worker, "load_dataset", broken)
    result = worker.run_request(_request())
    assert result["status"] == "failed" and result["error"] == "OSError: disk gone"
