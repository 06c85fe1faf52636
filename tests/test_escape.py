"""Stepping outside the refined region (lapt.strategies.escape) and weighted sampling inside it."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from ask_tell import drive

from lapt.spaces import MaskSpec, get_space
from lapt.strategies import make_strategy
from lapt.strategies.escape import P_MAX, P_MIN, RegionEscape, prob_greater
from lapt.tables.builtin import load_table

SPACE = get_space("tnb101")
TABLE = load_table("tnb101")
# No "none" anywhere: 729 of the 4,096 cells.
REGION = MaskSpec(ops=(("skip_connect", "nor_conv_1x1", "nor_conv_3x3"),) * 6)


def _table_fitness(g):
    return TABLE.lookup(g, "class_scene").val


def _escape(seed=0, **kw):
    return RegionEscape(make_strategy("rea", SPACE, seed, population=10, tournament=5), **kw)


def test_state_round_trip_through_json_continues_exactly():
    a = _escape(3)
    done = drive(a, REGION, 37, _table_fitness)
    state = json.loads(json.dumps(a.state_dict()))
    b = _escape(0)
    b.load_state_dict(state)
    # What grows with the run comes from the run's record, as it does on a resume.
    b.mark_seen(done)
    b.replay([(g, _table_fitness(g)) for g in done])
    assert (b.inside, b.outside, b.asks, b.stalled) == (a.inside, a.outside, a.asks, a.stalled)
    assert drive(a, REGION, 40, _table_fitness) == drive(b, REGION, 40, _table_fitness)
    # The wrapper's own part of the state stays small: its ask count, win counts, pending sides.
    assert set(state) == {"strategy", "asks", "base", "inside", "outside", "pending"}
    assert len(json.dumps(state)) < 2_000


def test_a_restored_wrapper_without_its_record_differs():
    """The replayed record matters: without it the wins are judged against nothing (no warm-up)."""
    a = _escape(3)
    done = drive(a, REGION, 37, _table_fitness)
    b = _escape(0)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    b.mark_seen(done)
    assert not b._can_escape(REGION) and a._can_escape(REGION)


def test_no_repeats_no_escape_before_warmup_and_outside_is_one_change_from_a_parent():
    s = _escape(1)
    proposed = drive(s, REGION, 200, _table_fitness)
    assert len(set(proposed)) == len(proposed) == 200
    assert all(SPACE.contains(g, REGION) for g in proposed[:10])  # the first 10 fill REA's population
    outside = [g for g in proposed if not SPACE.contains(g, REGION)]
    assert outside, "some proposals should step outside"
    earlier = proposed[: proposed.index(outside[0])]
    # A probe is an evaluated architecture (projected into the region) with one op switched to an excluded one.
    assert sum(op == "none" for op in outside[0]) == 1
    assert any(sum(a != b for a, b in zip(outside[0], g, strict=True)) <= 2 for g in earlier)


def test_probability_rises_when_outside_wins_and_falls_when_it_loses():
    def outside_wins(g):  # every excluded op ("none") adds a lot
        return 10.0 * g.count("none") + random.Random(hash(g)).random()

    def outside_loses(g):
        return -10.0 * g.count("none") + random.Random(hash(g)).random()

    start = _escape(0).probability
    winning, losing = _escape(0), _escape(0)
    up = drive(winning, REGION, 120, outside_wins)
    down = drive(losing, REGION, 120, outside_loses)
    assert P_MIN <= losing.probability < start < winning.probability <= P_MAX
    assert losing.probability < 0.08 and winning.probability > 0.25
    n_up = sum(not SPACE.contains(g, REGION) for g in up)
    n_down = sum(not SPACE.contains(g, REGION) for g in down)
    assert n_up > 2 * n_down
    assert winning.share_outside == pytest.approx(winning.outside[0] / (winning.outside[0] + winning.inside[0]))


def test_probe_weights_choose_the_excluded_op_to_try():
    region = MaskSpec(ops=(("skip_connect", "nor_conv_1x1", "nor_conv_3x3"),) * 5 + (("nor_conv_3x3",),))
    s = _escape(2, p_min=0.5, p_max=0.5)
    weights = {layer.name: dict.fromkeys(layer.ops, 0.0) for layer in SPACE.layers}
    weights["edge_2_3"]["skip_connect"] = 1.0
    s.weights = weights
    proposed = drive(s, region, 80, _table_fitness)
    outside = [g for g in proposed if not SPACE.contains(g, region)]
    assert len(outside) > 15
    # Every probe switched the last edge to skip_connect; the other layers stayed inside the region.
    assert all(g[5] == "skip_connect" and "none" not in g for g in outside)


def test_full_space_region_never_escapes():
    s = _escape(0, p_min=1.0, p_max=1.0)
    proposed = drive(s, SPACE.full_mask(), 30, _table_fitness)
    assert len(proposed) == 30 and s.outside == [0, 0]


def test_prob_greater_is_a_probability_that_orders_rates():
    assert prob_greater((10, 1), (1, 10)) > 0.99
    assert prob_greater((1, 10), (10, 1)) < 0.01
    assert prob_greater((3, 3), (3, 3)) == pytest.approx(0.5)


def test_weighted_mask_sampling_follows_the_weights_and_keeps_region_identity():
    mask = MaskSpec(ops=(("skip_connect", "nor_conv_3x3"),) * 6)
    weighted = MaskSpec(ops=mask.ops, weights=((1.0, 3.0),) * 6)
    assert weighted == mask and hash(weighted) == hash(mask)
    rng = random.Random(0)
    counts = Counter(SPACE.sample(weighted, rng)[0] for _ in range(4000))
    assert 0.70 < counts["nor_conv_3x3"] / 4000 < 0.80
    # Mutation: the changed layer takes the other allowed op (only one here); projection follows the weights.
    g = ("none",) * 6
    projected = Counter(SPACE.mutate(g, weighted, rng)[1] for _ in range(4000))
    assert 0.62 < projected["nor_conv_3x3"] / 4000 < 0.71  # 3/4 projected, then 1 in 6 flipped: 2/3
    zero = MaskSpec(ops=mask.ops, weights=((0.0, 0.0),) * 6)  # all-zero weights fall back to uniform
    assert set(Counter(SPACE.sample(zero, rng)[0] for _ in range(200))) == {"skip_connect", "nor_conv_3x3"}


def test_darts_steps_outside_are_valid_cells_of_the_full_space():
    """DARTS nodes choose ops and inputs: a probe is a mutation in the full space that left the region."""
    darts = get_space("darts")
    full = darts.full_mask()
    keep = ("sep_conv_3x3", "skip_connect")
    region = MaskSpec(ops=tuple(tuple(op for op in ops if op in keep) for ops in full.ops), inputs=full.inputs)
    s = RegionEscape(make_strategy("rea", darts, 0, population=5, tournament=2), p_min=0.5, p_max=0.5)
    proposed = drive(s, region, 60, lambda g: random.Random(darts.to_str(g)).random())
    assert len({darts.to_str(g) for g in proposed}) == 60
    assert all(darts.contains(g, full) for g in proposed)
    outside = [g for g in proposed if not darts.contains(g, region)]
    assert 10 < len(outside) < 50
    assert all(darts.contains(g, region) for g in proposed[:5])  # REA's first population, inside


def _neighbours(g, region):
    return {
        tuple(op if j != i else other for j, op in enumerate(g))
        for i, allowed in enumerate(region.ops)
        for other in allowed
        if other != g[i]
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_standing_incumbent_has_every_neighbour_checked_and_plain_rea_does_not(seed):
    """Only the first architecture scores: after ``stall`` results it stands, and half the proposals inside
    are its unseen single changes until none is left; REA alone, whose population forgets it, rarely
    tries them."""

    def run(strategy):
        first = strategy.ask(REGION, 1)[0]
        strategy.tell([(first, 1.0)])
        proposed = drive(strategy, REGION, 60, lambda g: 1.0 if g == first else 0.0)
        return first, proposed

    wrapped = _escape(seed)
    first, proposed = run(wrapped)
    assert wrapped.stall == 10 and wrapped.stalled
    neighbours = _neighbours(first, REGION)
    assert len(neighbours) == 12
    assert neighbours <= set(proposed[:50])
    first, proposed = run(make_strategy("rea", SPACE, seed, population=10, tournament=5))
    assert len(_neighbours(first, REGION) & set(proposed)) <= 6


def test_a_better_result_ends_the_neighbour_check():
    s = _escape(0, stall=3)
    results = iter([1.0, 0.5, 0.5, 0.5, 2.0])
    drive(s, REGION, 3, lambda g: next(results))
    assert not s.stalled  # the incumbent has stood for 2 results
    drive(s, REGION, 1, lambda g: next(results))
    assert s.stalled
    drive(s, REGION, 1, lambda g: next(results))
    assert not s.stalled
    with pytest.raises(ValueError, match="stall"):
        _escape(0, stall=0)
