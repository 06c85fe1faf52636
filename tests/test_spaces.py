"""Contract tests run against every search space."""

from __future__ import annotations

import random

import pytest

from lapt.errors import UserError
from lapt.spaces import MaskSpec, get_space
from lapt.transfer.masks import mask_model, parse_mask, to_spec

SPACES = ["nb201", "tnb101", "darts"]


def test_sizes():
    assert get_space("nb201").size() == 15_625
    assert get_space("tnb101").size() == 4_096
    # 4 nodes choose 2 of 2,3,4,5 inputs (1*3*6*10) with 7^2 op pairs each, for 2 cells.
    assert get_space("darts").size() == (180 * 7**8) ** 2


@pytest.mark.parametrize("name", ["nb201", "tnb101"])
def test_codec_round_trip_every_cell(name):
    space = get_space(name)
    seen = set()
    for g in space.enumerate():
        s = space.to_str(g)
        assert space.from_str(s) == g
        assert space.from_index(space.index(g)) == g
        seen.add(s)
    assert len(seen) == space.size()


def test_tnb101_string_format(tnb101):
    g = tnb101.from_str("64-41414-3_13_113")
    assert g == ("nor_conv_3x3", "skip_connect", "nor_conv_3x3", "skip_connect", "skip_connect", "nor_conv_3x3")
    assert tnb101.to_str(g) == "64-41414-3_13_113"


def test_darts_codec_round_trip(darts):
    rng = random.Random(0)
    for _ in range(200):
        g = darts.sample(darts.full_mask(), rng)
        assert darts.from_str(darts.to_str(g)) == g
    text = (
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1),"
        " ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)],"
        " normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2),"
        " ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2),"
        " ('avg_pool_3x3', 0)], reduce_concat=range(2, 6))"
    )
    g = darts.from_str(text)
    assert g[0] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1))  # canonical: sorted by input
    assert darts.from_str(darts.to_str(g)) == g


@pytest.mark.parametrize(
    "name,bad",
    [
        ("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|a~0|b~1|c~2|"),
        ("nb201", "|conv9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
        ("nb201", "garbage"),
        ("tnb101", "64-41414-4_00_000"),
        ("tnb101", "64-41414-0_0_000"),
        ("darts", "Genotype(normal=[('sep_conv_3x3', 0)])"),
        ("darts", "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 0)] * 4, reduce=[])"),
    ],
)
def test_malformed_strings_are_user_errors(name, bad):
    with pytest.raises(UserError):
        get_space(name).from_str(bad)


def _restricted(space, rng):
    """A random valid mask with 1-2 ops per layer (and 2-3 inputs on DARTS)."""
    data = {}
    for layer in space.layers:
        ops = rng.sample(list(layer.ops), rng.randint(1, 2))
        if layer.name.startswith("edge") and "none" in ops and len(ops) == 1:
            ops = ["skip_connect"]
        if layer.inputs:
            data[layer.name] = {"ops": ops, "inputs": rng.sample(list(layer.inputs), min(len(layer.inputs), 3))}
        else:
            data[layer.name] = ops
    return to_spec(space, mask_model(space)(**data))


@pytest.mark.parametrize("name", SPACES)
def test_sample_and_mutate_respect_mask(name):
    space = get_space(name)
    rng = random.Random(1)
    for _ in range(30):
        spec = _restricted(space, rng)
        for _ in range(20):
            g = space.sample(spec, rng)
            assert space.contains(g, spec)
            child = space.mutate(space.sample(space.full_mask(), rng), spec, rng)
            assert space.contains(child, spec)


@pytest.mark.parametrize("name", SPACES)
def test_size_matches_enumeration(name):
    space = get_space(name)
    rng = random.Random(2)
    for _ in range(5):
        spec = _restricted(space, rng)
        if space.size(spec) <= 50_000:
            assert sum(1 for _ in space.enumerate(spec)) == space.size(spec)


def test_mutate_with_single_op_layers_returns(nb201):
    spec = MaskSpec(ops=tuple(("nor_conv_3x3",) for _ in range(6)))
    g = nb201.sample(spec, random.Random(0))
    assert nb201.mutate(g, spec, random.Random(0)) == g


@pytest.mark.parametrize(
    "data,needle",
    [
        ({"edge_0_1": ["conv7x7"]}, "edge_0_1"),
        ({"edge_0_1": []}, "edge_0_1"),
        ({"edge_9_9": ["none"]}, "edge_9_9"),
    ],
)
def test_invalid_masks_rejected(nb201, data, needle):
    full = {layer.name: ["nor_conv_3x3"] for layer in nb201.layers}
    full.update(data)
    with pytest.raises(UserError, match=needle):
        parse_mask(nb201, full)


def test_missing_layer_and_too_many_ops(nb201):
    full = {layer.name: ["nor_conv_3x3"] for layer in nb201.layers}
    del full["edge_2_3"]
    with pytest.raises(UserError, match="edge_2_3"):
        parse_mask(nb201, full)
    full["edge_2_3"] = ["nor_conv_3x3", "nor_conv_1x1", "skip_connect"]
    with pytest.raises(UserError, match="at most 2"):
        parse_mask(nb201, full, max_ops=2)


def test_mask_with_no_valid_architecture(nb201, darts):
    dead = {layer.name: ["none"] for layer in nb201.layers}
    dead["edge_0_1"] = ["nor_conv_3x3"]  # node 1 is reachable, but nothing leaves it except 'none'
    with pytest.raises(UserError, match="no valid architecture"):
        parse_mask(nb201, dead)
    node = {layer.name: {"ops": ["sep_conv_3x3"], "inputs": [0, 1]} for layer in darts.layers}
    node["normal_node_4"] = {"ops": ["sep_conv_3x3"], "inputs": [3]}
    with pytest.raises(UserError, match="normal_node_4"):
        parse_mask(darts, node)
    node["normal_node_4"] = {"ops": ["sep_conv_3x3"], "inputs": [0, 7]}
    with pytest.raises(UserError, match="normal_node_4"):
        parse_mask(darts, node)


def test_darts_mask_constrains_inputs(darts):
    data = {layer.name: {"ops": ["sep_conv_3x3", "skip_connect"], "inputs": [0, 1]} for layer in darts.layers}
    spec = to_spec(darts, mask_model(darts, 2)(**data))
    rng = random.Random(3)
    for _ in range(50):
        g = darts.sample(spec, rng)
        assert all(i in (0, 1) for pair in g for _, i in pair)
    assert darts.size(spec) == (1 * 4) ** 8


@pytest.mark.parametrize("name", SPACES)
def test_code_description_names_every_op(name):
    space = get_space(name)
    code = space.describe_code()
    assert "def forward" in code
    for op in space.ops:
        assert op in code
