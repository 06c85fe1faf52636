"""The run's record: one writer, repaired on resume to match the checkpoint exactly, checkpoints of
constant size, and folders that are not this run's never touched."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_resume import BUDGET, RUN, assert_same_run, crashed_run, fresh_source_hash, lines, reference, snapshot

import lapt
from lapt.graph.build import build_graph
from lapt.graph.durable import CHECKPOINTS, open_saver, thread_config
from lapt.schemas import Trial


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, timeout=120)


def checkpoint_values(run: Path) -> dict[str, Any]:
    saver = open_saver(run / CHECKPOINTS)
    try:
        return dict(build_graph(saver).get_state(thread_config()).values)
    finally:
        saver.close()


def write_lines(path: Path, entries: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference(tmp_path_factory, 3)


def test_files_behind_the_checkpoint_by_one_step_are_completed_from_it(tmp_path, ref):
    run = tmp_path / "r"
    crashed_run(run, crash_at=17)
    values = checkpoint_values(run)
    n = values["n_trials"]
    assert values["trials"] and values["trials"][-1]["index"] == n - 1  # the checkpoint holds its last batch
    write_lines(run / "trials.jsonl", lines(run / "trials.jsonl")[: n - 1])  # killed before the write
    lapt.api.resume(run)
    assert_same_run(run, ref)


def test_files_ahead_of_the_checkpoint_and_torn_lines_are_cut_back(tmp_path, ref):
    run = tmp_path / "r"
    crashed_run(run, crash_at=17)
    checkpoint_values(run)["n_trials"]
    trials = lines(run / "trials.jsonl")
    extra = [{**t, "index": len(trials) + i} for i, t in enumerate(trials[:3])]  # written, never checkpointed
    write_lines(run / "trials.jsonl", trials + extra)
    with open(run / "trials.jsonl", "a") as fh:
        fh.write('{"index": 99, "arch": "|nor_')  # the line the kill cut
    masks = sorted((run / "masks").glob("v*.json"))
    ahead = json.loads(masks[-1].read_text()) | {"version": len(masks)}
    (run / "masks" / f"v{len(masks)}.json").write_text(json.dumps(ahead))
    lapt.api.resume(run)
    assert_same_run(run, ref)


def test_a_record_damaged_beyond_the_last_step_is_refused_and_left_alone(tmp_path):
    run = tmp_path / "r"
    crashed_run(run, crash_at=17)
    n = checkpoint_values(run)["n_trials"]
    write_lines(run / "trials.jsonl", lines(run / "trials.jsonl")[: n - 5])
    before = snapshot(run)
    out = cli("resume", str(run), "--quiet")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "trials.jsonl holds" in out.stderr and "more than the last step" in out.stderr
    assert snapshot(run) == before


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda run: __import__("shutil").rmtree(run / "masks"), "masks/ is missing"),
        (lambda run: (__import__("shutil").rmtree(run / "masks"), (run / "masks").write_text("x")), "masks/ is a file"),
        (lambda run: (run / CHECKPOINTS).write_bytes(b"not a database at all" * 100), "checkpoints.sqlite is damaged"),
        (lambda run: _truncate(run / CHECKPOINTS), "checkpoints.sqlite is damaged"),
        (lambda run: ((run / "config.json").unlink(), (run / "config.json").mkdir()), "is a directory"),
        (lambda run: (run / "config.json").write_text("[]"), "is not a run config"),
    ],
    ids=["masks-missing", "masks-a-file", "checkpoints-garbage", "checkpoints-truncated", "config-dir", "config-list"],
)
def test_damaged_run_directories_are_refused_in_one_line_and_nothing_is_added(tmp_path, damage, needle):
    run = tmp_path / "r"
    crashed_run(run, crash_at=13)
    for name in ("checkpoints.sqlite-wal", "checkpoints.sqlite-shm"):
        (run / name).unlink(missing_ok=True)
    damage(run)
    before = snapshot(run)
    out = cli("resume", str(run), "--quiet")
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr, out.stderr
    assert snapshot(run) == before
    assert len(lines(run / "trials.jsonl")) <= 13  # no trial was added


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_resuming_a_file_is_refused(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    out = cli("resume", str(f))
    assert out.returncode == 2 and out.stderr.strip() == f"lapt: error: {f} is a file, not a run directory"


def test_a_folder_with_a_runs_data_but_no_config_is_never_touched(tmp_path, ref):
    run = tmp_path / "r"
    crashed_run(run, crash_at=21)
    (run / "config.json").unlink()  # what `lapt resume` said "holds no run" about
    before = snapshot(run)
    for args in (["run", *RUN, "--seed", "3", "--run-dir", str(run)], ["run", *RUN, "--run-dir", str(run), "--resume"]):
        out = cli(*args)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "is not empty" in out.stderr and "trials.jsonl" in out.stderr and "nothing was changed" in out.stderr
        assert snapshot(run) == before
        assert {p.name for p in run.iterdir()} >= {"checkpoints.sqlite", "eval_cache.sqlite", "trials.jsonl"}


def checkpoint_bytes(run: Path) -> int:
    with sqlite3.connect(run / CHECKPOINTS) as conn:
        (size,) = conn.execute("SELECT length(checkpoint) FROM checkpoints ORDER BY checkpoint_id DESC").fetchone()
    return int(size)


def test_a_checkpoint_is_the_same_size_after_20_or_400_evaluations(tmp_path):
    fresh_source_hash()
    sizes = {}
    for budget in (20, 400):
        run = tmp_path / str(budget)
        lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=budget, seed=1, run_dir=run, store=False)
        sizes[budget] = checkpoint_bytes(run)
        with sqlite3.connect(run / CHECKPOINTS) as conn:
            (kept,) = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()
        assert kept <= 17  # older checkpoints are pruned: a resume needs the latest only
    assert sizes[400] < 1.25 * sizes[20] and sizes[400] < 40_000, sizes


def test_decisions_principles_and_masks_have_one_writer():
    """The recorder is the only code that writes the record files."""
    root = Path(__file__).resolve().parents[1]
    writers = []
    for path in [*root.glob("lapt/**/*.py"), *root.glob("graph/**/*.py"), *root.glob("agents/**/*.py")]:
        text = path.read_text()
        if ".append(DECISIONS" in text or ".append(TRIALS" in text or "write_version(" in text:
            writers.append(path.relative_to(root).as_posix())
    assert writers == ["graph/recorder.py"] or sorted(writers) == [
        "graph/recorder.py",
        "lapt/runs/directory.py",
    ], writers


def test_budget_and_run_settings_round_trip_through_the_recorder(tmp_path):
    run = tmp_path / "r"
    result = lapt.run(space="tnb101", sources=["jigsaw"], target="class_scene", budget=BUDGET, seed=2, run_dir=run)
    assert result.trials == [Trial.model_validate(t) for t in lines(run / "trials.jsonl")]
    lean = [{k: v for k, v in d.items() if v is not None and v != {}} for d in result.decisions]
    assert lean == lines(run / "decisions.jsonl")
    assert [m["version"] for m in result.masks] == list(range(len(list((run / "masks").iterdir()))))
    assert {t.mask_version for t in result.trials} <= {m["version"] for m in result.masks}


DISK_FULL = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from lapt.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_full_disk_is_one_line_and_the_run_resumes_to_the_uninterrupted_result(tmp_path, ref):
    run = tmp_path / "r"
    args = ["run", *RUN, "--seed", "3", "--run-dir", str(run), "--no-store"]
    out = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(200_000), *args], capture_output=True, text=True, timeout=120
    )
    err = [line for line in out.stderr.splitlines() if line.startswith("lapt: ")]
    assert out.returncode == 1, out.stderr
    assert err[-1].startswith("lapt: error: ") and "Traceback" not in out.stderr, out.stderr
    assert len([line for line in err if line.startswith("lapt: error")]) == 1
    assert not (run / "summary.json").exists()
    done = cli("resume", str(run), "--quiet")
    assert done.returncode == 0, done.stderr
    assert_same_run(run, ref)
