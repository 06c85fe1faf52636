"""Space files and tables a hostile (or careless) user writes: each is refused in one line when it is
loaded, or works; none ends in a traceback later, half-way through a run.

Covered: a space too large for a 64-bit integer, a space that has no working architecture, a chain
whose best op is ``none`` on a lower-is-better table, optional layers that are not at the end, a table
outside the space's folder (or not a table at all, or semicolon-separated), a task without columns,
op names that are not ASCII, and metric values near the largest float.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from lapt.cli import main
from lapt.spaces.user import load_user_space

LATENCY_MS = {"none": 0.0, "conv_1x1": 1.0, "conv_3x3": 3.0}


def lapt(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def latency_space(folder: Path, extra: str = "", rows: dict[str, dict[str, float]] | None = None) -> Path:
    """A 3-layer chain with a latency table (``none`` 0 ms, ``conv_1x1`` 1 ms, ``conv_3x3`` 3 ms), lower is
    better, two tasks; ``rows`` replaces the table's rows."""
    ops = list(LATENCY_MS)
    if rows is None:
        rows = {}
        for g in itertools.product(ops, repeat=3):
            cost = sum(LATENCY_MS[op] for op in g)
            rows["-".join(g)] = {"src": cost + 0.1 * (g[0] == "conv_1x1"), "lat": cost + 0.2 * (g[1] == "conv_3x3")}
    columns = list(next(iter(rows.values())))
    lines = ["arch," + ",".join(columns)] + [f"{a}," + ",".join(repr(v[c]) for c in columns) for a, v in rows.items()]
    (folder / "lat.csv").write_text("\n".join(lines) + "\n")
    path = folder / "lat.toml"
    path.write_text(textwrap.dedent("""\
        name = "latency3"
        kind = "chain"
        tasks = ["src", "lat"]
        [ops]
        none = "leaves the layer out"
        conv_1x1 = "1x1 convolution"
        conv_3x3 = "3x3 convolution"
        [[layers]]
        ops = ["none", "conv_1x1", "conv_3x3"]
        [[layers]]
        ops = ["none", "conv_1x1", "conv_3x3"]
        [[layers]]
        ops = ["none", "conv_1x1", "conv_3x3"]
        [metric]
        name = "latency (ms)"
        higher_is_better = false
        [table]
        file = "lat.csv"
        """) + extra)
    return path


def refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``lapt spaces --file`` prints for ``path`` (exit status 2)."""
    assert main(["spaces", "--file", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# -- sizes beyond 64 bits ---------------------------------------------------------------------------------
def test_a_space_of_two_to_the_64_architectures_runs_and_records_its_exact_size(tmp_path):
    lines = ['name = "wide"', 'kind = "chain"', 'tasks = ["a"]', "[ops]", 'none = "nothing"', 'conv = "a conv"']
    lines += ["[[layers]]\nops = [\"none\", \"conv\"]"] * 64
    lines += ["[evaluator]", 'function = "score:score"']
    (tmp_path / "wide.toml").write_text("\n".join(lines) + "\n")
    (tmp_path / "score.py").write_text("def score(arch, task):\n    return sum(op == 'conv' for op in arch.values())\n")
    principles = {"version": 0, "space": "wide", "source": "written by hand", "tasks_seen": [],
                  "principles": [{"statement": "conv is better than none everywhere.", "evidence": "by hand",
                                  "layer": None, "favour": ["conv"], "avoid": ["none"], "confidence": 0.9}]}
    (tmp_path / "p.json").write_text(json.dumps(principles))
    out = lapt("run", "--space", "wide.toml", "--principles", "p.json", "--target", "a", "--budget", "6",
               "--run-dir", "run", "--quiet", "--no-store", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    # The one-architecture region is exhausted at once and the search widens to the whole space, whose size
    # is recorded as its digits: the checkpointer holds signed 64-bit integers only.
    sizes = [json.loads(p.read_text())["size"] for p in sorted((tmp_path / "run" / "masks").glob("v*.json"))]
    assert str(2**64) in sizes and all(isinstance(s, int) for s in sizes if s != str(2**64)), sizes
    assert len((tmp_path / "run" / "trials.jsonl").read_text().splitlines()) == 6


# -- no working architecture ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,layers,needle",
    [
        ("chain", ['ops = ["none"]', 'ops = ["none"]'], "layer_1 allows only 'none'"),
        ("chain", ['ops = ["conv", "none"]', 'ops = ["none"]'], "layer_2 allows only 'none'"),
        ("cell", ['edge = "0->1"\nops = ["none"]', 'edge = "1->2"\nops = ["none", "conv"]'],
         "every path from input to output is 'none'"),
        ("cell", ['edge = "0->1"\nops = ["none", "conv"]', 'edge = "0->2"\nops = ["none"]',
                  'edge = "1->2"\nops = ["none"]'], "every path from input to output is 'none'"),
    ],
)
def test_a_space_without_a_working_architecture_is_refused_when_loaded(tmp_path, capsys, kind, layers, needle):
    body = "".join(f"[[layers]]\n{layer}\n" for layer in layers)
    path = tmp_path / "dead.toml"
    path.write_text(f'name = "dead"\nkind = "{kind}"\ntasks = ["t"]\n[ops]\nnone = "zero"\nconv = "conv"\n{body}')
    line = refused(path, capsys)
    assert line.startswith("lapt: error: dead.toml: the space has no working architecture") and needle in line


# -- the best op is none ---------------------------------------------------------------------------------
def test_lapt_runs_undegraded_on_a_chain_whose_best_op_is_none(tmp_path, capsys):
    path = latency_space(tmp_path)
    run = tmp_path / "run"
    code = main(["run", "--space", str(path), "--source", "src", "--target", "lat", "--budget", "12", "--run-dir",
                 str(run), "--quiet", "--no-store"])
    out = capsys.readouterr().out
    assert code == 0 and "DEGRADED" not in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["degraded"] == []
    decisions = [json.loads(line) for line in (run / "decisions.jsonl").read_text().splitlines()]
    refinements = [d for d in decisions if d["agent"] == "refiner"]
    assert refinements and all(d["ok"] for d in refinements)
    first = json.loads((run / "masks" / "v1.json").read_text())["mask"]
    for layer in ("layer_1", "layer_2", "layer_3"):  # the principles favour none; the region keeps a real op
        assert "none" in first[layer] and set(first[layer]) - {"none"}, first


# -- [validity] optional --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "optional,ok",
    [('["layer_3"]', True), ('["layer_2", "layer_3"]', True), ('["layer_2"]', False),
     ('["layer_1", "layer_3"]', False)],
)
def test_optional_layers_must_be_the_last_ones(tmp_path, capsys, optional, ok):
    path = latency_space(tmp_path, f"[validity]\noptional = {optional}\n")
    if ok:  # (the latency table holds every combination, gaps too: it is not read here)
        assert load_user_space(path, read_table=False).validity is not None
        return
    line = refused(path, capsys)
    assert "[validity] optional" in line and "at the end" in line


# -- the table file ----------------------------------------------------------------------------------------
def test_a_table_outside_the_space_folder_is_refused_and_never_echoed(tmp_path, capsys):
    folder = tmp_path / "space"
    folder.mkdir()
    path = latency_space(folder)
    secret = tmp_path / "secrets.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\nhunter2\n")
    for given in (str(secret), "../secrets.txt"):
        path.write_text(path.read_text().replace('file = "lat.csv"', f'file = "{given}"'))
        line = refused(path, capsys)
        assert "outside the folder of lat.toml" in line and "root:x" not in line
        path.write_text(path.read_text().replace(f'file = "{given}"', 'file = "lat.csv"'))
    # Inside the folder (a sub-folder, or a link the user put there) is the user's choice.
    (folder / "tables").mkdir()
    (folder / "tables" / "lat.csv").write_text((folder / "lat.csv").read_text())
    path.write_text(path.read_text().replace('file = "lat.csv"', 'file = "tables/lat.csv"'))
    assert load_user_space(path).table_data is not None
    # Not a table at all, inside the folder: refused without its first line.
    (folder / "tables" / "lat.csv").write_text("root:x:0:0:root:/root:/bin/bash\nhunter2\n")
    line = refused(path, capsys)
    assert "root:x" not in line and "lat.csv line 1" in line and "not a table header" in line


def test_a_semicolon_separated_table_gets_a_delimiter_hint(tmp_path, capsys):
    path = latency_space(tmp_path)
    (tmp_path / "lat.csv").write_text((tmp_path / "lat.csv").read_text().replace(",", ";"))
    line = refused(path, capsys)
    assert "lat.csv line 1" in line and "';'" in line and "comma-separated" in line


# -- tasks without columns -----------------------------------------------------------------------------------
def test_a_task_without_table_columns_is_a_target_for_the_space_function(tmp_path, capsys):
    path = latency_space(tmp_path, '[evaluator]\nfunction = "cost:cost"\n')
    path.write_text(path.read_text().replace('tasks = ["src", "lat"]', 'tasks = ["src", "lat", "phone"]'))
    (tmp_path / "cost.py").write_text("def cost(arch, task):\n    return sum(op != 'none' for op in arch.values())\n")
    assert load_user_space(path).tasks == ("src", "lat", "phone")
    run = tmp_path / "run"
    assert main(["run", "--space", str(path), "--source", "src", "--target", "phone", "--evaluator", "python",
                 "--budget", "4", "--run-dir", str(run), "--quiet", "--no-store"]) == 0
    capsys.readouterr()
    # As a table task it is refused, saying it has no columns (not that it is unknown) and what it can do.
    assert main(["eval", str(path), "none-none-conv_1x1", "--task", "phone", "--evaluator", "table"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'phone' has no columns in lat.csv" in err[0] and "--evaluator python" in err[0]
    assert "unknown task" not in err[0]


# -- op names ------------------------------------------------------------------------------------------------
def test_a_non_ascii_op_name_is_refused_saying_ascii(tmp_path, capsys):
    path = latency_space(tmp_path)
    text = path.read_text().replace('conv_3x3 = "3x3', '"conv_3×3" = "3x3').replace('"conv_3x3"', '"conv_3×3"')
    path.write_text(text)  # a quoted TOML key may hold any character
    line = refused(path, capsys)
    assert "'conv_3×3'" in line and "ASCII" in line


# -- values near the largest float --------------------------------------------------------------------------
def test_metric_values_near_the_largest_float_give_no_warning_and_print_readably(tmp_path, capsys):
    rows = {}
    for k, g in enumerate(itertools.product(LATENCY_MS, repeat=3)):
        rows["-".join(g)] = {"src": 1.7e308 - k * 1e306, "lat": 1.6e308 - (k % 7) * 1e306}
    path = latency_space(tmp_path, rows=rows)
    path.write_text(path.read_text().replace("higher_is_better = false", "higher_is_better = true"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy overflow warning fails the test
        code = main(["run", "--space", str(path), "--source", "src", "--target", "lat", "--budget", "12",
                     "--run-dir", str(tmp_path / "run"), "--quiet", "--no-store"])
        assert code == 0
        out = capsys.readouterr().out
        assert main(["eval", str(path), "none-none-conv_1x1", "--task", "lat"]) == 0
        out += capsys.readouterr().out
    assert "val=1.6e+308" in out or "val=1.59e+308" in out, out
    assert max(len(line) for line in out.splitlines()) < 200
