"""The bench's "who won" statistics on known inputs, and the section they fill in summary.md."""

from __future__ import annotations

import math

import pytest

from lapt.experiments.files import ResultRow
from lapt.experiments.stats import format_t, verdict, welch_t, win_tie_loss
from lapt.experiments.who_won import who_won_markdown


def test_welch_t_against_a_hand_computation():
    # means 2.5 and 5; variances (ddof=1) 5/3 and 20/3; se = sqrt(5/12 + 20/12); df by Welch-Satterthwaite.
    w = welch_t([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])
    se = math.sqrt(5 / 12 + 20 / 12)
    assert w.t == pytest.approx(-2.5 / se)
    assert w.df == pytest.approx((25 / 12) ** 2 / ((5 / 12) ** 2 / 3 + (20 / 12) ** 2 / 3))
    assert welch_t([4.0, 3.0, 2.0, 1.0], [8.0, 6.0, 4.0, 2.0]).t == pytest.approx(w.t)  # order-free
    assert welch_t([2.0, 4.0, 6.0, 8.0], [1.0, 2.0, 3.0, 4.0]).t == pytest.approx(-w.t)


def test_welch_t_edge_cases():
    assert math.isnan(welch_t([1.0], [1.0, 2.0]).t)  # one value: no variance
    assert welch_t([1.0, 1.0], [1.0, 1.0]).t == 0.0
    assert welch_t([2.0, 2.0], [1.0, 1.0]).t == math.inf
    assert welch_t([1.0, 2.0, None, float("nan")], [1.0, 2.0]).t == 0.0  # missing values dropped
    shown = [format_t(x) for x in (2.04, -0.96, math.inf, -math.inf, math.nan)]
    assert shown == ["+2.0", "-1.0", "+inf", "-inf", "n/a"]


def test_win_tie_loss_pairs_by_seed():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 3: None, 4: 5.0}
    b = {0: 0.5, 1: 2.0, 2: 4.0, 3: 1.0, 5: 9.0}
    wtl = win_tie_loss(a, b)
    assert (wtl.wins, wtl.ties, wtl.losses) == (1, 1, 1) and str(wtl) == "1/1/1"


def test_verdict_counts_better_and_worse():
    v = verdict([2.5, 2.0, -1.5, 0.3, math.nan, math.inf])
    assert (v.better, v.worse, v.total) == (2, 1, 6)


def _row(method: str, pair: str, seed: int, finals: dict[int, float], outside: float | None = None) -> ResultRow:
    return ResultRow(
        space="tnb101", method=method, pair=pair, sources="a", target=pair.split("->")[1], seed=seed, budget=50,
        evaluations=50, ended="budget", metric="val", paper_evals=50, paper_reached="budget", paper_metric=None,
        best_val=finals[50], best_arch="x", reached_top=False, reached_optimum=False, region_size=729,
        adaptations=4, llm_calls=0, input_tokens=0, output_tokens=0, outside_share=outside, finals=finals,
    )  # fmt: skip


def test_who_won_section_on_known_rows():
    rows = []
    for seed in range(4):
        rows.append(_row("lapt", "a->x", seed, {10: 1.0 + seed, 50: 10.0 + seed}, outside=0.1 * seed))
        rows.append(_row("lapt-transfer", "a->x", seed, {10: 1.0 + seed, 50: 9.0 + seed}))
        rows.append(_row("rea", "a->x", seed, {10: 0.0 + seed, 50: 12.0 + seed}))
    lines = who_won_markdown(rows, ["a->x"], ["lapt", "lapt-transfer", "rea"], 2, "validation metric")
    text = "\n".join(lines)
    assert lines[0] == "## Who won"
    assert "### After 10 evaluations" in text and "### After 50 evaluations" in text
    at50 = next(line for line in lines[lines.index("### After 50 evaluations") :] if line.startswith("| a->x"))
    cells = [c.strip() for c in at50.strip("|").split("|")]
    # LAPT, transfer only, REA; t vs REA (-2 each seed), t vs transfer only (+1 each seed); W/T/L; outside share
    t_tr = welch_t([10, 11, 12, 13], [9, 10, 11, 12]).t
    t_rea = welch_t([10, 11, 12, 13], [12, 13, 14, 15]).t
    assert cells[1:4] == ["11.50 ± 1.12", "10.50 ± 1.12", "13.50 ± 1.12"]
    assert cells[4:6] == [format_t(t_rea), format_t(t_tr)]
    assert cells[6:8] == ["0/0/4", "4/0/0"]
    assert cells[8] == "15%"
    assert (
        "LAPT against REA, better (t > 2) on 0 of 1 pair(s) and worse (t < -1) on 1; against transfer only, better "
        "(t > 2) on 0 of 1 pair(s) and worse (t < -1) on 0." in text
    )


def test_who_won_needs_a_comparison():
    rows = [_row("rea", "a->x", 0, {10: 1.0, 50: 2.0})]
    assert who_won_markdown(rows, ["a->x"], ["rea"], 2, "validation metric") == []
    only_transfer = [_row("lapt-transfer", "a->x", s, {50: float(s)}) for s in range(3)]
    only_transfer += [_row("rea", "a->x", s, {50: float(s) - 5}) for s in range(3)]
    text = "\n".join(who_won_markdown(only_transfer, ["a->x"], ["lapt-transfer", "rea"], 2, "metric"))
    assert "transfer only against REA, better (t > 2) on 1 of 1" in text


def test_who_won_on_a_lower_is_better_metric_signs_t_so_positive_means_better():
    # A latency: LAPT 3, 4, 5, 6 ms against REA 6, 7, 8, 9 ms. By hand: means 4.5 and 7.5, both variances
    # (ddof=1) 5/3, se = sqrt(5/3/4 + 5/3/4) = sqrt(5/6); LAPT is better, so t = +(7.5 - 4.5) / se = +3.29.
    rows = [_row("lapt", "a->x", s, {50: 3.0 + s}) for s in range(4)]
    rows += [_row("rea", "a->x", s, {50: 6.0 + s}) for s in range(4)]
    hand = 3.0 / math.sqrt(5 / 6)
    assert hand == pytest.approx(3.286, abs=1e-3)
    lines = who_won_markdown(rows, ["a->x"], ["lapt", "rea"], 2, "latency", higher_is_better=False)
    row = next(line for line in lines if line.startswith("| a->x"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:3] == ["4.50 ± 1.12", "7.50 ± 1.12"]
    assert cells[3] == f"{hand:+.1f}" == "+3.3"
    assert cells[4] == "4/0/0"  # every seed lower, i.e. better
    text = "\n".join(lines)
    assert "LAPT against REA, better (t > 2) on 1 of 1 pair(s) and worse (t < -1) on 0." in text
    assert "**Lower is better**" in text
    # The same numbers read as higher-is-better: REA wins.
    up = who_won_markdown(rows, ["a->x"], ["lapt", "rea"], 2, "metric")
    cells = [c.strip() for c in next(line for line in up if line.startswith("| a->x")).strip("|").split("|")]
    assert cells[3:5] == ["-3.3", "0/0/4"]
