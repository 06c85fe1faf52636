"""Target evidence (ops on the target against the sources' prediction) and regions chosen from it."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass

import numpy as np
import pytest

from lapt.spaces import Genotype, MaskSpec, get_space
from lapt.transfer.regions import evidence_region, layer_scores, untried_region
from lapt.transfer.target_evidence import _spearman, op_weights, ranked_ops, target_evidence

SPACE = get_space("tnb101")
ARCHS = tuple(SPACE.enumerate())


@dataclass(frozen=True)
class Column:
    task: str
    archs: tuple[Genotype, ...]
    values: np.ndarray


def _source(seed: int = 0) -> np.ndarray:
    """A synthetic task: additive op effects plus noise; none is bad, nor_conv_3x3 good."""
    rng = np.random.default_rng(seed)
    effect = {"none": -1.0, "skip_connect": 0.2, "nor_conv_1x1": 0.0, "nor_conv_3x3": 0.6}
    return np.array([sum(effect[op] for op in g) for g in ARCHS]) + 0.3 * rng.standard_normal(len(ARCHS))


def _sample(values: np.ndarray, n: int, seed: int = 0) -> list[tuple[Genotype, float]]:
    rng = random.Random(seed)
    rows = rng.sample(range(len(ARCHS)), n)
    return [(ARCHS[r], float(values[r])) for r in rows]


def test_without_target_data_the_evidence_is_the_source_prediction():
    src = _source()
    ev = target_evidence(SPACE, [Column("a", ARCHS, src)], [])
    json.dumps(ev)  # plain JSON
    assert ev["evaluations"] == 0 and ev["source_slope"] is None
    for per_op in ev["layers"].values():
        for s in per_op.values():
            assert s["hit_rate"] == s["predicted_hit_rate"] and s["n"] == 0 and s["target_mean"] is None
    # none is never among the best, nor_conv_3x3 most often
    assert ranked_ops(ev, "edge_0_1")[0][0] == "nor_conv_3x3"
    assert ev["layers"]["edge_0_1"]["none"]["hit_rate"] == 0.0


def test_an_op_better_on_the_target_than_predicted_gets_a_positive_delta_and_rises():
    src = _source()
    # The target agrees with the source except that skip_connect on edge_1_2 is worth a lot more.
    bonus = np.array([1.5 if g[2] == "skip_connect" else 0.0 for g in ARCHS])
    target = src + bonus
    trials = _sample(target, 40)
    ev = target_evidence(SPACE, [Column("a", ARCHS, src)], trials)
    skip = ev["layers"]["edge_1_2"]["skip_connect"]
    assert skip["delta"] > 0.2 and skip["target_mean"] > skip["predicted_mean"]
    assert skip["hit_rate"] > 2 * skip["predicted_hit_rate"]
    assert ranked_ops(ev, "edge_1_2")[0][0] == "skip_connect"
    assert ev["source_slope"] > 0
    assert sum(s["n"] for s in ev["layers"]["edge_1_2"].values()) == 40


def test_sources_are_weighted_by_how_they_rank_the_target():
    good = _source(0)
    bad = -good  # ranks everything backwards
    trials = _sample(good + 0.05, 12)
    ev = target_evidence(SPACE, [Column("good", ARCHS, good), Column("bad", ARCHS, bad)], trials)
    by_task = {s["task"]: s for s in ev["sources"]}
    assert by_task["good"]["rank_corr"] == pytest.approx(1.0)
    assert by_task["bad"]["rank_corr"] == pytest.approx(-1.0)
    assert by_task["good"]["weight"] == 1.0 and by_task["bad"]["weight"] == 0.0
    # Before MIN_RANKED evaluations the weights are equal.
    early = target_evidence(SPACE, [Column("good", ARCHS, good), Column("bad", ARCHS, bad)], trials[:3])
    assert [s["weight"] for s in early["sources"]] == [0.5, 0.5]
    assert all(s["rank_corr"] is None for s in early["sources"])


def test_failed_trials_are_ignored_and_no_sources_gives_target_only_fit():
    src = _source()
    trials = [*_sample(src, 15), (ARCHS[0], None)]
    ev = target_evidence(SPACE, [], trials)
    assert ev["evaluations"] == 15 and ev["sources"] == [] and ev["source_slope"] is None
    s = ev["layers"]["edge_0_3"]["none"]
    assert s["predicted_hit_rate"] is None and s["hit_rate"] is not None
    assert op_weights(ev) is None  # without a source prediction the sampling stays uniform


def test_op_weights_square_the_hit_rates_with_a_floor():
    ev = target_evidence(SPACE, [Column("a", ARCHS, _source())], [])
    w = op_weights(ev)
    assert w is not None
    rate = ev["layers"]["edge_0_1"]["nor_conv_3x3"]["hit_rate"]
    assert w["edge_0_1"]["nor_conv_3x3"] == pytest.approx(rate**2)
    assert w["edge_0_1"]["none"] > 0  # the floor keeps every op reachable


def test_spearman_with_ties_matches_a_hand_computation():
    # ranks of a: 1, 2.5, 2.5, 4; of b: 1, 2, 3, 4 -> Pearson of the ranks
    a = np.array([1.0, 2.0, 2.0, 3.0])
    b = np.array([10.0, 20.0, 30.0, 40.0])
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4.0])
    expected = np.corrcoef(ra, rb)[0, 1]
    assert _spearman(a, b) == pytest.approx(expected)
    assert _spearman(a, -b) == pytest.approx(-expected)
    assert _spearman(np.ones(4), b) == 0.0


def test_evidence_region_keeps_supported_ops_only():
    ev = target_evidence(SPACE, [Column("a", ARCHS, _source())], [])
    region = evidence_region(SPACE, ev, max_ops=3)
    assert region is not None and all(1 <= len(ops) <= 3 for ops in region)
    assert all("none" not in ops for ops in region)
    assert all(ops[0] == "nor_conv_3x3" for ops in region)
    assert evidence_region(SPACE, None, 3) is None


# -- untried regions ----------------------------------------------------------------------------------
def _scores():
    ev = target_evidence(SPACE, [Column("a", ARCHS, _source())], [])
    return layer_scores(SPACE, ev)


def test_untried_region_is_the_region_itself_when_new():
    region = MaskSpec(ops=(("skip_connect", "nor_conv_3x3"),) * 6)
    assert untried_region(SPACE, region, [], _scores(), 3) == region


def test_untried_region_changes_one_layer_with_the_most_promising_op_first():
    region = MaskSpec(ops=(("skip_connect", "nor_conv_3x3"),) * 6)
    scores = [dict.fromkeys(layer.ops, 0.01) for layer in SPACE.layers]
    for s in scores:
        s.update({"skip_connect": 0.05, "nor_conv_3x3": 0.05})
    scores[4]["nor_conv_1x1"] = 0.04  # the closest to the cut
    got = untried_region(SPACE, region, [region], scores, 3)
    assert got is not None
    assert got.ops[4] == ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")  # room on the layer: added
    assert all(got.ops[i] == region.ops[i] for i in range(6) if i != 4)
    # At the op limit the weakest op is swapped out instead.
    full_layers = MaskSpec(ops=(("skip_connect", "nor_conv_1x1", "nor_conv_3x3"),) * 6)
    swapped = untried_region(SPACE, full_layers, [full_layers], _scores(), 3)
    assert swapped is not None and swapped != full_layers
    assert sum(a != b for a, b in zip(swapped.ops, full_layers.ops, strict=True)) == 1
    assert all(len(ops) == 3 for ops in swapped.ops)


def test_untried_region_never_returns_a_tried_one():
    rng = random.Random(0)
    layer_options = [
        [c for k in (1, 2, 3) for c in itertools.combinations(layer.ops, k)] for layer in SPACE.layers
    ]
    scores = _scores()
    for _ in range(200):
        region = MaskSpec(ops=tuple(rng.choice(opts) for opts in layer_options))
        tried = [region] + [MaskSpec(ops=tuple(rng.choice(opts) for opts in layer_options)) for _ in range(30)]
        got = untried_region(SPACE, region, tried, scores, 3)
        assert got is not None and got not in tried
        assert all(len(ops) <= 3 for ops in got.ops)
    # When everything near was tried, the full space is next, then nothing.
    tiny = get_space("nb201")
    region = MaskSpec(ops=tuple(layer.ops for layer in tiny.layers))
    assert untried_region(tiny, region, [region], layer_scores(tiny, None), 5) is None


def test_evidence_region_keeps_the_ops_of_the_best_architectures_found():
    ev = target_evidence(SPACE, [Column("a", ARCHS, _source())], [])
    plain = evidence_region(SPACE, ev, max_ops=3)
    assert plain is not None and "none" not in plain[0]
    best = {layer.name: "none" for layer in SPACE.layers}  # an incumbent that uses the op the evidence drops
    second = {layer.name: "nor_conv_1x1" for layer in SPACE.layers}
    kept = evidence_region(SPACE, ev, max_ops=3, protect=[best, second])
    assert kept is not None
    for ops in kept:
        assert "none" in ops and len(ops) <= 3
        assert ops[0] == "nor_conv_3x3"  # still ranked by the evidence
    # With room for one op only, the best architecture wins the layer.
    single = evidence_region(SPACE, ev, max_ops=1, protect=[best, second])
    assert single is not None and all(ops == ["none"] for ops in single)


def test_architectures_the_sources_never_measured_read_an_average_prediction():
    """A user table need not hold every cell: the evidence still forms, and such cells move nothing."""
    values = _source(0)
    held = ARCHS[: len(ARCHS) // 2]
    column = Column("a", held, values[: len(held)])
    trials = [(g, float(values[i])) for i, g in enumerate(ARCHS) if i % 97 == 0]  # half never measured
    ev = target_evidence(SPACE, [column], trials)
    assert ev["evaluations"] == len(trials)
    assert all(s["hit_rate"] is not None for per_op in ev["layers"].values() for s in per_op.values())


def test_the_prompt_view_lists_ops_best_first_and_skips_the_long_tail():
    from lapt.agents import compact

    ev = target_evidence(SPACE, [Column("a", ARCHS, _source(0))], _sample(_source(1), 30))
    text = compact.target_evidence(SPACE, ev)
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == list(SPACE.layer_names)
    for name, line in zip(SPACE.layer_names, lines, strict=True):
        shown = [part.split()[0] for part in line.split(": ", 1)[1].split(", ")]
        rates = [int(part.split()[1].rstrip("%")) for part in line.split(": ", 1)[1].split(", ")]
        assert rates == sorted(rates, reverse=True)
        codes = compact.op_codes(SPACE)
        for op, s in ev["layers"][name].items():
            hidden = round(100 * s["hit_rate"]) < 2 and s["n"] == 0
            assert (codes[op] in shown) != hidden
    assert compact.target_evidence(SPACE, None) == "(no target evidence yet)"
