"""The bench counts failed evaluations per run (``results.csv``) and per method and pair (``summary.md``):
not in the table, refused by the space's rules, evaluator errors. Benches written before keep reading."""

from __future__ import annotations

import csv
from pathlib import Path

from lapt.cli import main
from lapt.experiments.failures import count_failures
from lapt.schemas import Status, Trial
from lapt.spaces import get_space
from lapt.tables.registry import table_for

SPACE = """\
name = "sparse"
kind = "chain"
tasks = ["cpu", "gpu"]
[ops]
a = "op a"
b = "op b"
c = "op c"
[[layers]]
ops = ["a", "b", "c"]
[[layers]]
ops = ["a", "b", "c"]
[[layers]]
ops = ["a", "b", "c"]
[validity]
forbid = [{ layer_1 = ["c"], layer_2 = ["c"] }]
[search]
population = 3
tournament = 2
max_ops = 2
[table]
file = "sparse.csv"
"""
MISSING = {"a-a-a", "b-a-c", "c-b-a"}  # valid architectures the table never measured


def _archs() -> list[str]:
    ops = "abc"
    return ["-".join(ops[(i // 3**k) % 3] for k in (2, 1, 0)) for i in range(27)]


def _write(folder: Path) -> Path:
    lines = ["arch,cpu,gpu"]
    for i, arch in enumerate(_archs()):
        if arch in MISSING or arch.startswith("c-c-"):
            continue  # forbidden rows cannot be in the table
        lines.append(f"{arch},{10 + (i * 7) % 27},{5 + (i * 11) % 27}")
    (folder / "sparse.csv").write_text("\n".join(lines) + "\n")
    (folder / "sparse.toml").write_text(SPACE)
    return folder / "sparse.toml"


def test_failures_are_counted_by_cause(tmp_path):
    space = get_space(str(_write(tmp_path)))
    table = table_for(space)
    assert table is not None

    def trial(i: int, arch: str, fitness: float | None) -> Trial:
        status = Status.OK if fitness is not None else Status.FAILED
        return Trial(index=i, arch=arch, task="gpu", status=status, val=fitness, fitness=fitness)

    trials = [
        trial(0, "a-a-a", None),  # valid, not in the table
        trial(1, "c-c-a", None),  # the forbid rule refuses it
        trial(2, "a-b-a", None),  # in the table: the evaluator failed
        trial(3, "a-b-b", 7.0),
    ]
    counts = count_failures(space, table, trials, "gpu")
    assert (counts.missing, counts.invalid, counts.error) == (1, 1, 1)
    assert counts.columns() == {"failed_missing": 1, "failed_invalid": 1, "failed_error": 1}


def test_bench_reports_failures_per_method_and_pair_and_reads_old_files(tmp_path, capsys):
    space_file = _write(tmp_path)
    out = tmp_path / "b"
    args = [
        "bench",
        "--space",
        str(space_file),
        "--out",
        str(out),
        "--quiet",
        "--workers",
        "1",
        "--seeds",
        "2",
        "--budget",
        "24",
        "--pair",
        "cpu:gpu",
        "--methods",
        "random,rea",
    ]
    assert main(args) == 0
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    # 24 valid architectures, budget 24: random search evaluates every one, the 3 missing ones included
    random_rows = [r for r in rows if r["method"] == "random"]
    assert [int(r["failed_missing"]) for r in random_rows] == [3, 3]
    assert all(r["failed_invalid"] == "0" and r["failed_error"] == "0" for r in rows)
    summary = (out / "summary.md").read_text()
    assert "## Failed evaluations" in summary
    assert "6 of 48 (6 not in table, 0 refused by rules, 0 errors)" in summary

    # a results.csv written before the columns existed is still read; the report says they were not counted
    header, *lines = (out / "results.csv").read_text().splitlines()
    names = header.split(",")
    drop = [names.index(c) for c in ("failed_missing", "failed_invalid", "failed_error")]
    old = [",".join(v for k, v in enumerate(line.split(",")) if k not in drop) for line in [header, *lines]]
    (out / "results.csv").write_text("\n".join(old) + "\n")
    assert main(["report", str(out)]) == 0
    assert "| cpu->gpu | not counted | not counted |" in (out / "summary.md").read_text()
    capsys.readouterr()
