"""Bad input is refused before any work starts: exit status 2, one line on stderr, no traceback, and no
run directory left behind (nor a changed one, for a folder that already holds a run).

Every case runs the real CLI in a subprocess, as a user types it. The subprocesses run a few at a
time (module fixture) to keep the file fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import lapt

ROOT = Path(__file__).resolve().parents[1]
TOY_SPACE = ROOT / "examples" / "toy_space"
BASE = ("run", "--space", "nb201", "--source", "cifar10", "--target", "cifar100", "--budget", "5", "--quiet")

# Runs the CLI with the package's benchmark tables read from a folder given as argv[1].
WITH_DATA_DIR = (
    "import sys, pathlib, lapt.tables.builtin\n"
    "lapt.tables.builtin.DATA_DIR = pathlib.Path(sys.argv[1])\n"
    "from lapt.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def _principles(tmp: Path) -> dict[str, Path]:
    """Principle files: not JSON, not a PrincipleSet, and a valid set naming an op NB201 lacks."""
    principle = {"statement": "conv3x3 on edge_0_1 helps", "layer": "edge_0_1", "favour": ["sep_conv_5x5"]}
    files = {
        "not-json": "{ this is not json",
        "not-a-set": json.dumps({"version": 0, "principles": "conv is good"}),
        "unknown-op": json.dumps({"version": 0, "source": "learned from cifar10", "principles": [principle]}),
    }
    out = {}
    for name, text in files.items():
        out[name] = tmp / f"{name}.json"
        out[name].write_text(text)
    return out


def _cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """case -> (argv after `python`, text the one stderr line must contain)."""
    run_dir = str(tmp / "run")
    cli = [sys.executable, "-m", "lapt.cli"]

    def run(*extra: str) -> list[str]:
        return [*cli, *BASE, "--run-dir", run_dir, *extra]

    prompts = tmp / "prompts"
    prompts.mkdir()
    (prompts / "learner.md").write_text("Learn from ${source_tasks} and ${bogus_variable}.\n")

    data = tmp / "data"
    shutil.copytree(Path(lapt.__file__).parent / "data", data)
    table = data / "nb201_200epoch.npz"
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])  # truncated download

    principles = _principles(tmp)
    held = tmp / "held"  # holds a finished run
    lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=3, seed=0, run_dir=held)
    tampered = tmp / "tampered"  # a finished run whose recorded lapt version is not ours
    shutil.copytree(held, tampered)
    config = json.loads((tampered / "config.json").read_text())
    (tampered / "config.json").write_text(json.dumps({**config, "lapt_version": "0.0.1"}))
    a_file = tmp / "a-file"
    a_file.write_text("not a folder")

    cases: dict[str, tuple[list[str], str]] = {
        "budget-0": (run("--budget", "0"), "budget: Input should be greater than or equal to 1"),
        "batch-size-0": (run("--batch-size", "0"), "batch_size: Input should be greater than or equal to 1"),
        "tournament-over-population": (
            run("--population", "3", "--tournament", "4"),
            "tournament (4) cannot exceed population (3)",
        ),
        "tournament-over-default-population": (run("--tournament", "7"), "tournament (7) cannot exceed population (5"),
        "no-adapt-with-adapt-every": (run("--no-adapt", "--adapt-every", "3"), "--no-adapt contradicts --adapt-every"),
        "unknown-space": (run("--space", "nb999"), "nb999"),
        "unknown-target": (run("--target", "cifar1000"), "unknown task 'cifar1000'"),
        "unknown-source": (run("--source", "svhn"), "unknown task 'svhn'"),
        "unknown-llm-provider": (run("--llm", "foo:bar"), "--llm 'foo:bar': expected openai:MODEL"),
        "principles-missing": (run("--principles", str(tmp / "nope.json")), "no such file"),
        "principles-not-json": (run("--principles", str(principles["not-json"])), "not valid JSON"),
        "principles-not-a-set": (run("--principles", str(principles["not-a-set"])), "not a principle set"),
        "principles-unknown-op": (run("--principles", str(principles["unknown-op"])), "sep_conv_5x5"),
        "prompt-unknown-variable": (run("--prompts", str(prompts)), "unknown variable(s) bogus_variable"),
        "corrupted-table": (
            [sys.executable, "-c", WITH_DATA_DIR, str(data), *BASE[:-1], "--run-dir", run_dir],
            "is corrupted or truncated",
        ),
        "dir-holds-a-run": ([*cli, *BASE, "--run-dir", str(held)], "already holds a run"),
        "run-dir-is-a-file": ([*cli, *BASE, "--run-dir", str(a_file)], "is not a directory"),
        "resume-without-run-dir": ([*cli, *BASE, "--resume"], "--resume needs --run-dir"),
        "resume-nothing": ([*cli, "resume", run_dir], "does not exist"),
        "resume-other-version": ([*cli, "resume", str(tampered)], "it was started by lapt 0.0.1"),
    }
    cases.update(_training_cases(run, tmp))
    cases.update(_file_cases(run, tmp, cli, run_dir))
    if (TOY_SPACE / "toy_space.toml").is_file():  # a user space whose table no longer matches its sha256
        toy = tmp / "toy"
        shutil.copytree(TOY_SPACE, toy)
        csv = toy / "toy_table.csv"
        csv.write_text(csv.read_text().replace("0.", "0.9", 1))
        space = f"file:{toy / 'toy_space.toml'}"
        cases["corrupted-user-table"] = (
            [*cli, "run", "--space", space, "--source", "task_a", "--target", "task_b", "--run-dir", run_dir],
            "toy_table.csv: sha256 is",
        )
        cases.update(_toy_cases(tmp, cli, run_dir))
    return cases


def _training_cases(run: Any, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Training and executor options that used to be accepted and then failed every trial."""
    train = ("--evaluator", "train", "--target", "mnist5k")
    return {
        "net-value-not-a-number": (run(*train, "--net", "C=abc"), "--net C must be an integer in [1, 1024], got 'abc'"),
        "net-unknown-key": (run(*train, "--net", "bogus=1"), "--net 'bogus' is not a setting of the nb201 network"),
        "net-not-key-value": (run(*train, "--net", "C"), "--net 'C': expected KEY=VALUE"),
        "lr-nan": (run(*train, "--lr", "nan"), "--lr nan: Input should be a finite number"),
        "epochs-0": (run(*train, "--epochs", "0"), "--epochs 0: Input should be greater than or equal to 1"),
        "train-seed-beyond-numpy": (run(*train, "--train-seed", str(2**32)), "--train-seed 4294967296"),
        "training-option-with-table": (run("--lr", "0.1", "--net", "C=8"), "--lr, --net: training options given"),
        "ray-address-without-ray": (run("--ray-address", "127.0.0.1:6379"), "--ray-address is given but the"),
        "cpus-per-trial-without-ray": (run("--cpus-per-trial", "2"), "--cpus-per-trial is given but the"),
        "gpus-per-trial-without-ray": (run("--executor", "processes", "--gpus-per-trial", "1"), "add --executor ray"),
        "workers-with-local": (run("--workers", "2"), "--workers is given but the local executor"),
        "seed-beyond-64-bits": (run("--seed", str(2**64)), "seed: Input should be less than or equal to"),
        "budget-10-to-the-12": (run("--budget", str(10**12)), "budget: Input should be less than or equal to 100000"),
        "duplicated-source": (run("--source", "cifar10,cifar10"), "source task 'cifar10' is given twice"),
        "abbreviated-option": (run("--bud", "3"), "unrecognized arguments: --bud 3"),
    }


def _file_cases(run: Any, tmp: Path, cli: list[str], run_dir: str) -> dict[str, tuple[list[str], str]]:
    """Files that are not what they claim: binary, a FIFO, a device, a folder, a dangling link, too big."""
    cases: dict[str, tuple[list[str], str]] = {}

    def prompts(name: str, make: Any) -> Path:
        folder = tmp / f"prompts-{name}"
        folder.mkdir()
        make(folder)
        return folder

    overrides = {
        "prompt-binary": (lambda d: (d / "learner.md").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe"), "not UTF-8 text"),
        "prompt-txt": (lambda d: (d / "learner.txt").write_text("Learn."), "learner.txt matches no prompt"),
        "prompt-upper-case": (lambda d: (d / "Learner.MD").write_text("Learn."), "did you mean learner.md?"),
        "prompt-directory": (lambda d: (d / "learner.md").mkdir(), "learner.md is a directory"),
        "prompt-dangling-link": (
            lambda d: (d / "refiner.md").symlink_to(d / "gone.md"),
            "refiner.md is a symbolic link to nothing",
        ),
    }
    for name, (make, needle) in overrides.items():
        cases[name] = (run("--prompts", str(prompts(name, make))), needle)
    huge = tmp / "huge.json"  # one 30 MB statement made a 516 MB run directory
    statement = "conv helps " * 3_000_000
    huge.write_text(json.dumps({"version": 0, "source": "s", "principles": [{"statement": statement}]}))
    long = tmp / "long.json"
    long.write_text(json.dumps({"version": 0, "source": "s", "principles": [{"statement": "x" * 5000}]}))
    cases["principles-30-mb"] = (run("--principles", str(huge)), "is more than the 4 MB accepted")
    cases["principles-long-statement"] = (run("--principles", str(long)), "at most 2000 characters")
    cases["principles-dev-zero"] = (run("--principles", "/dev/zero"), "/dev/zero: is a device, not a file")
    store_dir = tmp / "store-dir"
    store_dir.mkdir()
    cases["store-is-a-directory"] = (run("--store", str(store_dir)), "store-dir: is a directory; give a file")
    fifo_space = tmp / "fifo_space.toml"
    os.mkfifo(fifo_space)  # reading it used to wait forever for a writer
    cases["space-file-fifo"] = (run("--space", str(fifo_space)), "is a FIFO (named pipe), not a file")
    learn = [*cli, "learn", "--space", "nb201", "--source", "cifar10"]
    a_file = tmp / "a-file-for-learn"
    a_file.write_text("not a folder")
    cases["learn-out-is-a-file"] = ([*learn, "--out", str(a_file / "sub")], "exists and is not a directory")
    cases["learn-store-is-a-directory"] = ([*learn, "--store", str(store_dir)], "is a directory; give a file")
    return cases


def _toy_cases(tmp: Path, cli: list[str], run_dir: str) -> dict[str, tuple[list[str], str]]:
    """User spaces: a table that is a device or a FIFO; training a space lapt has no network for."""
    cases: dict[str, tuple[list[str], str]] = {}
    for name, table in (("table-dev-zero", "zero.csv"), ("table-fifo", "fifo.csv")):
        folder = tmp / name
        shutil.copytree(TOY_SPACE, folder)
        if table == "fifo.csv":
            os.mkfifo(folder / table)
        else:  # a link in the space's folder is followed (a path outside it is refused before)
            (folder / table).symlink_to("/dev/zero")
        toml = folder / "toy_space.toml"
        text = toml.read_text().replace('file = "toy_table.csv"', f'file = "{table}"')
        toml.write_text("\n".join(line for line in text.splitlines() if not line.startswith("sha256")) + "\n")
        kind = "a device" if table == "zero.csv" else "a FIFO (named pipe)"
        argv = [*cli, "run", "--space", str(toml), "--source", "task_a", "--target", "task_b", "--run-dir", run_dir]
        cases[name] = (argv, f"is {kind}, not a file")
    toy = str(TOY_SPACE / "toy_space.toml")
    cases["train-a-user-space"] = (
        [*cli, "run", "--space", toy, "--source", "task_a", "--target", "task_b", "--evaluator", "train",
         "--run-dir", run_dir],
        "space toy names no network builder to train",
    )
    cases["eval-train-bad-net"] = (
        [*cli, "eval", "nb201", "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", "--evaluator", "train",
         "--net", "C=abc"],
        "--net C must be an integer",
    )
    cases["eval-table-with-training-option"] = (
        [*cli, "eval", "nb201", "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", "--task", "cifar10",
         "--epochs", "3"],
        "--epochs: training option given without --evaluator train",
    )
    return cases


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every case (3 at a time, each in its own working folder) and record what it left."""
    tmp = tmp_path_factory.mktemp("bad_input")
    cases = _cases(tmp)
    held_before = sorted((p.relative_to(tmp), p.stat().st_mtime_ns) for p in (tmp / "held").rglob("*"))

    def one(item: tuple[str, tuple[list[str], str]]) -> tuple[str, dict[str, Any]]:
        name, (argv, _) = item
        cwd = tmp / "cwd" / name
        cwd.mkdir(parents=True)
        out = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)
        return name, {"rc": out.returncode, "stderr": out.stderr, "cwd_files": sorted(p.name for p in cwd.iterdir())}

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(pool.map(one, cases.items()))
    held_after = sorted((p.relative_to(tmp), p.stat().st_mtime_ns) for p in (tmp / "held").rglob("*"))
    return {
        "cases": cases,
        "results": results,
        "run_dir_created": (tmp / "run").exists(),
        "held_unchanged": held_before == held_after,
    }


CASE_NAMES = [
    "budget-0",
    "batch-size-0",
    "tournament-over-population",
    "tournament-over-default-population",
    "no-adapt-with-adapt-every",
    "unknown-space",
    "unknown-target",
    "unknown-source",
    "unknown-llm-provider",
    "principles-missing",
    "principles-not-json",
    "principles-not-a-set",
    "principles-unknown-op",
    "prompt-unknown-variable",
    "corrupted-table",
    "corrupted-user-table",
    "dir-holds-a-run",
    "run-dir-is-a-file",
    "resume-without-run-dir",
    "resume-nothing",
    "resume-other-version",
    # training and executor options
    "net-value-not-a-number",
    "net-unknown-key",
    "net-not-key-value",
    "lr-nan",
    "epochs-0",
    "train-seed-beyond-numpy",
    "training-option-with-table",
    "ray-address-without-ray",
    "cpus-per-trial-without-ray",
    "gpus-per-trial-without-ray",
    "workers-with-local",
    "seed-beyond-64-bits",
    "budget-10-to-the-12",
    "duplicated-source",
    "abbreviated-option",
    # files
    "prompt-binary",
    "prompt-txt",
    "prompt-upper-case",
    "prompt-directory",
    "prompt-dangling-link",
    "principles-30-mb",
    "principles-long-statement",
    "principles-dev-zero",
    "store-is-a-directory",
    "space-file-fifo",
    "learn-out-is-a-file",
    "learn-store-is-a-directory",
    # user spaces
    "table-dev-zero",
    "table-fifo",
    "train-a-user-space",
    "eval-train-bad-net",
    "eval-table-with-training-option",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_refused_with_one_line_and_exit_2(outcomes, case):
    if case not in outcomes["cases"]:
        pytest.skip("examples/toy_space is not in this checkout")
    result = outcomes["results"][case]
    expected = outcomes["cases"][case][1]
    lines = result["stderr"].strip().splitlines()
    assert result["rc"] == 2, result["stderr"]
    assert len(lines) == 1 and lines[0].startswith("lapt: error: "), result["stderr"]
    assert expected in lines[0]
    assert result["cwd_files"] == []  # no ./runs folder either


def test_no_run_directory_was_created_or_changed(outcomes):
    assert not outcomes["run_dir_created"]
    assert outcomes["held_unchanged"]
