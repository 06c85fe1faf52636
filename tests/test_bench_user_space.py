"""``lapt bench`` on user spaces: the shipped example with its own table, a lower-is-better metric, a
single-task space (baselines only), and the refusals, each one line. Also: a single-task space that
starts from NB201's stored principles, and a run whose every evaluation failed says so loudly.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lapt.cli import main
from lapt.spaces import get_space
from lapt.tables.registry import table_for
from lapt.transfer.masks import mask_model, to_spec

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits_family" / "digits_space.toml"
PNG = b"\x89PNG\r\n\x1a\n"


def bench(out: Path, *args: str) -> list[dict[str, str]]:
    assert main(["bench", "--out", str(out), "--quiet", "--workers", "1", *args]) == 0
    with open(out / "results.csv") as fh:
        return list(csv.DictReader(fh))


def test_bench_on_the_digits_example(tmp_path, capsys):
    rows = bench(tmp_path / "b", "--space", str(DIGITS), "--seeds", "3", "--budget", "20")
    space = get_space(str(DIGITS))
    table = table_for(space)
    assert {r["pair"] for r in rows} == {"digits->few_digits", "few_digits->digits"}
    assert {r["method"] for r in rows} == {"lapt", "lapt-transfer", "rea", "random", "rea-oracle"}
    assert len(rows) == 2 * 5 * 3 and all(r["space"] == space.ref for r in rows)
    for r in rows:
        g = space.from_str(r["best_arch"])
        assert space.is_valid(g)  # never an architecture the validity rules exclude
        assert float(r["best_val"]) == table.lookup(g, r["target"]).val
        assert int(r["evaluations"]) == 20 or r["method"] == "rea-oracle"
    for r in (r for r in rows if r["method"] == "rea-oracle"):
        # region sizes count architectures: 2 ops on each block, block_3/block_4 with 'none' or not
        assert 4 <= int(r["region_size"]) <= 2 * 2 * (1 + 1 + 1 + 1)
    curves = json.loads((tmp_path / "b" / "curves.json").read_text())
    assert curves["config"]["space"] == space.ref and curves["config"]["table"] == table.name
    assert curves["config"]["budget"] == 20 and curves["higher_is_better"] is True
    best_few = max(float(row) for row in table.values("few_digits", "val")[~np.isnan(table.values("few_digits"))])
    assert curves["references"]["digits->few_digits"]["optimum_val"] == best_few == 76.6
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert summary.startswith("# LAPT bench: digits_space.toml, budget 20, 3 seeds")
    for name in ("curves.png", "masks.png"):
        assert (tmp_path / "b" / name).read_bytes().startswith(PNG)
    capsys.readouterr()


LOSS_SPACE = """\
name = "latency"
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
[metric]
name = "latency (ms)"
higher_is_better = false
test = ""
[search]
population = 3
tournament = 2
max_ops = 2
[table]
file = "latency.csv"
"""


def _latency_csv() -> str:
    ops = "abc"
    lines = ["arch,cpu,gpu"]
    for i in range(27):
        arch = "-".join(ops[(i // 3**k) % 3] for k in (2, 1, 0))
        lines.append(f"{arch},{10 + (i * 7) % 27},{5 + (i * 11) % 27}")
    return "\n".join(lines) + "\n"


def test_bench_with_a_lower_is_better_metric_ranks_the_lowest_first(tmp_path, capsys):
    (tmp_path / "latency.toml").write_text(LOSS_SPACE)
    (tmp_path / "latency.csv").write_text(_latency_csv())
    rows = bench(tmp_path / "b", "--space", str(tmp_path / "latency.toml"), "--seeds", "2", "--budget", "27",
                 "--pair", "cpu:gpu")
    assert all(float(r["best_val"]) == 5.0 and r["reached_optimum"] == "true" for r in rows)  # the fastest
    assert all(r["metric"] == "val" for r in rows)
    curves = json.loads((tmp_path / "b" / "curves.json").read_text())
    ref = curves["references"]["cpu->gpu"]
    assert ref["optimum_val"] == 5.0 and ref["top_val"] == 5.0 and curves["higher_is_better"] is False
    assert curves["oracle"]["cpu->gpu"]["mean_val"] < np.mean([5 + (i * 11) % 27 for i in range(27)])
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert "**Lower is better**" in summary and "publishes no test column" in summary
    capsys.readouterr()


def _hand_welch_t(a: list[float], b: list[float]) -> float:
    """Welch's t of mean(a) - mean(b), written out (not lapt's code): unequal variances, ddof=1."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    return (ma - mb) / (va / len(a) + vb / len(b)) ** 0.5


def test_bench_who_won_on_a_lower_is_better_metric_is_signed_so_positive_means_better(tmp_path, capsys):
    (tmp_path / "latency.toml").write_text(LOSS_SPACE)
    (tmp_path / "latency.csv").write_text(_latency_csv())
    out = tmp_path / "b"
    rows = bench(out, "--space", str(tmp_path / "latency.toml"), "--seeds", "4", "--budget", "4",
                 "--pair", "cpu:gpu", "--methods", "lapt,rea")
    lapt = [float(r["final_at_4"]) for r in rows if r["method"] == "lapt"]
    rea = [float(r["final_at_4"]) for r in rows if r["method"] == "rea"]
    # lower is better: LAPT is better when REA's mean latency minus LAPT's is positive
    hand = _hand_welch_t(rea, lapt)
    assert sum(lapt) != sum(rea), (lapt, rea)  # a comparison that has a sign to get wrong
    summary = (out / "summary.md").read_text()
    at4 = summary[summary.index("### After 4 evaluations") :]
    row = next(ln for ln in at4.splitlines() if ln.startswith("| cpu->gpu"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == f"{hand:+.1f}", (cells, lapt, rea)
    wins = sum(a < b for a, b in zip(lapt, rea, strict=True))
    losses = sum(a > b for a, b in zip(lapt, rea, strict=True))
    assert cells[4] == f"{wins}/{4 - wins - losses}/{losses}"
    better = "1" if hand > 2 else "0"
    assert f"LAPT against REA, better (t > 2) on {better} of 1 pair(s)" in at4
    # `lapt report` recomputes the same section
    assert main(["report", str(out)]) == 0
    assert (out / "summary.md").read_text() == summary
    capsys.readouterr()


def test_report_refuses_duplicate_rows(tmp_path, capsys):
    (tmp_path / "latency.toml").write_text(LOSS_SPACE)
    (tmp_path / "latency.csv").write_text(_latency_csv())
    out = tmp_path / "b"
    bench(out, "--space", str(tmp_path / "latency.toml"), "--seeds", "2", "--budget", "3", "--pair", "cpu:gpu",
          "--methods", "rea")
    summary = (out / "summary.md").read_text()
    lines = (out / "results.csv").read_text().splitlines()
    (out / "results.csv").write_text("\n".join([*lines, *lines[1:]]) + "\n")  # every row listed twice
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    needle = f"results.csv:{len(lines) + 1}: duplicate row (rea, cpu->gpu, seed 0), first on line 2"
    assert len(err) == 1 and needle in err[0], err
    assert (out / "summary.md").read_text() == summary  # nothing rewritten


SINGLE = """\
name = "single"
kind = "chain"
tasks = ["mine"]
[ops]
nor_conv_3x3 = "ReLU -> 3x3 conv -> BatchNorm"
avg_pool_3x3 = "3x3 average pool"
none = "no layer"
[[layers]]
ops = ["nor_conv_3x3", "avg_pool_3x3"]
[[layers]]
ops = ["nor_conv_3x3", "avg_pool_3x3"]
[[layers]]
ops = ["nor_conv_3x3", "avg_pool_3x3", "none"]
[validity]
optional = ["layer_3"]
[table]
file = "single.csv"
"""
SINGLE_CSV = "arch,mine\n" + "".join(
    f"{a}-{b}-{c},{score}\n"
    for a, b, c, score in [
        ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", 9), ("nor_conv_3x3", "nor_conv_3x3", "none", 8),
        ("nor_conv_3x3", "avg_pool_3x3", "nor_conv_3x3", 6), ("avg_pool_3x3", "nor_conv_3x3", "nor_conv_3x3", 6.5),
        ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", 7), ("avg_pool_3x3", "avg_pool_3x3", "none", 1),
        ("nor_conv_3x3", "avg_pool_3x3", "none", 4), ("avg_pool_3x3", "nor_conv_3x3", "none", 4.5),
        ("avg_pool_3x3", "avg_pool_3x3", "nor_conv_3x3", 3), ("nor_conv_3x3", "avg_pool_3x3", "avg_pool_3x3", 3.5),
        ("avg_pool_3x3", "nor_conv_3x3", "avg_pool_3x3", 4), ("avg_pool_3x3", "avg_pool_3x3", "avg_pool_3x3", 0.5),
    ]
)


@pytest.fixture
def single(tmp_path: Path) -> Path:
    (tmp_path / "single.toml").write_text(SINGLE)
    (tmp_path / "single.csv").write_text(SINGLE_CSV)
    return tmp_path / "single.toml"


def test_single_task_space_benches_its_baselines(tmp_path, single, capsys):
    assert main(["bench", "--space", str(single), "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "single has one task (mine): LAPT needs a source task" in err[0]
    assert not (tmp_path / "no").exists()
    rows = bench(tmp_path / "b", "--space", str(single), "--methods", "rea,random,rea-oracle", "--seeds", "2",
                 "--budget", "12")
    assert {r["pair"] for r in rows} == {"mine"} and {r["sources"] for r in rows} == {""}
    assert all(float(r["best_val"]) == 9.0 for r in rows)  # 12 valid architectures, budget 12: all seen
    assert get_space(str(single)).size() == 12
    capsys.readouterr()


def test_single_task_space_starts_from_nb201_principles(tmp_path, single, capsys):
    assert main(["learn", "--space", "nb201", "--source", "cifar10", "--out", str(tmp_path / "p"), "--no-store"]) == 0
    capsys.readouterr()
    run_dir = tmp_path / "run"
    code = main(["run", "--space", str(single), "--principles", str(tmp_path / "p" / "principles.json"),
                 "--target", "mine", "--budget", "6", "--run-dir", str(run_dir), "--quiet", "--no-store"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "lapt: principles transferred:" in err and "is not in single; now global" in err
    space = get_space(str(single))
    record = json.loads((run_dir / "masks" / "v0.json").read_text())
    spec = to_spec(space, mask_model(space)(**record["mask"]))
    assert record["source"] == "refiner" and record["size"] == space.size(spec) < space.size()
    # NB201's CIFAR-10 principles avoid 'none' (and pooling) on every edge; as global principles they keep the
    # optional layer present here, and conv ranks first everywhere
    assert "none" not in spec.ops[2] and all(ops[0] == "nor_conv_3x3" for ops in spec.ops)
    assert "best: " in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--space", "examples/toy_space/missing.toml"], "space file 'examples/toy_space/missing.toml' not found"),
        (["--space", "no_table.toml"], "bench needs a space with a benchmark table: no_table has none"),
        (["--space", "wide.toml", "--methods", "rea-oracle", "--max-ops", "4"],
         "rea-oracle: the space has 1,838,265,625 candidate regions of 4 op(s) per layer"),
    ],
)
def test_bench_refusals_on_user_spaces_are_one_line(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "no_table.toml").write_text(SINGLE.split("[table]")[0].replace('name = "single"', 'name = "no_table"'))
    wide = textwrap.dedent("""\
        name = "wide"
        kind = "chain"
        tasks = ["t"]
        [ops]
        a = "a"
        b = "b"
        c = "c"
        d = "d"
        e = "e"
        f = "f"
        g = "g"
        h = "h"
        """) + '[[layers]]\nops = ["a", "b", "c", "d", "e", "f", "g", "h"]\n' * 6 + '[table]\nfile = "wide.csv"\n'
    (tmp_path / "wide.toml").write_text(wide)
    (tmp_path / "wide.csv").write_text("arch,t\na-a-a-a-a-a,1\n")
    assert main(["bench", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_run_whose_every_evaluation_failed_exits_1_and_says_why(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "always_fails.py").write_text("def score(arch, task):\n    raise ValueError('no GPU here')\n")
    monkeypatch.chdir(folder)
    code = main(["run", "--space", str(ROOT / "examples" / "toy_space" / "toy_space.toml"), "--source", "task_a",
                 "--target", "task_b", "--budget", "3", "--evaluator", "python:always_fails:score",
                 "--run-dir", str(tmp_path / "r"), "--quiet", "--no-store"])
    out, err = capsys.readouterr()
    assert code == 1 and "run directory:" in out
    assert err.strip().splitlines()[-1] == (
        "lapt: error: no successful evaluation: 3 evaluation(s), all failed; the first: ValueError: no GPU here"
    )
    trials = [json.loads(line) for line in (tmp_path / "r" / "trials.jsonl").read_text().splitlines()]
    assert [t["status"] for t in trials] == ["failed"] * 3


def test_single_task_space_benches_lapt_learned_on_the_target_with_allow_same_task(tmp_path, single, capsys):
    rows = bench(tmp_path / "b", "--space", str(single), "--allow-same-task", "--methods", "lapt,rea", "--seeds",
                 "2", "--budget", "6")
    label = "mine->mine (learned on target)"
    assert {r["pair"] for r in rows} == {label} and {r["sources"] for r in rows} == {"mine"}
    assert {r["method"] for r in rows} == {"lapt", "rea"} and len(rows) == 4
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert f"**Learned on the target itself** (`--allow-same-task`): {label}." in summary
    assert f"| {label} |" in summary
    curves = json.loads((tmp_path / "b" / "curves.json").read_text())
    assert curves["config"]["allow_same_task"] is True
    # an explicit same-task pair on a space with several tasks needs the flag too, and is labelled the same way
    (tmp_path / "latency.toml").write_text(LOSS_SPACE)
    (tmp_path / "latency.csv").write_text(_latency_csv())
    args = ["--space", str(tmp_path / "latency.toml"), "--pair", "gpu:gpu", "--methods", "lapt", "--seeds", "1",
            "--budget", "4"]
    capsys.readouterr()
    assert main(["bench", *args, "--out", str(tmp_path / "no"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--allow-same-task benches it anyway" in err[0], err
    assert not (tmp_path / "no").exists()
    rows = bench(tmp_path / "c", *args, "--allow-same-task")
    assert [r["pair"] for r in rows] == ["gpu->gpu (learned on target)"]
    capsys.readouterr()
