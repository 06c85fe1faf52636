"""What a space file can declare beyond layers and ops: validity (variable depth, forbidden combinations,
table-only candidates), arch prefix and suffix, metric columns and direction, search defaults, and its
own evaluator code. Each declaration is checked valid and invalid (one clear line each), and validity is
checked where it matters: sizes, samples, mutations, enumerations and every strategy.
"""

from __future__ import annotations

import itertools
import random
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from lapt.cli import main
from lapt.errors import UserError
from lapt.search.metrics import thresholds
from lapt.spaces.base import MaskSpec, SearchDefaults
from lapt.spaces.user import load_user_space
from lapt.strategies import make_strategy
from lapt.tables.user import load_user_table
from lapt.transfer.masks import parse_mask, to_spec

# A macro chain of 4 to 6 modules: layer_5 and layer_6 are optional (op "none" leaves them out).
MACRO = """\
name = "macro"
kind = "chain"
tasks = ["t"]

[ops]
conv = { description = "3x3 conv", symbol = "c" }
pool = { description = "max pool", symbol = "p" }
sep = { description = "separable conv", symbol = "s" }
none = { description = "no module", symbol = "0" }

[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep", "none"]
[[layers]]
ops = ["conv", "pool", "sep", "none"]

[arch]
format = "digits"
prefix = "64-"
suffix = "-basic"

[validity]
optional = ["layer_5", "layer_6"]
"""
# 3^4 * (1 + 3 + 9) valid architectures out of 3^4 * 4 * 4 strings.
MACRO_VALID = 81 * 13
MACRO_GRID = 81 * 16


def write(tmp_path: Path, text: str, table: str | None = None, name: str = "space") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    if table is not None:
        (tmp_path / "table.csv").write_text(table)
    return path


def brute_force_valid(space) -> set[tuple[str, ...]]:
    return {g for g in itertools.product(*(layer.ops for layer in space.layers)) if space.is_valid(g)}


def depth(g: tuple[str, ...]) -> int:
    return sum(op != "none" for op in g)


# -- validity: variable depth -------------------------------------------------------------------------
def test_variable_depth_counts_and_enumerates_only_valid_architectures(tmp_path):
    space = load_user_space(write(tmp_path, MACRO))
    assert space.grid_size() == MACRO_GRID and space.size() == MACRO_VALID
    valid = brute_force_valid(space)
    assert len(valid) == MACRO_VALID
    assert set(space.enumerate()) == valid
    assert not space.is_valid(("conv",) * 4 + ("none", "conv"))  # a gap: module 6 without module 5
    assert "layer_5 is absent" in space.why_invalid(("conv",) * 4 + ("none", "conv"))
    assert {depth(g) for g in valid} == {4, 5, 6}


def test_variable_depth_samples_uniformly_and_mutates_to_valid_children(tmp_path):
    space = load_user_space(write(tmp_path, MACRO))
    rng = random.Random(0)
    full = space.full_mask()
    n = 40 * MACRO_VALID
    counts = Counter(space.sample(full, rng) for _ in range(n))
    assert set(counts) == brute_force_valid(space)
    by_depth = Counter(depth(g) for g in counts.elements())
    for d, archs in ((4, 81), (5, 243), (6, 729)):  # uniform over architectures, not over strings
        assert by_depth[d] == pytest.approx(n * archs / MACRO_VALID, rel=0.06)
    for _ in range(2000):
        g = space.sample(full, rng)
        child = space.mutate(g, full, rng)
        assert space.is_valid(child) and child != g
        assert sum(a != b for a, b in zip(g, child, strict=True)) == 1


def test_region_sizes_count_valid_architectures_and_masks_need_one(tmp_path):
    space = load_user_space(write(tmp_path, MACRO))
    ops = {f"layer_{i}": ["conv", "pool"] for i in range(1, 5)}
    region = to_spec(space, parse_mask(space, {**ops, "layer_5": ["none", "conv"], "layer_6": ["none", "sep"]}))
    assert space.grid_size(region) == 64 and space.size(region) == 16 * 3  # depth 4, 5 or 6
    assert space.size(region) == sum(1 for _ in space.enumerate(region))
    only_gap = {**ops, "layer_5": ["none"], "layer_6": ["sep"]}
    with pytest.raises(UserError, match=r"no valid architecture.*layer_5 is absent"):
        parse_mask(space, only_gap)
    # a mandatory chain layer may not be cut by 'none'; an optional one may be left out
    short = to_spec(space, parse_mask(space, {**ops, "layer_5": ["none"], "layer_6": ["none"]}))
    assert space.size(short) == 16


@pytest.mark.parametrize("name", ["rea", "random", "local"])
def test_every_strategy_proposes_only_valid_architectures_until_the_region_is_exhausted(tmp_path, name):
    space = load_user_space(write(tmp_path, MACRO))
    region = to_spec(space, parse_mask(space, {
        "layer_1": ["conv", "pool"], "layer_2": ["sep"], "layer_3": ["conv"], "layer_4": ["conv", "sep"],
        "layer_5": ["none", "pool"], "layer_6": ["none", "conv", "sep"],
    }))
    strategy = make_strategy(name, space, 3, population=4, tournament=2)
    seen = []
    while True:
        proposed = strategy.ask(region, 1)
        if not proposed:
            break
        g = proposed[0]
        assert space.contains(g, region)
        seen.append(g)
        strategy.tell([(g, float(len(space.to_str(g)) + depth(g)))])
    assert len(seen) == len(set(seen)) == space.size(region) == 4 * (1 + 1 + 2)


def test_forbidden_combinations(tmp_path):
    forbid = 'forbid = [{ layer_1 = "pool", layer_2 = ["pool", "sep"] }]'
    text = MACRO.replace('optional = ["layer_5", "layer_6"]', forbid)
    space = load_user_space(write(tmp_path, text))
    assert space.size() == MACRO_GRID - 2 * 3 * 3 * 16
    assert set(space.enumerate()) == brute_force_valid(space)
    assert space.why_invalid(("pool", "sep", "conv", "conv", "none", "none")).startswith(
        "layer_1 = pool, layer_2 in pool/sep is forbidden"
    )


def test_rules_and_a_table_row_that_breaks_them(tmp_path):
    table = "arch,t\n64-cccc00-basic,1.0\n64-ccccc0-basic,2.0\n64-cccc0c-basic,3.0\n"
    text = MACRO + '[table]\nfile = "table.csv"\n'
    with pytest.raises(UserError) as info:
        load_user_space(write(tmp_path, text, table))
    assert str(info.value).startswith(
        "table.csv line 4: '64-cccc0c-basic' is not an architecture of macro: layer_5 is absent"
    )


# -- validity: the table's architectures only ------------------------------------------------------------
SPARSE_ROWS = ("cccc00", "cpcc00", "ccsc00", "cccs00", "ccccc0", "ccccs0", "cccccc", "pppppp", "ssss00", "cscpc0")
SPARSE = "arch,t\n" + "".join(f"64-{arch}-basic,{k}\n" for k, arch in enumerate(SPARSE_ROWS))


def test_table_only_candidates_are_the_rows(tmp_path):
    text = MACRO + "table_only = true\n" + '[table]\nfile = "table.csv"\n'
    space = load_user_space(write(tmp_path, text, SPARSE))
    rows = {space.from_str(line.split(",")[0]) for line in SPARSE.splitlines()[1:]}
    assert space.table_only and space.size() == len(rows) == 10
    assert set(space.enumerate()) == rows
    rng = random.Random(1)
    full = space.full_mask()
    assert {space.sample(full, rng) for _ in range(500)} == rows
    for g in rows:
        child = space.mutate(g, full, rng)
        assert child in rows and child != g  # the nearest other row when no single change is a row
    region = to_spec(space, parse_mask(space, {
        "layer_1": ["conv"], "layer_2": ["conv", "pool"], "layer_3": ["conv"], "layer_4": ["conv", "sep"],
        "layer_5": ["none", "conv", "sep"], "layer_6": ["none", "conv"],
    }))
    assert space.size(region) == len({g for g in rows if space.contains(g, region)}) == 6
    assert space.grid_size(region) == 2 * 2 * 3 * 2
    with pytest.raises(UserError, match=r"no valid architecture.*not in the table"):
        parse_mask(space, {f"layer_{i}": ["sep"] for i in range(1, 7)})
    assert load_user_table(space).dense  # it holds every candidate


def test_strategies_never_waste_an_evaluation_on_a_string_outside_a_sparse_table(tmp_path):
    text = MACRO + "table_only = true\n" + '[table]\nfile = "table.csv"\n'
    space = load_user_space(write(tmp_path, text, SPARSE))
    table = load_user_table(space)
    strategy = make_strategy("rea", space, 0, population=3, tournament=2)
    found = []
    while proposed := strategy.ask(space.full_mask(), 2):
        for g in proposed:
            found.append(table.lookup(g, "t").val)  # raises ArchNotInTable for a string outside the table
        strategy.tell([(g, v) for g, v in zip(proposed, found[-len(proposed):], strict=True)])
    assert sorted(found) == sorted(float(k) for k in range(10))


# -- arch prefix and suffix ---------------------------------------------------------------------------------
def test_prefix_and_suffix(tmp_path):
    space = load_user_space(write(tmp_path, MACRO))
    g = ("conv", "pool", "sep", "conv", "sep", "none")
    assert space.to_str(g) == "64-cpscs0-basic" and space.from_str(" 64-cpscs0-basic ") == g
    for bad, needle in [
        ("64-cpscs0", "must end with '-basic'"),
        ("32-cpscs0-basic", "must start with '64-'"),
        ("64--basic", "expected 4 to 6 ops"),  # a short string may leave out optional layers, not more
    ]:
        with pytest.raises(UserError, match=needle):
            space.from_str(bad)
    text = MACRO.replace('format = "digits"', 'format = "ops_joined"\nseparator = "."')
    joined = load_user_space(write(tmp_path, text))
    assert joined.to_str(g) == "64-conv.pool.sep.conv.sep.none-basic"
    assert joined.from_str("64-conv.pool.sep.conv.sep.none-basic") == g


# -- metric columns and direction --------------------------------------------------------------------------------
LOSS = """\
name = "lossy"
kind = "chain"
tasks = ["a", "b"]
[ops]
x = "op x"
y = "op y"
z = "op z"
[[layers]]
ops = ["x", "y", "z"]
[[layers]]
ops = ["x", "y", "z"]
[metric]
name = "validation loss"
higher_is_better = false
validation = "{task}_val_loss"
test = "{task}_test_loss"
[search]
population = 4
tournament = 3
adapt_every = 3
max_ops = 1
top_target = 2
[table]
file = "table.csv"
"""
LOSS_CSV = "arch,a_val_loss,a_test_loss,b_val_loss\n" + "".join(
    f"{p}-{q},{1 + i + 0.5 * j},{1.1 + i + 0.5 * j},{5 - i - j}\n"
    for i, p in enumerate("xyz")
    for j, q in enumerate("xyz")
)


def test_lower_is_better_metric_with_named_columns(tmp_path):
    space = load_user_space(write(tmp_path, LOSS, LOSS_CSV))
    assert not space.higher_is_better and space.metric.name == "validation loss"
    table = load_user_table(space)
    m = table.lookup(space.from_str("x-x"), "a")
    assert (m.val, m.test) == (1.0, 1.1)
    assert table.lookup(space.from_str("x-x"), "b").test is None
    assert [space.to_str(g) for g, _ in table.top("a", 3)] == ["x-x", "x-y", "x-z"]  # lowest loss first
    assert table.top("a", 1)[0][1] == 1.0
    optimum, _ = thresholds(table.fitness("a"))
    assert optimum == -1.0  # fitness: higher is better
    assert "lower is better" in space.describe_code()
    assert space.search_defaults() == SearchDefaults(population=4, tournament=3, adapt_every=3, max_ops=1, top_target=2)


def test_a_lower_is_better_run_finds_the_lowest_loss(tmp_path):
    import lapt

    path = write(tmp_path, LOSS, LOSS_CSV)
    result = lapt.run(space=str(path), sources=["b"], target="a", budget=9, seed=0)
    assert result.summary["best"]["arch"] == "x-x" and result.summary["best"]["val"] == 1.0
    assert result.summary["optimum_val"] == 1.0 and result.summary["evals_to_optimum"] is not None
    assert all(t.fitness == -t.val for t in result.trials)


def test_test_only_benchmark_selects_on_test_and_says_so(tmp_path, capsys):
    text = LOSS.replace("higher_is_better = false", "higher_is_better = true").replace(
        'validation = "{task}_val_loss"', 'validation = ""'
    )
    rows = (f"{p}-{q},{i * 3 + j}\n" for i, p in enumerate("xyz") for j, q in enumerate("xyz"))
    csv = "arch,a_test_loss\n" + "".join(rows)
    path = write(tmp_path, text, csv)
    space = load_user_space(path)
    table = load_user_table(space)
    assert table.selection == "test" and table.tasks == ("a",)
    m = table.lookup(space.from_str("z-z"), "a")
    assert m.val == m.test == 8.0
    assert main(["eval", str(path), "z-z", "--task", "a"]) == 0
    out = capsys.readouterr().out
    assert "test=8.0000 (the benchmark publishes test only: selection uses it)" in out and "val=" not in out
    assert main(["spaces", "--file", str(path)]) == 0
    assert "test only: selection uses it" in capsys.readouterr().out


def test_eval_says_lower_is_better_and_refuses_an_invalid_architecture(tmp_path, capsys):
    assert main(["eval", str(write(tmp_path, LOSS, LOSS_CSV)), "y-z", "--task", "a"]) == 0
    assert capsys.readouterr().out.strip() == "y-z  task=a  val=3.0000  test=3.100  (lower is better)"
    path = write(tmp_path, MACRO, name="macro")
    assert main(["eval", str(path), "64-cccc0c-basic", "--task", "t"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lapt: error: 64-cccc0c-basic is not an architecture of macro: layer_5")


# -- search defaults reach the run ---------------------------------------------------------------------------
def test_search_defaults_come_from_the_file(tmp_path):
    from lapt.api import resolve_settings

    settings, _ = resolve_settings(space=str(write(tmp_path, LOSS, LOSS_CSV)), sources=["b"], target="a")
    assert (settings.population, settings.tournament, settings.adapt_every, settings.max_ops, settings.top_target) == (
        4, 3, 3, 1, 2,
    )
    settings, _ = resolve_settings(space=str(tmp_path / "space.toml"), sources=["b"], target="a", population=6)
    assert settings.population == 6 and settings.tournament == 3


# -- invalid declarations: one line each ---------------------------------------------------------------------
def _m(old: str, new: str, base: str = MACRO) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


BAD = [
    (_m('optional = ["layer_5", "layer_6"]', 'optional = ["layer_7"]'), "[validity] optional: unknown layer 'layer_7'"),
    (_m('optional = ["layer_5", "layer_6"]', 'optional = ["layer_4"]'),
     "optional layer 'layer_4' needs the absent op 'none' among its ops"),
    (_m('optional = ["layer_5", "layer_6"]', 'optional = ["layer_5", "layer_5"]'), "layer 'layer_5' is listed twice"),
    (_m('optional = ["layer_5", "layer_6"]', 'optional = ["layer_5"]\nabsent = "skip"'),
     "needs the absent op 'skip'"),
    (_m('optional = ["layer_5", "layer_6"]', "forbid = [{}]"), "[validity] forbid[0] is empty"),
    (_m('optional = ["layer_5", "layer_6"]', 'forbid = [{ layer_9 = "conv" }]'), "forbid[0]: unknown layer 'layer_9'"),
    (_m('optional = ["layer_5", "layer_6"]', 'forbid = [{ layer_1 = "none" }]'),
     "forbid[0]: op 'none' is not an op of layer_1"),
    (_m('optional = ["layer_5", "layer_6"]', 'forbid = [{ layer_1 = ["conv", "pool", "sep"] }]'),
     "[validity] leaves no valid architecture"),
    (_m('optional = ["layer_5", "layer_6"]', "table_only = true"), "table_only needs a [table]"),
    (_m('optional = ["layer_5", "layer_6"]', "colour = 1"), "unknown key 'validity.colour'"),
    (_m('suffix = "-basic"', "suffix = 3"), "arch.suffix: Input should be a valid string"),
    (_m('kind = "chain"', 'kind = "chain"\nmax_ops = 2'), "unknown key 'max_ops'"),
    (MACRO + "[search]\npopulation = 2\ntournament = 3\n", "[search] tournament (3) cannot exceed population (2)"),
    (MACRO + "[search]\npopulation = 0\n", "search.population: Input should be greater than or equal to 1"),
    (MACRO + "[search]\nelitism = 1\n", "unknown key 'search.elitism'"),
    (MACRO + '[metric]\nvalidation = ""\ntest = ""\n', "[metric] names no column"),
    (MACRO + '[metric]\nvalidation = "acc"\n', None),  # one task: a fixed column name is fine
    (_m('tasks = ["t"]', 'tasks = ["t", "u"]') + '[metric]\nvalidation = "acc"\n', "must contain {task}"),
    (MACRO + '[metric]\nvalidation = "{task}_{split}"\n', "the only placeholder is {task}"),
    (MACRO + '[metric]\nvalidation = "{task}"\ntest = "{task}"\n', "validation and test name the same column"),
    (MACRO + "[metric]\nhigher_is_better = 0\n", "metric.higher_is_better: Input should be a valid boolean"),
    (MACRO + '[evaluator]\npath = "."\n', "[evaluator] names no code"),
    (MACRO + '[evaluator]\nfunction = "no colon"\n', "expected MODULE:FUNCTION"),
    (MACRO + '[evaluator]\nfunction = "no_such_module_here:f"\n', "no module 'no_such_module_here'"),
    (MACRO + '[evaluator]\nfunction = "m:f"\npath = "missing"\n', "[evaluator] path 'missing' is not a folder"),
]


@pytest.mark.parametrize("text,needle", BAD, ids=[n or "valid" for _, n in BAD])
def test_invalid_declarations_are_one_line(tmp_path, text, needle, capsys):
    path = write(tmp_path, text)
    if needle is None:
        assert load_user_space(path).size() == MACRO_VALID
        return
    with pytest.raises(UserError, match=r"^space\.toml: ") as info:
        load_user_space(path)
    assert needle in str(info.value)
    assert main(["spaces", "--file", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_loss_table_columns_are_checked_against_the_metric_section(tmp_path):
    with pytest.raises(UserError, match=r"table.csv line 1: unknown column 'a' \(expected 'arch' and, per task, "
                                        r"validation '\{task\}_val_loss' and optional test '\{task\}_test_loss'"):
        load_user_space(write(tmp_path, LOSS, "arch,a\nx-x,1\n"))
    with pytest.raises(UserError, match="test column 'a_test_loss' has no validation column 'a_val_loss'"):
        load_user_space(write(tmp_path, LOSS, "arch,a_test_loss,b_val_loss\nx-x,1,2\n"))


def test_the_mask_region_check_lives_on_the_space(tmp_path, nb201, darts):
    with pytest.raises(UserError, match="every path from input to output is 'none'"):
        parse_mask(nb201, {**{n: ["none"] for n in nb201.layer_names}, "edge_0_1": ["nor_conv_3x3"]})
    parse_mask(nb201, {**{n: ["none"] for n in nb201.layer_names}, "edge_0_3": ["skip_connect"]})
    full = {layer.name: {"ops": list(layer.ops[:2]), "inputs": list(layer.inputs)} for layer in darts.layers}
    with pytest.raises(UserError, match="normal_node_3: a node needs at least 2 distinct allowed inputs"):
        parse_mask(darts, {**full, "normal_node_3": {"ops": ["skip_connect"], "inputs": [1, 1]}})
    chain = load_user_space(write(tmp_path, MACRO))
    cut = MaskSpec(ops=(("conv",), ("none",), *chain.full_mask().ops[2:]))
    assert "layer_2 allows only 'none', which cuts the chain" in (chain.region_problem(cut) or "")
    assert chain.region_problem(chain.full_mask()) is None
