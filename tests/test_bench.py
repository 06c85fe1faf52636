"""``lapt bench`` and ``lapt report``: metrics by hand, the oracle by brute force, tiny benches end to end."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lapt.cli import main
from lapt.experiments.oracle import best_region
from lapt.schemas import Status, Trial
from lapt.search.metrics import incumbent_at, mean_std, paper_outcome, reported_metric

PNG = b"\x89PNG\r\n\x1a\n"


# -- metrics, against hand-computed cases ----------------------------------------------------------------
def _trials(vals: list[float | None]) -> list[Trial]:
    return [
        Trial(
            index=i,
            arch=f"a{i}",
            task="t",
            status=Status.FAILED if v is None else Status.OK,
            val=v,
            test=None if v is None else v + 0.5,
            fitness=v,
        )
        for i, v in enumerate(vals)
    ]


# 2,000 cells: the top-0.1 % threshold is the 2nd best value (ceil(0.001 * 2000) = 2 cells), i.e. 98.
VALUES = np.concatenate([np.linspace(0.0, 90.0, 1998), [98.0, 99.0]])


def test_paper_metric_optimum_first():
    # 50 -> 98 (top-0.1 % at evaluation 2) -> 70 -> 99 (the optimum at evaluation 4).
    out = paper_outcome(_trials([50.0, 98.0, 70.0, 99.0, 10.0]), VALUES, budget=20)
    assert (out.evaluations, out.reached) == (4, "optimum")
    assert reported_metric(out.incumbent) == 99.5  # the test metric of the incumbent at that point


def test_paper_metric_top_only():
    out = paper_outcome(_trials([None, 97.9, 98.0, 60.0]), VALUES, budget=20)
    assert (out.evaluations, out.reached) == (3, "top0.1%")
    assert out.incumbent is not None and out.incumbent.val == 98.0 and reported_metric(out.incumbent) == 98.5


def test_paper_metric_neither():
    out = paper_outcome(_trials([40.0, 97.0, None, 30.0]), VALUES, budget=20)
    assert (out.evaluations, out.reached) == (20, "budget")
    # A run shorter than the budget (its region exhausted) keeps its last incumbent.
    assert out.incumbent is not None and out.incumbent.val == 97.0


def test_incumbent_at_budgets_and_mean_std():
    trials = _trials([1.0, None, 5.0, 3.0, 7.0])
    assert incumbent_at(trials, 0) is None
    assert [incumbent_at(trials, n).val for n in (1, 2, 3, 4, 5, 100)] == [1.0, 1.0, 5.0, 5.0, 7.0, 7.0]
    assert incumbent_at(_trials([None, None]), 2) is None
    mean, std, n = mean_std([1.0, 3.0, None, float("nan")])
    assert (mean, std, n) == (2.0, 1.0, 2)
    assert math.isnan(mean_std([None])[0])


# -- the oracle region is the best region of its size (brute force) ----------------------------------------
def _brute_force(values: np.ndarray, layer_ops: list[tuple[str, ...]], k: int) -> tuple[tuple, float]:
    radices = [len(ops) for ops in layer_ops]
    cells = list(itertools.product(*(range(r) for r in radices)))
    flat = {cell: values[i] for i, cell in enumerate(cells)}  # first layer most significant
    best_cell = max((c for c in cells if not np.isnan(flat[c])), key=lambda c: flat[c])
    best, best_mean = None, -np.inf
    for region in itertools.product(*(itertools.combinations(range(r), min(k, r)) for r in radices)):
        if not all(b in allowed for b, allowed in zip(best_cell, region, strict=True)):
            continue
        vals = [flat[c] for c in itertools.product(*region) if not np.isnan(flat[c])]
        mean = sum(vals) / len(vals)
        if mean > best_mean + 1e-12:
            best, best_mean = region, mean
    ops = tuple(tuple(layer_ops[i][j] for j in c) for i, c in enumerate(best))
    return ops, best_mean


@pytest.mark.parametrize("seed", range(5))
def test_oracle_is_the_best_region_of_its_size(seed):
    rng = np.random.default_rng(seed)
    layer_ops = [("a", "b", "c", "d"), ("a", "b", "c"), ("a", "b", "c", "d", "e"), ("x", "y")]
    values = rng.normal(size=4 * 3 * 5 * 2)
    values[rng.choice(values.size, 5, replace=False)] = np.nan  # missing cells are ignored
    for k in (1, 2, 3):
        region = best_region(values, layer_ops, k)
        ops, mean = _brute_force(values, layer_ops, k)
        assert region.ops == ops
        assert region.mean_val == pytest.approx(mean)
        assert region.size == math.prod(min(k, len(o)) for o in layer_ops)
        assert region.best_index == int(np.nanargmax(values))


def test_oracle_rejects_bad_input():
    with pytest.raises(ValueError, match="max_ops"):
        best_region(np.zeros(4), [("a", "b"), ("a", "b")], 0)
    with pytest.raises(ValueError, match="shape"):
        best_region(np.zeros(5), [("a", "b"), ("a", "b")], 1)


# -- tiny benches end to end --------------------------------------------------------------------------
def _bench(out: Path, *args: str) -> None:
    assert main(["bench", "--out", str(out), "--quiet", *args]) == 0


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_tiny_nb201_bench_writes_everything_and_report_regenerates(tmp_path: Path, capsys):
    args = ("--space", "nb201", "--pair", "cifar10:cifar100", "--seeds", "2", "--budget", "12")
    _bench(tmp_path / "a", *args, "--workers", "2")
    _bench(tmp_path / "b", *args, "--workers", "1")
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("results.csv", "curves.json", "summary.md", "curves.png", "masks.png"):
        assert (a / name).is_file(), name
    for name in ("curves.png", "masks.png"):
        assert (a / name).read_bytes().startswith(PNG)
    # Parallel workers give exactly what one process gives.
    assert (a / "results.csv").read_text() == (b / "results.csv").read_text()
    ca, cb = json.loads((a / "curves.json").read_text()), json.loads((b / "curves.json").read_text())
    assert ca["curves"] == cb["curves"] and ca["masks"] == cb["masks"]

    rows = _rows(a / "results.csv")
    assert len(rows) == 5 * 2
    assert {r["method"] for r in rows} == {"lapt", "lapt-transfer", "rea", "random", "rea-oracle"}
    for r in rows:
        assert int(r["paper_evals"]) <= 12 and r["metric"] == "test"
        assert float(r["final_at_10"]) <= float(r["final_at_12"])  # incumbents only improve (same selection)
        # The first top-0.1 % cell comes no later than the paper's count, which runs on to the optimum.
        assert (r["evals_to_top"] != "") == (r["reached_top"] == "true")
        if r["evals_to_top"]:
            assert 1 <= int(r["evals_to_top"]) <= int(r["paper_evals"])
    oracle = [r for r in rows if r["method"] == "rea-oracle"]
    assert {r["region_size"] for r in oracle} == {"64"}
    # REA and random share the seed but not the search: REA mutates after its 5 random founders.
    rea = [r["best_arch"] for r in rows if r["method"] == "rea"]
    assert len(ca["curves"]["rea"]["cifar10->cifar100"]) == 2 and all(rea)

    summary = (a / "summary.md").read_text()
    assert "## The paper's metric" in summary and "## Final test accuracy at 10 evaluations" in summary
    assert "REA in oracle region (ceiling)" in summary and "| cifar10->cifar100 |" in summary
    assert "73.51" in summary  # the ceiling: test accuracy of CIFAR-100's best-by-validation cell
    lapt_rows = [r for r in rows if r["method"] == "lapt"]
    firsts = [int(r["evals_to_top"]) for r in lapt_rows if r["evals_to_top"]]
    assert firsts, "LAPT reaches a top-0.1 % cell of CIFAR-100 within 12 evaluations"
    assert f"; top after {sum(firsts) / len(firsts):.1f}" in summary

    # `lapt report` regenerates the summary and plots from results.csv + curves.json alone.
    for name in ("summary.md", "curves.png", "masks.png"):
        (a / name).unlink()
    assert main(["report", str(a)]) == 0
    assert (a / "summary.md").read_text() == summary
    assert (a / "curves.png").read_bytes().startswith(PNG) and (a / "masks.png").is_file()
    capsys.readouterr()


def test_tiny_tnb101_leave_one_out_reports_validation(tmp_path: Path):
    out = tmp_path / "t"
    _bench(
        out, "--space", "tnb101", "--leave-one-out", "--target", "room_layout", "--seeds", "2", "--budget", "12",
        "--methods", "lapt,rea-oracle", "--workers", "1",
    )  # fmt: skip
    rows = _rows(out / "results.csv")
    assert {r["pair"] for r in rows} == {"others->room_layout"}
    assert rows[0]["sources"].count("+") == 5  # learned from the 6 other tasks
    assert all(r["metric"] == "val" for r in rows) and all(float(r["paper_metric"]) < 0 for r in rows)
    summary = (out / "summary.md").read_text()
    assert "publishes no test column" in summary and "Final validation metric at 10 evaluations" in summary
    # LAPT alone has nothing to be compared with: no "who won" section.
    assert "## Who won" not in summary
    assert {r["region_size"] for r in rows if r["method"] == "rea-oracle"} == {"729"}


@pytest.mark.parametrize(
    "args,needle",
    [
        (("bench", "--space", "darts"), "needs a space with a benchmark table"),
        (("bench", "--space", "nb201", "--target", "mnist"), "unknown task 'mnist'"),
        (("bench", "--pair", "cifar10-cifar100"), "expected SRC:TGT"),
        (("bench", "--pair", "cifar10:cifar10"), "also a source"),
        (("bench", "--budget", "0"), "--budget must be >= 1"),
        (("bench", "--workers", "0"), "--workers must be >= 1"),
        (("bench", "--first-seed", "-1"), "--first-seed must be >= 0"),
        (("bench", "--first-seed", str(2**63 - 1), "--seeds", "2"), f"the last seed must be <= {2**63 - 1}"),
        (("bench", "--pair", "cifar10+cifar10:cifar100"), "'cifar10+cifar10:cifar100': a source task is named twice"),
        (("bench", "--methods", "rea,bogus"), "unknown method(s) bogus"),
        (("bench", "--pair", "cifar10:cifar100", "--leave-one-out"), "cannot be combined"),
        (("report", "/nonexistent/bench"), "is not a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default ./benches folder would land here, but none must be created
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lapt: error: ") and needle in err[0], err
    assert not (tmp_path / "benches").exists()


def test_report_refuses_a_damaged_bench(tmp_path: Path, capsys):
    (tmp_path / "results.csv").write_text("space,method\nnb201,rea\n")
    (tmp_path / "curves.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 2
    assert "missing column(s)" in capsys.readouterr().err


def test_mask_statistics_follow_the_active_mask(nb201):
    from lapt.experiments.methods import _mask_counts
    from lapt.spaces import MaskSpec
    from lapt.transfer.masks import from_spec

    conv = ("nor_conv_1x1", "nor_conv_3x3")
    region = MaskSpec(ops=(conv, conv, conv, ("skip_connect",), conv, conv))
    masks = [
        {"version": 0, "round": 0, "mask": from_spec(nb201, region).model_dump()},
        {"version": 1, "round": 0, "mask": from_spec(nb201, nb201.full_mask()).model_dump()},  # widened
        {"version": 2, "round": 1, "mask": from_spec(nb201, region).model_dump()},
    ]
    inside = ("nor_conv_3x3",) * 3 + ("skip_connect",) + ("nor_conv_3x3",) * 2
    outside = ("none",) * 6

    def trial(i, g, version):
        arch = nb201.to_str(g)
        return Trial(index=i, arch=arch, task="cifar100", status=Status.OK, val=1.0, mask_version=version)

    # One trial in the region, then two after widening (the second happens to be inside again), then
    # one under the next refined mask: each counts the mask it was drawn in.
    trials = [trial(0, inside, 0), trial(1, outside, 1), trial(2, inside, 1), trial(3, inside, 2)]
    counts = _mask_counts(nb201, trials, masks)
    ops = list(nb201.ops)
    assert counts[0][ops.index("nor_conv_3x3")] == 4 and counts[0][ops.index("none")] == 2
    assert counts[3][ops.index("skip_connect")] == 4 and counts[3][ops.index("nor_conv_1x1")] == 2


def test_llm_bench_replays_from_its_cache_for_free(tmp_path: Path, capsys):
    from fake_openai import FakeOpenAI

    args = ("--pair", "cifar10:cifar100", "--seeds", "2", "--budget", "6", "--methods", "lapt,rea")
    with FakeOpenAI() as fake:
        llm = ("--llm", "openai:fake", "--llm-base-url", fake.url)
        _bench(tmp_path / "first", *args, *llm, "--workers", "2")  # two processes share the cache file
        paid = len(fake.chat_requests())
        assert paid > 0 and (tmp_path / "first" / "llm_cache.sqlite").is_file()
        # The replay runs in this process: the same answers whatever the number of workers.
        cache = str(tmp_path / "first" / "llm_cache.sqlite")
        _bench(tmp_path / "again", *args, *llm, "--workers", "1", "--llm-cache", cache)
        assert len(fake.chat_requests()) == paid  # every answer came from the cache
    first, again = _rows(tmp_path / "first" / "results.csv"), _rows(tmp_path / "again" / "results.csv")
    lapt_first = [r for r in first if r["method"] == "lapt"]
    assert sum(int(r["llm_calls"]) for r in lapt_first) > 0
    assert all(r["llm_calls"] == "0" for r in again)
    strip = ("llm_calls", "input_tokens", "output_tokens")
    assert [{k: v for k, v in r.items() if k not in strip} for r in first] == [
        {k: v for k, v in r.items() if k not in strip} for r in again
    ]
    assert "llm (fake)" in (tmp_path / "first" / "summary.md").read_text()
    capsys.readouterr()


def test_llm_bench_counts_failed_decisions_and_degraded_runs(tmp_path: Path, capsys):
    """Every call of the LLM fails: the LAPT runs go on in the full space, each counted as degraded."""
    from fake_openai import CHAOS_FAULTS, FakeOpenAI

    faults = tuple(f for f in CHAOS_FAULTS if f != "slow")
    args = ("--pair", "cifar10:cifar100", "--seeds", "2", "--budget", "6", "--methods", "lapt,rea")
    with FakeOpenAI(fault_rate=1.0, faults=faults, retry_after_s=0.01) as fake:
        llm = ("--llm", "openai:fake", "--llm-base-url", fake.url, "--llm-attempts", "1", "--llm-repairs", "0")
        _bench(tmp_path / "b", *args, *llm, "--workers", "1")
    rows = _rows(tmp_path / "b" / "results.csv")
    lapt_rows = [r for r in rows if r["method"] == "lapt"]
    assert [r["degraded"] for r in lapt_rows] == ["true", "true"]
    assert all(int(r["failed_decisions"]) >= 1 and r["evaluations"] == "6" for r in lapt_rows)
    assert all(r["degraded"] == "false" and r["failed_decisions"] == "0" for r in rows if r["method"] == "rea")
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert "degraded runs" in summary and "2/2" in summary
    capsys.readouterr()
def test_an_llm_bench_also_runs_the_offline_miner_on_the_same_seeds_and_says_who_won(tmp_path: Path, capsys):
    """The default methods with --llm add lapt-offline; Who won reports the model against the miner."""
    from fake_openai import FakeOpenAI

    args = ("--pair", "cifar10:cifar100", "--seeds", "2", "--budget", "10")
    with FakeOpenAI() as fake:
        _bench(tmp_path / "b", *args, "--llm", "openai:fake", "--llm-base-url", fake.url, "--workers", "1")
    rows = _rows(tmp_path / "b" / "results.csv")
    by = {(r["method"], r["seed"]): r for r in rows}
    assert {m for m, _ in by} == {"lapt", "lapt-offline", "lapt-transfer", "rea", "random", "rea-oracle"}
    assert all(int(by[("lapt", s)]["llm_calls"]) > 0 and by[("lapt-offline", s)]["llm_calls"] == "0" for s in "01")
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert "t vs offline miner" in summary and "W/T/L vs offline miner" in summary
    assert "LAPT, offline miner" in summary and "principle changes" in summary
    assert "against offline miner, better (t > 2) on" in summary
    capsys.readouterr()


def test_second_seed_set_and_who_won_section(tmp_path: Path):
    out = tmp_path / "s"
    _bench(
        out, "--space", "tnb101", "--pair", "jigsaw:room_layout", "--seeds", "3", "--first-seed", "30",
        "--budget", "20", "--methods", "lapt,lapt-transfer,rea", "--workers", "1",
    )  # fmt: skip
    rows = _rows(out / "results.csv")
    assert sorted({int(r["seed"]) for r in rows}) == [30, 31, 32]
    summary = (out / "summary.md").read_text()
    assert "3 seeds (30-32)" in summary
    assert "## Who won" in summary and "### After 10 evaluations" in summary and "### After 20 evaluations" in summary
    assert "| jigsaw->room_layout |" in summary and "LAPT against REA, better (t > 2) on" in summary
    lapt_rows = [r for r in rows if r["method"] in ("lapt", "lapt-transfer")]
    assert all(0.0 <= float(r["outside_share"]) <= 1.0 for r in lapt_rows)
    assert all(r["outside_share"] == "" for r in rows if r["method"] == "rea")
