"""Contract tests run against every strategy."""

from __future__ import annotations

import json

import pytest
from ask_tell import drive

from lapt.spaces import MaskSpec, get_space
from lapt.strategies import STRATEGIES, make_strategy
from lapt.tables.builtin import load_table
from lapt.transfer.masks import mask_model, to_spec


def _run(strategy, table, task, mask, steps):
    return drive(strategy, mask, steps, lambda g: table.lookup(g, task).val)


@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("space_name,task", [("nb201", "cifar10"), ("tnb101", "class_scene")])
def test_seeded_determinism_and_no_repeats(name, space_name, task):
    space = get_space(space_name)
    table = load_table(space_name)
    a = _run(make_strategy(name, space, 7), table, task, space.full_mask(), 200)
    b = _run(make_strategy(name, space, 7), table, task, space.full_mask(), 200)
    c = _run(make_strategy(name, space, 8), table, task, space.full_mask(), 200)
    assert a == b
    assert a != c
    assert len(set(a)) == len(a) == 200


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_state_round_trip_through_json(name):
    space = get_space("nb201")
    table = load_table("nb201")
    s1 = make_strategy(name, space, 3)
    before = _run(s1, table, "cifar100", space.full_mask(), 37)
    state = json.loads(json.dumps(s1.state_dict()))
    assert len(json.dumps(state)) < 2_000  # constant size: the seen architectures are not in it
    s2 = make_strategy(name, space, 0)
    s2.load_state_dict(state)
    s2.mark_seen(before)
    rest1 = _run(s1, table, "cifar100", space.full_mask(), 40)
    rest2 = _run(s2, table, "cifar100", space.full_mask(), 40)
    assert rest1 == rest2


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_exhaustion_with_single_op_layers(name):
    space = get_space("nb201")
    table = load_table("nb201")
    ops = [("nor_conv_3x3",)] * 5 + [("nor_conv_3x3", "skip_connect")]
    mask = MaskSpec(ops=tuple(ops))
    strategy = make_strategy(name, space, 0)
    got = strategy.ask(mask, 5)
    assert len(got) == 2 and strategy.exhausted
    strategy.tell([(g, table.lookup(g, "cifar10").val) for g in got])
    assert strategy.ask(mask, 1) == [] and strategy.exhausted


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_darts_masked_search_stays_inside(name):
    space = get_space("darts")
    data = {layer.name: {"ops": ["sep_conv_3x3", "max_pool_3x3"], "inputs": [0, 1]} for layer in space.layers}
    mask = to_spec(space, mask_model(space)(**data))
    strategy = make_strategy(name, space, 0)
    for i in range(60):
        (g,) = strategy.ask(mask, 1)
        assert space.contains(g, mask)
        strategy.tell([(g, float(i % 7))])


def test_rea_population_and_tournament_validation():
    space = get_space("nb201")
    with pytest.raises(ValueError):
        make_strategy("rea", space, 0, population=2, tournament=3)
