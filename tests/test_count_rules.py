"""Count rules in space files (``[validity] count``): how many layers may use some ops. Sizes, sampling,
mutation, validity, refined regions and table checks treat them exactly as ``forbid``; the shipped
macro example states its benchmark's rule with them and a bench on it wastes no evaluation."""

from __future__ import annotations

import csv
import itertools
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lapt.cli import main
from lapt.errors import UserError
from lapt.spaces.user import load_user_space
from lapt.strategies import make_strategy
from lapt.transfer.masks import parse_mask, to_spec
from tests.test_user_declarations import MACRO, brute_force_valid, write

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "macro_space" / "macro_space.toml"

# layer_1..layer_6 hold conv/pool/sep (layer_5, layer_6 also none): 1 to 2 pools anywhere, at most one sep
# among the first three layers.
COUNTED = MACRO.replace(
    'optional = ["layer_5", "layer_6"]',
    'optional = ["layer_5", "layer_6"]\n'
    'count = [{ ops = ["pool"], min = 1, max = 2 }, { ops = ["sep"], max = 1, layers = ["layer_1", "layer_2", '
    '"layer_3"] }]',
)


def rule_holds(g: tuple[str, ...]) -> bool:
    return 1 <= g.count("pool") <= 2 and g[:3].count("sep") <= 1


def test_sizes_and_enumeration_count_only_what_the_rules_allow(tmp_path):
    space = load_user_space(write(tmp_path, COUNTED))
    plain = load_user_space(write(tmp_path, MACRO, name="plain"))
    expected = {g for g in brute_force_valid(plain) if rule_holds(g)}
    assert space.size() == len(expected) == len(brute_force_valid(space))
    assert set(space.enumerate()) == expected
    rng = random.Random(1)
    for _ in range(200):  # every region a refiner could give: sizes exact
        ops = [tuple(rng.sample(layer.ops, rng.randint(1, len(layer.ops)))) for layer in space.layers]
        region = space.full_mask().__class__(ops=tuple(ops))
        inside = [g for g in expected if all(op in allowed for op, allowed in zip(g, ops, strict=True))]
        assert space.size(region) == len(inside)


def test_why_invalid_names_the_rule(tmp_path):
    space = load_user_space(write(tmp_path, COUNTED))
    assert space.why_invalid(("conv",) * 4 + ("none", "none")) == (
        "1 to 2 of the layers use pool ([validity] count[0]), but 0 do"
    )
    assert space.why_invalid(("sep", "sep", "pool", "conv", "none", "none")) == (
        "at most 1 of layer_1, layer_2, layer_3 use sep ([validity] count[1]), but 2 do"
    )
    assert space.is_valid(("sep", "pool", "conv", "sep", "sep", "none"))


def test_sampling_is_uniform_in_a_sparse_region_and_mutations_stay_valid(tmp_path):
    text = MACRO.replace('optional = ["layer_5", "layer_6"]', 'count = [{ ops = ["pool"], min = 5 }]')
    space = load_user_space(write(tmp_path, text))
    valid = brute_force_valid(space)
    # 5 or 6 pools: one of 4 layers x 2 other ops or 2 layers x 3 other ops, or none other: 15 of 1,296 strings,
    # below 1 in 64, so sampling goes layer by layer instead of rejecting
    assert len(valid) == space.size() == 15 and 64 * len(valid) < space.grid_size()
    rng = random.Random(0)
    full = space.full_mask()
    n = 200 * len(valid)
    counts = Counter(space.sample(full, rng) for _ in range(n))
    assert set(counts) == valid
    assert all(abs(c - 200) < 60 for c in counts.values()), counts
    for g in list(valid) * 20:
        child = space.mutate(g, full, rng)
        assert space.is_valid(child) and child != g


@pytest.mark.parametrize("name", ["rea", "random", "local"])
def test_strategies_propose_only_architectures_the_rules_allow(tmp_path, name):
    space = load_user_space(write(tmp_path, COUNTED))
    strategy = make_strategy(name, space, 2, population=4, tournament=2)
    seen = []
    full = space.full_mask()
    while True:
        proposed = strategy.ask(full, 1)
        if not proposed:
            break
        assert rule_holds(proposed[0]) and space.is_valid(proposed[0])
        seen.append(proposed[0])
        strategy.tell([(proposed[0], float(proposed[0].count("conv")))])
    assert len(seen) == len(set(seen)) == space.size()


def test_a_refined_region_the_rules_leave_empty_is_refused(tmp_path):
    space = load_user_space(write(tmp_path, COUNTED))
    no_pool = {f"layer_{i}": ["conv", "sep"] for i in range(1, 5)} | {"layer_5": ["none"], "layer_6": ["none"]}
    with pytest.raises(UserError, match=r"no valid architecture.*count\[0\]"):
        parse_mask(space, no_pool)
    one_pool = {**no_pool, "layer_1": ["pool"]}
    region = to_spec(space, parse_mask(space, one_pool))
    # sep at most once in layers 2-3, either op in layer 4
    assert space.size(region) == sum(1 for _ in space.enumerate(region)) == 3 * 2


def test_the_code_description_and_lapt_spaces_state_the_rules(tmp_path, capsys):
    path = write(tmp_path, COUNTED)
    space = load_user_space(path)
    assert "# Every architecture: 1 to 2 of the layers use pool." in space.describe_code()
    assert main(["spaces", "--file", str(path)]) == 0
    assert "validity: at most 1 of layer_1, layer_2, layer_3 use sep ([validity] count[1])" in capsys.readouterr().out


def test_a_table_row_that_breaks_a_count_rule_is_refused_with_its_line(tmp_path):
    table = "arch,t\n64-pccc00-basic,1.0\n64-cccc00-basic,2.0\n"
    with pytest.raises(UserError) as info:
        load_user_space(write(tmp_path, COUNTED + '[table]\nfile = "table.csv"\n', table))
    assert str(info.value).startswith("table.csv line 3: '64-cccc00-basic' is not an architecture of macro: 1 to 2")


def _count(entry: str) -> str:
    return MACRO.replace('optional = ["layer_5", "layer_6"]', f"count = [{entry}]")


@pytest.mark.parametrize(
    "text,needle",
    [
        (_count('{ ops = ["pool"], min = 3, max = 2 }'), "count[0]: min (3) is above max (2)"),
        (_count('{ ops = ["jump"], min = 1 }'), "count[0]: op 'jump' is not an op of the layers it counts"),
        (_count('{ ops = ["none"], min = 1, layers = ["layer_1"] }'), "op 'none' is not an op of the layers"),
        (_count('{ ops = ["pool"], min = 1, layers = ["layer_9"] }'), "count[0]: unknown layer 'layer_9'"),
        (_count('{ ops = ["pool"], min = 7 }'), "count[0]: min 7 is more than the 6 layer(s) it counts"),
        (_count('{ ops = ["pool"] }'), "hold for every architecture: give a min or a max"),
        (_count('{ ops = ["pool"], min = 1, colour = 2 }'), "unknown key 'validity.count[0].colour'"),
        (_count('{ ops = ["conv", "pool", "sep"], max = 3 }'), "[validity] leaves no valid architecture"),
    ],
)
def test_bad_count_rules_are_one_line(tmp_path, text, needle):
    with pytest.raises(UserError) as info:
        load_user_space(write(tmp_path, text))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_too_many_forbid_boxes_point_to_count_rules(tmp_path):
    boxes = ", ".join(f'{{ layer_1 = "pool", layer_{2 + k % 4} = "{op}" }}' for k, op in
                      zip(range(17), itertools.cycle(["conv", "sep"]), strict=False))
    text = MACRO.replace('optional = ["layer_5", "layer_6"]', f"forbid = [{boxes}]")
    with pytest.raises(UserError) as info:
        load_user_space(write(tmp_path, text))
    message = str(info.value)
    assert "[validity] forbid has 17 entries, at most 16: a rule on how many layers use some ops is a count" in message
    assert 'count = [{ ops = ["m3", "m4"], min = 1, max = 4 }]' in message


# -- the shipped example -------------------------------------------------------------------------------------
def test_the_macro_example_states_its_rule_and_its_table_holds_exactly_the_allowed_architectures():
    assert "table_only" not in EXAMPLE.read_text()
    space = load_user_space(EXAMPLE)  # every row is checked against the count rules here
    assert space.size() == space.table_data.rows == 3256 and space.grid_size() == 6400
    down, widen = {"down", "down_widen"}, {"widen", "down_widen"}
    for g in space.enumerate():
        assert 1 <= sum(op in down for op in g) <= 4 and 1 <= sum(op in widen for op in g) <= 3
    assert space.to_str(("down_widen", "down", "keep", "widen", "keep", "none")) == "64-43121-basic"
    check = subprocess.run([sys.executable, str(EXAMPLE.parent / "make_table.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_ten_seed_bench_on_the_macro_example_makes_no_invalid_proposal(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["bench", "--space", str(EXAMPLE), "--pair", "class_coarse:class_fine", "--seeds", "10",
                 "--out", str(out), "--quiet", "--workers", "1"]) == 0
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 * 10
    for r in rows:
        assert r["failed_invalid"] == "0" and r["failed_missing"] == "0" and r["failed_error"] == "0", r
        assert int(r["evaluations"]) == 50
    assert "| class_coarse->class_fine | 0 of 500 | 0 of 500 | 0 of 500 | 0 of 500 | 0 of 500 |" in (
        out / "summary.md"
    ).read_text()
    capsys.readouterr()


# -- short strings for variable-depth spaces ----------------------------------------------------------------
def test_a_short_string_reads_as_its_left_out_layers_and_omit_absent_writes_it(tmp_path, capsys):
    padded = load_user_space(write(tmp_path, MACRO))
    five = ("conv", "pool", "sep", "conv", "pool", "none")
    assert padded.from_str("64-cpscp-basic") == padded.from_str("64-cpscp0-basic") == five
    assert padded.to_str(five) == "64-cpscp0-basic"  # the default form keeps writing every layer
    assert padded.from_str("64-cpsc-basic") == ("conv", "pool", "sep", "conv", "none", "none")
    with pytest.raises(UserError, match=r"expected 4 to 6 ops written as one symbol each, got 3"):
        padded.from_str("64-cps-basic")
    short = load_user_space(write(tmp_path, MACRO.replace('suffix = "-basic"', 'suffix = "-basic"\nomit_absent = true'),
                                  name="short"))
    assert short.to_str(five) == "64-cpscp-basic" and short.from_str("64-cpscp-basic") == five
    assert short.to_str(("conv",) * 6) == "64-cccccc-basic"
    assert all(short.from_str(short.to_str(g)) == g for g in short.enumerate())
    no_optional = MACRO.replace('suffix = "-basic"', 'suffix = "-basic"\nomit_absent = true').replace(
        'optional = ["layer_5", "layer_6"]', ""
    )
    with pytest.raises(UserError, match=r"\[arch\] omit_absent leaves out absent optional layers: \[validity\]"):
        load_user_space(write(tmp_path, no_optional, name="bad"))


def test_the_macro_example_reads_and_prints_the_benchmarks_own_strings(capsys):
    space = load_user_space(EXAMPLE)
    g = space.from_str("64-43121-basic")
    assert g == ("down_widen", "down", "keep", "widen", "keep", "none") == space.from_str("64-431210-basic")
    assert space.to_str(g) == "64-43121-basic"
    assert main(["eval", str(EXAMPLE), "64-431210-basic", "--task", "segment"]) == 0
    assert capsys.readouterr().out.startswith("64-43121-basic  task=segment  val=")
