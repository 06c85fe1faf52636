"""What a new user meets in the first minutes: the README's commands and what they print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def lapt(*args: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


def test_a_run_that_misses_the_optimum_says_so_in_words(tmp_path):
    out = lapt(
        "run",
        "--space",
        "tnb101",
        "--source",
        "jigsaw",
        "--target",
        "class_scene",
        "--budget",
        "4",
        "--seed",
        "1",
        "--run-dir",
        str(tmp_path / "r"),
        "--quiet",
        "--no-store",
    )
    assert out.returncode == 0, out.stderr
    assert "None" not in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith("the optimum"))
    assert re.fullmatch(
        r"the optimum \(\d+\.\d{4}\): not reached in 4 evaluations;  a top-0\.1% cell: not reached in 4 evaluations",
        line,
    ), line


def test_reach_line_names_the_evaluation_that_reached_it():
    from lapt.cli.run_report import reach_line

    summary = {"evaluations": 20, "evals_to_optimum": None, "evals_to_top0.1%": 7, "optimum_val": 73.4933}
    assert reach_line(summary) == (
        "the optimum (73.4933): not reached in 20 evaluations;  a top-0.1% cell: reached at evaluation 7"
    )


def test_the_readme_reads_a_tnb101_string_as_the_space_does(tnb101):
    text = " ".join(README.read_text().split())
    assert "`64-41414-1_30_113` is skip on 0->1, a 3x3 conv on 0->2, nothing on 1->2, skip, skip and a 3x3 conv" in text
    assert tnb101.from_str("64-41414-1_30_113") == (
        "skip_connect",
        "nor_conv_3x3",
        "none",
        "skip_connect",
        "skip_connect",
        "nor_conv_3x3",
    )
    assert [layer.name for layer in tnb101.layers] == [
        "edge_0_1",
        "edge_0_2",
        "edge_1_2",
        "edge_0_3",
        "edge_1_3",
        "edge_2_3",
    ]


def test_learn_stores_in_the_library_and_no_store_leaves_it_alone(tmp_path):
    store = tmp_path / "lib" / "principles.sqlite"
    env = {**os.environ, "LAPT_PRINCIPLE_STORE": str(store)}
    out = lapt("learn", "--space", "tnb101", "--source", "jigsaw", "--no-store", env=env)
    assert out.returncode == 0, out.stderr
    assert not store.exists() and "principle library" not in out.stdout
    out = lapt("learn", "--space", "tnb101", "--source", "jigsaw", env=env)
    assert out.returncode == 0, out.stderr
    assert store.exists() and f"({store})" in out.stdout


def test_python_api_run_writes_nothing_unless_asked(tmp_path, monkeypatch):
    import lapt

    store = tmp_path / "lib" / "principles.sqlite"
    monkeypatch.setenv("LAPT_PRINCIPLE_STORE", str(store))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=3, seed=0)
    assert result.run_dir is None and len(result.trials) == 3
    assert list(work.iterdir()) == [] and not store.parent.exists()


def test_readme_says_how_to_get_the_cpu_build_of_torch():
    text = README.read_text()
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "CPU build of torch" not in text
