"""Principle sets and trace files as a hostile user hands them in: empty sets, sets naming what does not
exist, 200 KB of brackets, terminal escapes in a statement, an export aimed at a FIFO, a symbolic link
or a device, traces whose runs hold the wrong types or that are not text at all.

Every one is a clear line (exit 2) or a safe result; nothing is half-written or replaced.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lapt
from lapt.cli import main
from lapt.cli.printable import printable
from lapt.files.json_input import MAX_JSON_DEPTH, JSONTooDeep, load_json
from lapt.principles.store import PrincipleStore
from lapt.runs.trace_file import TRACE_FILE, read_trace

sys.path.insert(0, str(Path(__file__).parent))
from test_principle_store import make_prov, make_set
from test_trace import FakeLangSmith

DEEP = "[" * 200_000 + "]" * 200_000
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil"


@pytest.fixture
def export(tmp_path: Path) -> dict[str, Any]:
    """A valid export of an NB201 principle set, as `lapt principles export` writes it (no id: editable)."""
    store = PrincipleStore(tmp_path / "src.sqlite")
    doc = store.export(store.add(make_set(), make_prov()))
    doc.pop("id")
    return doc


def write(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lapt: error: "), err
    return err


# -- one check, both ways in ---------------------------------------------------------------------------------
def edited(doc: dict[str, Any], how: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    first = doc["principle_set"]["principles"][0]
    if how == "empty":
        doc["principle_set"]["principles"] = []
    elif how == "op":
        first["favour"] = ["conv_9x9"]
    elif how == "global_op":
        doc["principle_set"]["principles"][1]["avoid"] = ["max_pool_5x5"]
    elif how == "layer":
        first["layer"] = "edge_9_9"
    elif how == "space":
        doc["provenance"]["space"] = "nb999"
    return doc


CASES = [
    ("empty", "the set holds no principle"),
    ("op", "principle 1 names op(s) conv_9x9 that edge_0_3 does not have"),
    ("global_op", "principle 2 names op(s) max_pool_5x5 that nb201 does not have"),
    ("layer", "principle 1 is about layer 'edge_9_9', which nb201 does not have"),
]


@pytest.mark.parametrize("how,needle", [*CASES, ("space", "unknown space 'nb999'")])
def test_principles_import_refuses_empty_sets_and_unknown_names(tmp_path, capsys, export, how, needle):
    path = write(tmp_path / "set.json", edited(export, how))
    store = tmp_path / "lib.sqlite"
    assert main(["principles", "import", str(path), "--store", str(store)]) == 2
    err = one_error_line(capsys)
    assert f"{path}: {needle}" in err, err
    assert not store.exists() or PrincipleStore(store).list() == []


@pytest.mark.parametrize("how,needle", CASES)
def test_the_same_sets_are_refused_as_a_principles_file(tmp_path, capsys, export, how, needle):
    path = write(tmp_path / "set.json", edited(export, how))
    run_dir = tmp_path / "never"
    code = main(["run", "--space", "nb201", "--target", "cifar100", "--principles", str(path), "--budget", "4",
                 "--run-dir", str(run_dir), "--no-store", "--quiet"])
    assert code == 2
    err = one_error_line(capsys)
    assert f"--principles {path}: {needle}" in err, err
    assert not run_dir.exists()


def test_an_empty_set_stored_before_the_check_is_refused_when_used(tmp_path, capsys):
    store = PrincipleStore(tmp_path / "lib.sqlite")
    rid = store.add(make_set().model_copy(update={"principles": []}), make_prov())  # as an older lapt imported it
    code = main(["run", "--space", "nb201", "--target", "cifar100", "--principles", rid, "--store", str(store.path),
                 "--budget", "4", "--run-dir", str(tmp_path / "never"), "--no-store", "--quiet"])
    assert code == 2 and f"--principles {rid}: the set holds no principle" in one_error_line(capsys)


def test_a_set_of_a_space_file_absent_here_is_still_imported_and_transferred(tmp_path, capsys, export):
    doc = json.loads(json.dumps(export))
    doc["provenance"]["space"] = "file:/nowhere/on/this/machine/space.toml"  # exported on another machine
    path = write(tmp_path / "set.json", doc)
    store = tmp_path / "lib.sqlite"
    assert main(["principles", "import", str(path), "--store", str(store)]) == 0
    rid = capsys.readouterr().out.strip()
    code = main(["run", "--space", "nb201", "--target", "cifar100", "--principles", rid, "--store", str(store),
                 "--budget", "4", "--run-dir", str(tmp_path / "run"), "--no-store", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "run" / "summary.json").exists()


# -- deeply nested JSON ----------------------------------------------------------------------------------------
def test_load_json_bounds_the_depth():
    assert load_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    for text in (DEEP, "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), '{"a":' * 500 + "1" + "}" * 500):
        with pytest.raises(JSONTooDeep, match=f"nested more than {MAX_JSON_DEPTH} levels deep"):
            load_json(text)


def test_deeply_nested_json_is_one_line_for_import_and_principles_files(tmp_path, capsys):
    path = write(tmp_path / "deep.json", DEEP)
    assert main(["principles", "import", str(path), "--store", str(tmp_path / "lib.sqlite")]) == 2
    assert "not a lapt principle export: the JSON is nested more than 100 levels deep" in one_error_line(capsys)
    assert main(["run", "--space", "nb201", "--target", "cifar100", "--principles", str(path), "--budget", "4",
                 "--run-dir", str(tmp_path / "never"), "--no-store", "--quiet"]) == 2
    assert "not a principle set (the JSON is nested more than 100 levels deep)" in one_error_line(capsys)
    proc = subprocess.run([sys.executable, "-m", "lapt.cli", "principles", "import", "-", "--store",
                           str(tmp_path / "lib.sqlite")], input=DEEP, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_report_on_a_deeply_nested_curves_file_is_one_line(tmp_path, capsys):
    bench = tmp_path / "b"
    assert main(["bench", "--space", str(Path(__file__).resolve().parents[1] / "examples" / "toy_space" /
                                         "toy_space.toml"), "--methods", "rea", "--seeds", "1", "--budget", "4",
                 "--quiet", "--workers", "1", "--out", str(bench)]) == 0
    capsys.readouterr()
    (bench / "curves.json").write_text(DEEP)
    assert main(["report", str(bench)]) == 2
    assert "curves.json is not a curves file: the JSON is nested more than 100 levels deep" in one_error_line(capsys)


# -- terminal escapes ------------------------------------------------------------------------------------------
def test_printable_escapes_control_characters():
    assert printable(ESCAPES) == "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202eevil"
    assert printable("a\nb\tc") == "a\\x0ab\tc" and printable("a\nb", keep_newlines=True) == "a\nb"
    assert printable("café – ünïcode") == "café – ünïcode"


def test_principles_show_list_and_export_print_no_control_character(tmp_path, capsys, export):
    doc = json.loads(json.dumps(export))
    doc["principle_set"]["principles"][0]["statement"] = ESCAPES
    doc["principle_set"]["principles"][0]["evidence"] = "two\nlines"
    doc["provenance"]["reasoner"] = "human\x1b[31m"
    store = str(tmp_path / "lib.sqlite")
    assert main(["principles", "import", str(write(tmp_path / "esc.json", doc)), "--store", store]) == 0
    rid = capsys.readouterr().out.strip()
    for args in (["show", rid], ["list"], ["export", rid]):
        assert main(["principles", *args, "--store", store]) == 0
        out = capsys.readouterr().out
        assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in out), args
    assert main(["principles", "show", rid, "--store", store]) == 0
    out = capsys.readouterr().out
    assert "\\x1b]0;owned\\x07\\x1b[2J" in out and "evidence: two\\x0alines" in out
    assert main(["principles", "export", rid, "--store", store]) == 0
    assert json.loads(capsys.readouterr().out)["principle_set"]["principles"][0]["statement"] == ESCAPES  # same data


# -- export -o: never replaces what is not a regular file ----------------------------------------------------
def test_export_refuses_fifos_links_devices_and_directories(tmp_path, capsys):
    store = PrincipleStore(tmp_path / "lib.sqlite")
    rid = store.add(make_set(), make_prov())
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = tmp_path / "real.json"
    target.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    cases = [(fifo, "is a FIFO (named pipe), not a file"), (link, "is a symbolic link"),
             (Path(os.devnull), "is a device, not a file"), (tmp_path, "is a directory, not a file")]
    for path, needle in cases:
        assert main(["principles", "export", rid, "-o", str(path), "--store", str(store.path)]) == 2
        assert needle in one_error_line(capsys), path
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and target.read_text() == "keep me"
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_respects_the_umask_and_keeps_a_replaced_file_mode(tmp_path, capsys):
    store = PrincipleStore(tmp_path / "lib.sqlite")
    rid = store.add(make_set(), make_prov())
    new = tmp_path / "new.json"
    old = os.umask(0o027)
    try:
        assert main(["principles", "export", rid, "-o", str(new), "--store", str(store.path)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    new.chmod(0o604)
    assert main(["principles", "export", rid, "-o", str(new), "--store", str(store.path)]) == 0
    assert stat.S_IMODE(new.stat().st_mode) == 0o604
    assert json.loads(new.read_text())["id"] == rid
    assert capsys.readouterr().out.splitlines() == [f"wrote {new}"] * 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- trace files -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("hostile") / "run"
    lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=6, seed=1, run_dir=run_dir)
    return run_dir


def traced_copy(traced: Path, dst: Path, edit: Any = None, extra: tuple[str, ...] = ()) -> Path:
    runs = [json.loads(line) for line in (traced / TRACE_FILE).read_text().splitlines()]
    if edit is not None:
        for run in runs:
            edit(run)
    dst.mkdir()
    (dst / TRACE_FILE).write_text("".join(f"{line}\n" for line in (*extra, *map(json.dumps, runs))))
    return dst


def _yesterday(run: dict[str, Any]) -> None:
    run["start_time"] = "yesterday"


def _string_outputs(run: dict[str, Any]) -> None:
    if run.get("outputs") is not None:
        run["outputs"] = "a string"


@pytest.mark.parametrize("edit,needle", [
    (_yesterday, "line 1 is not a run: its start_time is not an ISO 8601 time; skipped"),
    (_string_outputs, "is not a run: its outputs is a str, not an object; skipped"),
])
def test_trace_show_on_runs_of_the_wrong_types_is_one_line(traced, tmp_path, capsys, edit, needle):
    bad = traced_copy(traced, tmp_path / "bad", edit)
    assert main(["trace", "show", str(bad)]) == 2
    err = one_error_line(capsys)
    assert needle in err and "more)" in err and len(err) < 400, err


def test_trace_show_and_upload_skip_a_deeply_nested_line(traced, tmp_path, capsys):
    deep = traced_copy(traced, tmp_path / "deep", extra=(DEEP,))
    assert main(["trace", "show", str(deep)]) == 0
    captured = capsys.readouterr()
    assert "line 1 is nested more than 100 levels deep; skipped" in captured.err
    assert "principles v0" in captured.out
    with FakeLangSmith() as server:
        assert main(["trace", "upload", str(deep), "--endpoint", server.url, "--timeout", "10"]) == 0
    assert "nested more than 100 levels deep" in capsys.readouterr().err
    assert server.runs.keys() == {r["id"] for r in read_trace(deep).runs} and server.runs
    only = tmp_path / "only"
    only.mkdir()
    (only / TRACE_FILE).write_text(DEEP + "\n")
    for command in ("show", "upload"):
        assert main(["trace", command, str(only)]) == 2
        assert "holds no readable run (line 1 is nested more than 100 levels deep; skipped)" in one_error_line(capsys)


def test_trace_show_on_a_binary_file_prints_a_short_error(tmp_path, capsys):
    d = tmp_path / "bin"
    d.mkdir()
    noise = bytes(range(256)) * 3700  # 942 KB, NUL bytes included
    (d / TRACE_FILE).write_bytes(noise)
    assert main(["trace", "show", str(d)]) == 2
    err = one_error_line(capsys)
    assert "holds binary data: not a trace" in err and len(err) < 300
    (d / TRACE_FILE).write_bytes(noise.replace(b"\x00", b"").replace(b"\n", b"\n\x1b[2J") * 1)
    assert main(["trace", "show", str(d)]) == 2
    err = one_error_line(capsys)
    assert "holds no readable run (line 1 is not valid JSON; skipped" in err and "more)" in err
    assert len(err) < 400 and "\x1b" not in err


def test_a_trace_with_escapes_in_a_run_name_prints_them_escaped(traced, tmp_path, capsys):
    def rename(run: dict[str, Any]) -> None:
        if run.get("parent_run_id") is None:
            run["error"] = "boom\x1b[2J"

    named = traced_copy(traced, tmp_path / "named", rename)
    assert main(["trace", "show", str(named)]) == 0
    out = capsys.readouterr().out
    assert "boom\\x1b[2J" in out and "\x1b" not in out


def test_user_errors_are_printed_with_control_characters_escaped(tmp_path, capsys):
    weird = tmp_path / "na\x1b[2Jme.json"
    assert main(["principles", "import", str(weird), "--store", str(tmp_path / "lib.sqlite")]) == 2
    err = one_error_line(capsys)
    assert "na\\x1b[2Jme.json" in err and "\x1b" not in err


def test_transfer_report_lines_quote_statements_escaped(tmp_path, capsys, export):
    doc = json.loads(json.dumps(export))
    doc["principle_set"]["space"] = "nb201"
    doc["principle_set"]["principles"][1]["statement"] = ESCAPES  # avoids avg_pool_3x3, which TNB101 lacks
    path = write(tmp_path / "set.json", doc)
    code = main(["run", "--space", "tnb101", "--target", "class_scene", "--principles", str(path), "--budget", "4",
                 "--run-dir", str(tmp_path / "run"), "--no-store", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "lapt: principles transferred: principle 2 (\\x1b]0;owned" in err and "\x1b" not in err


def _principles_of_strings(run: dict[str, Any]) -> None:
    out = run.get("outputs")
    if isinstance(out, dict) and out.get("principles"):
        out["principles"] = [{"principles": ["a", 3], "version": 0}]


def _mixed_zones(run: dict[str, Any]) -> None:
    if run.get("parent_run_id") is None:
        run["start_time"], run["end_time"] = "2026-01-01T00:00:00", "2026-01-01T00:00:01+00:00"


@pytest.mark.parametrize("edit,needle", [
    (_principles_of_strings, "AttributeError: 'str' object has no attribute 'get'"),
    (_mixed_zones, "TypeError: can't subtract offset-naive and offset-aware datetimes"),
])
def test_trace_show_on_fields_of_shapes_lapt_never_writes_is_one_line(traced, tmp_path, capsys, edit, needle):
    odd = traced_copy(traced, tmp_path / "odd", edit)
    assert main(["trace", "show", str(odd)]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("lapt: error: "), err
    assert "trace 1 holds runs lapt did not write" in err and needle in err and captured.out == ""
