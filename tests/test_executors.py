"""Executor contract tests: every executor gives the local executor's outcomes, in order; lost jobs
(an evaluator that raises, a worker process that dies) become failed outcomes after exactly one retry.

Test evaluators live in this module; worker processes import it by name (spawn passes ``sys.path``,
and the Ray test puts this folder on the workers' PYTHONPATH).
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lapt.errors import UserError
from lapt.spaces import get_space
from lapt.tools.evaluation import Outcome
from lapt.tools.executors import EvaluatorSpec, Job, make_executor, table_spec

HERE = Path(__file__).parent
ARCHS = [get_space("nb201").to_str(g) for g in list(get_space("nb201").enumerate())[::1953][:8]]
TASK = "cifar100"


# -- evaluators the workers rebuild from specs -----------------------------------------------------
class _Counting:
    """Appends one line per attempt to ``log`` so the test can count attempts across processes."""

    name = "test"

    def __init__(self, log: str) -> None:
        self.log = log

    def settings(self) -> dict[str, Any]:
        return {"evaluator": self.name}

    def attempt(self, arch: str) -> int:
        with open(self.log, "a") as f:
            f.write(f"{arch}\n")
        return Path(self.log).read_text().splitlines().count(arch)


class RaisingEvaluator(_Counting):
    """Raises for the architecture ``bad``; scores everything else by its string length."""

    def __init__(self, log: str, bad: str) -> None:
        super().__init__(log)
        self.bad = bad

    def evaluate(self, space: Any, genotype: Any, task: str) -> Outcome:
        arch = space.to_str(genotype)
        self.attempt(arch)
        if arch == self.bad:
            raise RuntimeError(f"cannot evaluate {arch}")
        return Outcome(status="ok", val=float(len(arch)))


class FlakyEvaluator(_Counting):
    """Raises on the first attempt at each architecture, succeeds on the second."""

    def evaluate(self, space: Any, genotype: Any, task: str) -> Outcome:
        arch = space.to_str(genotype)
        if self.attempt(arch) == 1:
            raise ConnectionError("worker lost")
        return Outcome(status="ok", val=1.0)


class ExitingEvaluator(_Counting):
    """Kills its whole worker process (``os._exit``) for the architecture ``bad``."""

    def __init__(self, log: str, bad: str) -> None:
        super().__init__(log)
        self.bad = bad

    def evaluate(self, space: Any, genotype: Any, task: str) -> Outcome:
        arch = space.to_str(genotype)
        self.attempt(arch)
        if arch == self.bad:
            os._exit(3)
        return Outcome(status="ok", val=float(len(arch)))


class RendezvousEvaluator:
    """Each job waits until ``n`` jobs have started: it only succeeds if they really run at once."""

    name = "rendezvous"

    def __init__(self, folder: str, n: int, wait_s: float = 20.0) -> None:
        self.folder = Path(folder)
        self.n = n
        self.wait_s = wait_s

    def settings(self) -> dict[str, Any]:
        return {"evaluator": self.name}

    def evaluate(self, space: Any, genotype: Any, task: str) -> Outcome:
        (self.folder / f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}").touch()
        deadline = time.monotonic() + self.wait_s
        while len(list(self.folder.iterdir())) < self.n:
            if time.monotonic() > deadline:
                return Outcome(status="failed", error="ran alone")
            time.sleep(0.01)
        return Outcome(status="ok", val=1.0)


def _spec(cls: type, **kwargs: Any) -> EvaluatorSpec:
    return EvaluatorSpec(f"{__name__}:{cls.__name__}", kwargs)


def _jobs(evaluator: Any, archs: list[str] = ARCHS) -> list[Job]:
    return [Job("nb201", a, TASK, evaluator) for a in archs]


def _content(outcomes: list[Outcome]) -> list[tuple[str, float | None, float | None, str | None]]:
    return [(o.status, o.val, o.test, o.error) for o in outcomes]


@pytest.fixture(scope="module")
def local_outcomes() -> list[Outcome]:
    with make_executor("local") as ex:
        return ex.map(_jobs(table_spec("nb201")))


EXECUTORS = [("local", None), ("threads", 2), ("processes", 2)]


@pytest.fixture(scope="module", params=EXECUTORS, ids=[name for name, _ in EXECUTORS])
def executor(request):
    """One executor of each kind for the contract tests (worker processes start once per module)."""
    name, workers = request.param
    with make_executor(name, workers) as ex:
        yield ex


# -- the contract, for every single-machine executor -------------------------------------------------
def test_tabular_outcomes_match_local_and_the_table(executor, local_outcomes, tmp_path):
    from lapt.tables.builtin import load_table

    table = load_table("nb201")
    expected = [table.lookup(get_space("nb201").from_str(a), TASK) for a in ARCHS]
    assert [(o.val, o.test) for o in local_outcomes] == [(m.val, m.test) for m in expected]
    bad = ARCHS[2]
    assert _content(executor.map(_jobs(table_spec("nb201")))) == _content(local_outcomes)
    # a raising evaluator: only its job fails, after exactly two attempts; the others are untouched
    log = tmp_path / "attempts.log"
    out = executor.map(_jobs(_spec(RaisingEvaluator, log=str(log), bad=bad)))
    assert [o.status for o in out] == ["ok", "ok", "failed", "ok", "ok", "ok", "ok", "ok"]
    assert "RuntimeError: cannot evaluate" in (out[2].error or "")
    assert out[2].extras == {"attempts": 2, "lost": True}
    assert log.read_text().splitlines().count(bad) == 2
    assert all(log.read_text().splitlines().count(a) == 1 for a in ARCHS if a != bad)
    assert [o.val for i, o in enumerate(out) if i != 2] == [float(len(a)) for i, a in enumerate(ARCHS) if i != 2]


def test_a_job_lost_once_succeeds_on_its_retry(executor, tmp_path):
    log = tmp_path / "attempts.log"
    out = executor.map(_jobs(_spec(FlakyEvaluator, log=str(log)), ARCHS[:3]))
    assert [o.status for o in out] == ["ok", "ok", "ok"]
    assert all(o.extras["attempts"] == 2 and "ConnectionError" in o.extras["retried"] for o in out)
    assert sorted(log.read_text().splitlines()) == sorted(ARCHS[:3] * 2)


def test_a_worker_process_that_dies_fails_only_its_own_trial(tmp_path):
    log = tmp_path / "attempts.log"
    bad = ARCHS[1]
    with make_executor("processes", 2) as ex:
        out = ex.map(_jobs(_spec(ExitingEvaluator, log=str(log), bad=bad), ARCHS[:4]))
        # the pool was replaced: the executor keeps working
        again = ex.map(_jobs(table_spec("nb201"), ARCHS[:2]))
    assert [o.status for o in out] == ["ok", "failed", "ok", "ok"]
    assert "BrokenProcessPool" in (out[1].error or "")
    assert log.read_text().splitlines().count(bad) == 2
    assert [o.val for o in out if o.status == "ok"] == [float(len(a)) for a in ARCHS[:4] if a != bad]
    assert [o.status for o in again] == ["ok", "ok"]


def test_parallel_executors_run_a_batch_at_once_and_local_runs_one_job_at_a_time(executor, tmp_path):
    # each job waits for the other to start: both succeed only if they run at the same time; one after
    # the other, the first gives up alone and the second finds the first's mark
    wait_s = 0.3 if executor.name == "local" else 20.0
    out = executor.map(_jobs(_spec(RendezvousEvaluator, folder=str(tmp_path), n=2, wait_s=wait_s), ARCHS[:2]))
    expected = ["failed", "ok"] if executor.name == "local" else ["ok", "ok"]
    assert [o.status for o in out] == expected, out


class ConcurrencyProbe:
    """Records how many evaluations ran at the same time in this process."""

    name = "probe"

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def settings(self) -> dict[str, Any]:
        return {"evaluator": self.name}

    def evaluate(self, space: Any, genotype: Any, task: str) -> Outcome:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
        return Outcome(status="ok", val=1.0)


def test_local_executor_runs_one_job_at_a_time_even_from_threads():
    probe = ConcurrencyProbe()
    ex = make_executor("local")
    threads = [threading.Thread(target=ex.run, args=(Job("nb201", a, TASK, probe),)) for a in ARCHS[:4]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert probe.peak == 1
    with make_executor("threads", 2) as pool:
        assert [o.status for o in pool.map(_jobs(probe, ARCHS[:4]))] == ["ok"] * 4
    assert probe.peak == 2


# -- options and errors ------------------------------------------------------------------------------
def test_bad_executor_options_are_user_errors():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with pytest.raises(UserError, match="exceeds"):
        make_executor("processes", cores + 1)
    with pytest.raises(UserError, match="--workers must be >= 1"):
        make_executor("threads", 0)
    with pytest.raises(UserError, match="unknown executor"):
        make_executor("gpu-farm")
    with make_executor("threads", 1) as ex:
        assert ex.threads_per_trial == cores


def test_executor_ray_without_ray_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    from lapt.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the extra looks like
    code = main(["run", "--source", "cifar10", "--target", "cifar100", "--budget", "2", "--executor", "ray",
                 "--run-dir", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == "lapt: error: --executor ray needs Ray: pip install 'lapt[ray]'"
    assert not (tmp_path / "run").exists()


# -- the training evaluator as an Evaluator -----------------------------------------------------------
def test_training_adapter_translates_genotypes_and_results(nb201, darts):
    from lapt.runs.config import TrainSettings
    from lapt.tools.executors import build_evaluator, training_spec
    from lapt.tools.train_adapter import genotype_json, make_training_evaluator, outcome_of

    g = next(iter(nb201.enumerate()))
    assert genotype_json(nb201, g) == list(g) and all(isinstance(op, str) for op in g)
    dg = darts.sample(darts.full_mask(), random.Random(0))
    layers = genotype_json(darts, dg)
    assert len(layers) == 8 and all(len(layer) == 2 and isinstance(layer[0][1], int) for layer in layers)
    ok = outcome_of({"status": "ok", "val_acc": 91.5, "test_acc": 90.0, "train_seconds": 3.5, "params": 0.01,
                     "flops": 1.2, "peak_memory_mb": 400.0, "device": "cpu", "error": None, "failure": None})
    assert (ok.status, ok.val, ok.test, ok.cost_s, ok.error) == ("ok", 91.5, 90.0, 3.5, None)
    assert ok.extras == {"params": 0.01, "flops": 1.2, "peak_memory_mb": 400.0, "device": "cpu"}
    bad = outcome_of({"status": "failed", "val_acc": None, "error": "NonFiniteLossError: nan", "failure": "nan"})
    assert (bad.status, bad.val, bad.error) == ("failed", None, "NonFiniteLossError: nan")
    assert bad.extras == {"failure": "nan"}
    assert outcome_of({"status": "invalid", "error": "TrainingInputError: x"}).status == "failed"
    with pytest.raises(UserError, match=r"train\.learning_rate: Extra inputs are not permitted"):
        make_training_evaluator({"epochs": 1, "learning_rate": 0.1})
    with pytest.raises(UserError, match=r"train\.net: 'width' is not a setting of the nb201 network"):
        make_training_evaluator({"net": {"width": 8}}, "nb201")
    toy = str(Path(__file__).resolve().parents[1] / "examples" / "toy_space" / "toy_space.toml")
    with pytest.raises(UserError, match=r"toy_space\.toml' cannot be evaluated by training"):
        make_training_evaluator({}, toy)
    # workers rebuild the same evaluator from the spec; torch threads are the executor's share
    spec = training_spec(TrainSettings(epochs=1, net={"C": 4, "N": 1}), threads_per_trial=1, space="nb201")
    rebuilt = build_evaluator(spec)
    assert rebuilt.name == "train"
    assert rebuilt.settings()["num_threads"] == 1 and rebuilt.settings()["net"] == {"C": 4, "N": 1}
    assert build_evaluator(spec) is rebuilt  # once per process


# -- the graph: a batch evaluated in parallel gives the sequential run's trials -----------------------
@pytest.mark.parametrize("name", ["threads", "processes"])
def test_runs_on_parallel_executors_equal_the_local_run(name: str):
    import lapt

    def content(result: Any) -> list[dict[str, Any]]:
        return [t.model_dump(mode="json", exclude={"cost_s"}) for t in result.trials]

    common: dict[str, Any] = {"space": "nb201", "sources": ["cifar10"], "target": "cifar100", "budget": 12,
                              "seed": 3, "batch_size": 4}
    ref = lapt.run(**common)
    par = lapt.run(**common, executor=name, workers=2)
    assert len(ref.trials) == 12
    assert content(par) == content(ref)
    assert par.summary["best"] == ref.summary["best"]
    assert par.settings.executor == name


# -- Ray: a local cluster on 127.0.0.1 ---------------------------------------------------------------
@pytest.mark.ray
def test_ray_executor_on_a_local_loopback_cluster(monkeypatch, local_outcomes, tmp_path):
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray's single-machine mode: loopback only
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.fail("a Ray from another test is still running")
    from lapt.tools.executors.ray_cluster import RayExecutor

    ex = RayExecutor(workers=2, cpus_per_trial=1)
    try:
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        assert ray.cluster_resources()["CPU"] == 2
        assert _content(ex.map(_jobs(table_spec("nb201")))) == _content(local_outcomes)
        log = tmp_path / "attempts.log"
        out = ex.map(_jobs(_spec(RaisingEvaluator, log=str(log), bad=ARCHS[0]), ARCHS[:3]))
        assert [o.status for o in out] == ["failed", "ok", "ok"]
        assert "cannot evaluate" in (out[0].error or "")
        exit_log = tmp_path / "exit.log"
        out = ex.map(_jobs(_spec(ExitingEvaluator, log=str(exit_log), bad=ARCHS[1]), ARCHS[:3]))
        assert [o.status for o in out] == ["ok", "failed", "ok"]
        assert "WorkerCrashedError" in (out[1].error or "")
        assert exit_log.read_text().splitlines().count(ARCHS[1]) == 2
        # a whole run on the Ray that is already up: joined, not shut down, same trials as a local run
        import lapt

        common: dict[str, Any] = {"space": "nb201", "sources": ["cifar10"], "target": "cifar100", "budget": 8,
                                  "batch_size": 4}
        par = lapt.run(**common, executor="ray")
        assert ray.is_initialized()
        ref = lapt.run(**common)
        assert [t.model_dump(exclude={"cost_s"}) for t in par.trials] == [
            t.model_dump(exclude={"cost_s"}) for t in ref.trials
        ]
    finally:
        ex.close()
    assert not ray.is_initialized()
