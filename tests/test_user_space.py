"""User-defined spaces from TOML files: the shipped example end to end, and every malformed input."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import math
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lapt.cli import main
from lapt.errors import UserError
from lapt.spaces import get_space
from lapt.spaces.base import SearchDefaults
from lapt.spaces.user import UserSpace, load_user_space
from lapt.tables.registry import table_for
from lapt.tables.user import ArchNotInTable, UserTable, load_user_table
from lapt.transfer.masks import mask_model, parse_mask, to_spec

ROOT = Path(__file__).resolve().parents[1]
TOY_DIR = ROOT / "examples" / "toy_space"
TOY = TOY_DIR / "toy_space.toml"
BEST_A = "conv_3x3-conv_3x3-conv_3x3-skip_connect"


def lapt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, timeout=60)


def toy_rows() -> dict[str, dict[str, str]]:
    with (TOY_DIR / "toy_table.csv").open(newline="") as f:
        return {row["arch"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def toy() -> UserSpace:
    space = get_space(str(TOY))
    assert isinstance(space, UserSpace)
    return space


# -- the shipped example ---------------------------------------------------------------------------
def test_example_table_is_up_to_date():
    spec = importlib.util.spec_from_file_location("make_table", TOY_DIR / "make_table.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


def test_example_space_shape(toy):
    assert toy.name == "toy" and toy.kind == "cell"
    assert toy.size() == 81 and toy.tasks == ("task_a", "task_b")
    assert toy.layer_names == ("edge_0_1", "edge_0_2", "edge_1_2", "edge_2_3")
    assert toy.search_defaults() == SearchDefaults(population=5, tournament=2, adapt_every=5, max_ops=2, top_target=5)
    assert toy.spec_sha256 == hashlib.sha256(TOY.read_bytes()).hexdigest()
    assert toy.table_data is not None
    assert toy.table_data.sha256 == hashlib.sha256((TOY_DIR / "toy_table.csv").read_bytes()).hexdigest()


def test_get_space_caches_by_resolved_path(toy, monkeypatch):
    monkeypatch.chdir(TOY_DIR)
    assert get_space("toy_space.toml") is toy
    assert get_space(f"file:{TOY}") is toy
    assert get_space(toy.ref) is toy
    with pytest.raises(UserError, match="not found"):
        get_space("nowhere.toml")
    with pytest.raises(UserError, match="unknown space"):
        get_space("toy")


def test_codec_round_trip_every_arch(toy):
    seen = set()
    for g in toy.enumerate():
        s = toy.to_str(g)
        assert toy.from_str(s) == g
        assert toy.from_index(toy.index(g)) == g
        seen.add(s)
    assert len(seen) == toy.size()
    assert set(toy_rows()) == seen


def test_sample_and_mutate_inside_masks(toy):
    rng = random.Random(0)
    model = mask_model(toy, toy.search_defaults().max_ops)
    for _ in range(30):
        data = {layer.name: rng.sample(list(layer.ops), rng.randint(1, 2)) for layer in toy.layers}
        data["edge_2_3"] = ["conv_3x3"]
        data["edge_0_2"] = ["skip_connect"]
        spec = to_spec(toy, model(**data))
        assert sum(1 for _ in toy.enumerate(spec)) == toy.size(spec)
        for _ in range(20):
            assert toy.contains(toy.sample(spec, rng), spec)
            child = toy.mutate(toy.sample(toy.full_mask(), rng), spec, rng)
            assert toy.contains(child, spec)
    with pytest.raises(UserError, match="no valid architecture"):
        parse_mask(toy, {name: ["none"] for name in toy.layer_names})
    with pytest.raises(UserError, match="at most 2"):
        parse_mask(toy, {name: list(toy.ops) for name in toy.layer_names}, max_ops=2)


def test_table_lookups_match_the_csv(toy):
    table = table_for(toy)
    assert isinstance(table, UserTable) and table.dense and table.rows == 81
    assert table.name == f"toy@{toy.table_data.sha256[:12]}"
    assert table.tasks == ("task_a", "task_b") and table.has_test
    rows = toy_rows()
    for arch, row in rows.items():
        g = toy.from_str(arch)
        a = table.lookup(g, "task_a")
        assert (a.val, a.test) == (float(row["task_a"]), float(row["task_a_test"]))
        b = table.lookup(g, "task_b")
        assert b.val == float(row["task_b"]) and b.test is None
    best, val = table.top("task_a", 1)[0]
    assert toy.to_str(best) == BEST_A and val == max(float(r["task_a"]) for r in rows.values())
    assert table.values("task_b", "test") is table.values("task_b", "val")  # no test column: falls back
    with pytest.raises(UserError, match="unknown task"):
        table.check_task("task_c")


def test_tabular_evaluator_uses_the_user_table(toy):
    from lapt.tools.evaluation import TabularEvaluator

    evaluator = TabularEvaluator.for_space(toy)
    out = evaluator.evaluate(toy, toy.from_str(BEST_A), "task_a")
    assert out.status == "ok" and out.val == pytest.approx(87.6)
    assert evaluator.settings()["table"].startswith("toy@")


def test_code_description(toy):
    code = toy.describe_code()
    assert "def forward" in code
    for op in toy.ops:
        assert f'"{op}"' in code
        assert toy.op_info(op).description in code
    assert 'x2 = self.edge["edge_0_2"](x0) + self.edge["edge_1_2"](x1)' in code
    assert "return x3" in code
    assert "ReLUConvBN(C, C, kernel=3)" in code
    assert "Network: stem" in code


def test_cli_spaces_and_eval():
    out = lapt("spaces", "--file", str(TOY))
    assert out.returncode == 0, out.stderr
    assert "81 architectures" in out.stdout and "81 rows (every architecture)" in out.stdout
    out = lapt("eval", str(TOY), BEST_A, "--task", "task_a", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["space"] == "toy" and data["val"] == pytest.approx(87.6) and data["test"] == pytest.approx(86.9)
    out = lapt("eval", str(TOY), "conv_3x3-conv_3x3", "--task", "task_a")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "lapt: error: toy: malformed arch string 'conv_3x3-conv_3x3': expected 4 ops joined by '-', got 2"
    ]


def test_cli_code_accepts_a_space_file(capsys):
    assert main(["spaces", "--code", str(TOY)]) == 0
    assert "class Cell" in capsys.readouterr().out


# -- a chain space with digit strings and a sparse table -------------------------------------------
CHAIN = """\
name = "chain3"
title = "Three-layer chain"
kind = "chain"
tasks = ["alpha", "beta"]

[ops]
conv = { description = "3x3 conv", symbol = "0" }
pool = { description = "3x3 max pool", symbol = "1" }
skip = { description = "identity", symbol = "2" }

[[layers]]
name = "stem"
ops = ["conv", "pool", "skip"]

[[layers]]
ops = ["conv", "pool", "skip"]

[[layers]]
name = "head"
ops = ["conv", "skip"]
description = "last layer"

[arch]
format = "digits"
prefix = "c-"

[search]
max_ops = 2
adapt_every = 4

[table]
file = "chain.csv"
"""

CHAIN_CSV = """\
arch,alpha,beta,alpha_test
c-000,1.5,2.0,1.4
c-012,3.0,-1.0,2.9
c-102,0.5,0.0,0.1
"""


def write_space(tmp_path: Path, toml: str = CHAIN, table: str | None = CHAIN_CSV) -> Path:
    path = tmp_path / "chain.toml"
    path.write_text(textwrap.dedent(toml))
    if table is not None:
        (tmp_path / "chain.csv").write_text(table)
    return path


def test_chain_space_with_digits_and_sparse_table(tmp_path):
    space = load_user_space(write_space(tmp_path))
    assert space.layer_names == ("stem", "layer_2", "head") and space.size() == 18
    for g in space.enumerate():
        assert space.from_str(space.to_str(g)) == g
    assert space.to_str(("pool", "conv", "skip")) == "c-102"
    code = space.describe_code()
    assert 'x = self.layer["stem"](x)\n        x = self.layer["layer_2"](x)\n        x = self.layer["head"](x)' in code
    assert "head (last layer): conv, skip" in code
    table = load_user_table(space)
    assert not table.dense and table.rows == 3
    assert table.lookup(space.from_str("c-012"), "alpha").test == 2.9
    assert table.lookup(space.from_str("c-012"), "beta").test is None
    with pytest.raises(ArchNotInTable, match=r"c-222 is not in table chain\.csv"):
        table.lookup(space.from_str("c-222"), "alpha")
    top = table.top("beta", 10)
    assert [(space.to_str(g), v) for g, v in top] == [("c-000", 2.0), ("c-102", 0.0), ("c-012", -1.0)]
    values = table.values("alpha")
    assert values.shape == (18,) and int(np.isnan(values).sum()) == 15
    for bad, needle in [("c-00", "expected 3 ops"), ("x-000", "must start with 'c-'"), ("c-0a0", "unknown symbol")]:
        with pytest.raises(UserError, match=needle):
            space.from_str(bad)
    with pytest.raises(UserError, match="unknown op 'pool' on head"):
        space.from_str("c-001")


def test_cli_eval_missing_arch_in_sparse_table(tmp_path, capsys):
    path = write_space(tmp_path)
    assert main(["eval", str(path), "c-222", "--task", "alpha"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not in table chain.csv (3 of 18 architectures)" in err[0]


def test_space_without_table(tmp_path, capsys):
    toml = CHAIN.split("[table]")[0]
    path = write_space(tmp_path, toml, table=None)
    space = load_user_space(path)
    assert space.table_data is None and table_for(space) is None
    assert main(["eval", str(path), "c-000", "--task", "alpha"]) == 2
    err = capsys.readouterr().err
    assert "declares no benchmark table" in err and "add a [table] section" in err
    assert "--evaluator train" not in err  # lapt cannot build a user space's networks
    assert main(["eval", str(path), "c-000", "--evaluator", "train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names no network builder to train" in err[0]
    assert main(["spaces", "--file", str(path)]) == 0
    assert "table: -" in capsys.readouterr().out


def _edit(old: str, new: str) -> str:
    assert old in CHAIN, old
    return CHAIN.replace(old, new, 1)


CELL = """\
name = "cell"
kind = "cell"
tasks = ["t"]
[ops]
a = "op a"
b = "op b"
{layers}
"""


def _cell(*edges: str) -> str:
    return CELL.format(layers="".join(f'[[layers]]\nedge = "{e}"\nops = ["a", "b"]\n' for e in edges))


SPACE_CASES = [
    (CHAIN + 'colour = "red"\n', "unknown key 'table.colour'"),
    ("colour = 1\n" + CHAIN, "unknown key 'colour'"),
    (_edit('name = "head"', 'nme = "head"'), "unknown key 'layers[2].nme'"),
    (_edit('name = "chain3"\n', ""), "missing field 'name'"),
    (_edit('kind = "chain"\n', ""), "missing field 'kind'"),
    (_edit('kind = "chain"', 'kind = "tree"'), "kind: Input should be 'cell' or 'chain'"),
    (_edit("max_ops = 2", 'max_ops = "2"'), "search.max_ops: Input should be a valid integer"),
    (_edit('ops = ["conv", "skip"]', 'ops = ["conv", "zap"]'), "op 'zap' is not declared in [ops]"),
    (_edit('ops = ["conv", "skip"]', 'ops = ["conv", "conv"]'), "an op is listed twice"),
    (_edit('ops = ["conv", "skip"]', "ops = []"), "layers[2].ops: List should have at least 1 item"),
    (_edit('name = "head"', 'name = "stem"'), "layer name 'stem' is used twice"),
    (_edit('name = "head"', 'name = "rationale"'), "layer name 'rationale'"),
    (_edit('name = "head"', 'edge = "0->1"'), "chain layers have no 'edge'"),
    (_edit('tasks = ["alpha", "beta"]', 'tasks = ["alpha", "alpha"]'), "task 'alpha' is listed twice"),
    (_edit('tasks = ["alpha", "beta"]', 'tasks = ["alpha_test"]'), "must not end in '_test'"),
    (_edit('name = "chain3"', 'name = "nb201"'), "is a built-in space"),
    (_edit('name = "chain3"', 'name = "Chain 3"'), "name 'Chain 3' must be lower-case"),
    (_edit('skip = { description = "identity", symbol = "2" }', 'skip = "identity"'), "needs a symbol for op 'skip'"),
    (_edit('symbol = "2"', 'symbol = "1"'), "ops 'pool' and 'skip' share the symbol '1'"),
    (_edit('symbol = "2"', 'symbol = "22"'), "ops.skip.symbol: String should have at most 1 character"),
    (_edit('description = "identity"', 'description = """two\nlines"""'), "must be one line"),
    (_edit('"3x3 conv"', '""'), "ops.conv.description: String should have at least 1 character"),
    (_edit('format = "digits"', 'format = "ops_joined"\nseparator = ""'), "needs a non-empty separator"),
    (_edit('format = "digits"', 'format = "ops_joined"\nseparator = "o"'), "separator 'o' occurs in op name"),
    (_edit('file = "chain.csv"', 'file = "missing.csv"'), "missing.csv: no such file"),
    (_edit('file = "chain.csv"', 'file = "chain.csv"\nsha256 = "' + "0" * 64 + '"'), "the table changed"),
    (_edit('file = "chain.csv"', 'file = "chain.csv"\nsha256 = "abc"'), "table.sha256: String should match"),
    (CHAIN + "[ops\n", "invalid TOML"),
    (_cell("0->1", "1->2"), None),
    (_cell("0-1"), "bad edge '0-1'"),
    (_cell("1->1"), "edges go from a lower to a higher node"),
    (_cell("0->1", "0->1"), "edge '0->1' is declared twice"),
    (_cell("0->1", "1->3"), "node 2 has no incoming edge"),
    (_cell("0->1", "0->2"), "node 1 has no outgoing edge"),
    (_cell("0->1").replace('edge = "0->1"', 'name = "x"'), "cell layers are named by their edge"),
    (_cell("0->1").replace('edge = "0->1"\n', ""), "missing field 'edge'"),
]


@pytest.mark.parametrize("toml,needle", SPACE_CASES, ids=[n or "valid" for _, n in SPACE_CASES])
def test_malformed_space_files(tmp_path, toml, needle, capsys):
    path = write_space(tmp_path, toml)
    if needle is None:
        assert load_user_space(path).size() == 4
        return
    with pytest.raises(UserError, match=r"^chain\.(toml|csv): ") as info:
        load_user_space(path)
    assert needle in str(info.value)
    # The same problem through the command line: one line, exit status 2.
    assert main(["spaces", "--file", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_invalid_toml_names_the_line(tmp_path):
    with pytest.raises(UserError, match=r"chain.toml: invalid TOML: .*line 2"):
        load_user_space(write_space(tmp_path, 'name = "x"\nkind = \n'))


TABLE_CASES = [
    ("arch,alpha\nc-000,1\nc-012,2\nc-011,3\n", "chain.csv line 4: chain3: unknown op 'pool' on head"),
    ("arch,alpha\nc-000,1\nc-013,3\n", "chain.csv line 3: chain3: malformed arch string 'c-013': unknown symbol '3'"),
    ("arch,alpha\nc-000,1\nc-0000,2\n", "chain.csv line 3: chain3: malformed arch string 'c-0000': expected 3 ops"),
    ("arch,alpha\nc-000,1\nc-012,2\nc-000,3\n", "chain.csv line 4: duplicate architecture 'c-000' (first on line 2)"),
    ("arch,alpha,beta\nc-000,1,2\nc-012,,2\n", "chain.csv line 3: missing value in column 'alpha'"),
    ("arch,alpha\nc-000,high\n", "chain.csv line 2: column 'alpha': 'high' is not a number"),
    ("arch,alpha\nc-000,nan\n", "chain.csv line 2: column 'alpha': 'nan' is not a finite number"),
    ("arch,alpha,gamma\nc-000,1,2\n", "chain.csv line 1: unknown column 'gamma'"),
    ("arch,alpha,alpha\nc-000,1,2\n", "chain.csv line 1: column 'alpha' appears twice"),
    ("arch,gamma_test\nc-000,1\n", "chain.csv line 1: unknown column 'gamma_test'"),
    ("arch,alpha_test,beta\nc-000,1,2\n", "test column 'alpha_test' has no validation column 'alpha'"),
    ("genotype,alpha\nc-000,1\n", "chain.csv line 1: unknown column 'genotype'"),
    ("alpha\n1\n", "chain.csv line 1: no architecture column 'arch'"),
    ("arch\nc-000\n", "chain.csv line 1: no validation column (expected validation '{task}' and optional test"),
    ("arch,alpha\nc-000,1\nc-012,2,3\n", "chain.csv line 3: expected 2 fields, got 3"),
    ("", "chain.csv line 1: empty file"),
    ("arch,alpha\n\n", "chain.csv: no rows after the header"),
    ('arch,alpha\nc-000,1\n"c-012\n",2\nc-1x2,3\n', "chain.csv line 5: chain3: malformed arch string 'c-1x2'"),
]


@pytest.mark.parametrize("table,needle", TABLE_CASES, ids=[n.split(": ", 1)[-1][:40] for _, n in TABLE_CASES])
def test_malformed_tables(tmp_path, table, needle, capsys):
    path = write_space(tmp_path, table=table)
    with pytest.raises(UserError) as info:
        load_user_space(path)
    assert needle in str(info.value)
    assert main(["eval", str(path), "c-000", "--task", "alpha"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_blank_lines_and_bom_are_tolerated(tmp_path):
    path = write_space(tmp_path, table="\ufeffarch,alpha\r\nc-000,1\r\n\r\nc-012,2\r\n")
    table = load_user_table(load_user_space(path))
    assert table.rows == 2 and math.isnan(table.values("alpha")[-1])


def test_bad_table_via_cli_subprocess(tmp_path):
    path = write_space(tmp_path, table="arch,alpha\nc-000,1\nc-000,2\n")
    out = lapt("spaces", "--file", str(path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "lapt: error: chain.csv line 3: duplicate architecture 'c-000' (first on line 2)"
    ]
