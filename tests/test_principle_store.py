"""The principle library: round trips, concurrent writers, a writer killed mid-write, the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lapt.cli import main
from lapt.errors import UserError
from lapt.principles.store import (
    ENV_VAR,
    PrincipleProvenance,
    PrincipleStore,
    StoredPrinciples,
    record_id,
    resolve_store_path,
)
from lapt.schemas import Principle, PrincipleSet

WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_set(version: int = 0) -> PrincipleSet:
    return PrincipleSet(
        version=version,
        source="learned from cifar10 top-50",
        tasks_seen=["cifar10"],
        reasoner="offline",
        principles=[
            Principle(
                statement="A skip connection from input to output is essential.",
                evidence="48 of the top 50 use skip_connect on edge_0_3",
                confidence=0.9,
                layer="edge_0_3",
                favour=["skip_connect"],
            ),
            Principle(statement="Average pooling degrades accuracy.", avoid=["avg_pool_3x3"], confidence=0.7),
        ],
    )


def make_prov(**kw: object) -> PrincipleProvenance:
    base: dict[str, object] = {
        "space": "nb201",
        "source_tasks": ["cifar10"],
        "reasoner": "offline",
        "prompt_hashes": {"learner.md": "ab" * 32},
        "created": WHEN,
        "run_id": "run-1",
    }
    base.update(kw)
    return PrincipleProvenance.model_validate(base)


@pytest.fixture
def store(tmp_path: Path) -> PrincipleStore:
    return PrincipleStore(tmp_path / "lib" / "principles.sqlite")


def test_add_get_list_round_trip(store):
    pset = make_set()
    rid = store.add(pset, make_prov())
    assert len(rid) == 12 and int(rid, 16) >= 0
    assert rid == record_id(make_prov(), pset)  # stable: content-derived
    got = store.get(rid)
    assert got == StoredPrinciples(id=rid, provenance=make_prov(), principle_set=pset)
    assert store.get(rid[:6]).id == rid
    assert store.add(pset, make_prov()) == rid  # idempotent
    child = store.add(make_set(1), make_prov(run_id="run-2", parent_id=rid, source_tasks=["cifar100"]))
    other = store.add(pset, make_prov(space="tnb101", created=WHEN.replace(year=2024)))
    assert len({rid, child, other}) == 3
    assert [r.id for r in store.list()] == [other, rid, child]  # oldest first
    assert [r.id for r in store.list("nb201")] == [rid, child]
    assert store.get(child).provenance.parent_id == rid
    assert store.list("darts") == []
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_export_import_round_trip(store, tmp_path):
    rid = store.add(make_set(), make_prov())
    doc = store.export(rid)
    assert doc["format"] == "lapt-principles" and doc["id"] == rid
    other = PrincipleStore(tmp_path / "other.sqlite")
    assert other.import_(json.dumps(doc)) == rid
    assert other.get(rid) == store.get(rid)
    doc.pop("id")
    assert other.import_(doc) == rid  # an id is optional; the content decides it


@pytest.mark.parametrize(
    "data,needle",
    [
        ("{not json", "not valid JSON (Expecting property name"),
        ("[]", "not a lapt principle export"),
        ('{"format": "lapt-principles", "provenance": {"space": "nb201"}}', "principle_set: Field required"),
        ('{"format": "other", "provenance": {}, "principle_set": {}}', "format: Input should be 'lapt-principles'"),
    ],
)
def test_import_rejects_bad_documents(store, data, needle):
    with pytest.raises(UserError, match=r"^upload\.json: ") as info:
        store.import_(data, origin="upload.json")
    assert needle in str(info.value)


def test_import_rejects_edited_records(store):
    rid = store.add(make_set(), make_prov())
    doc = store.export(rid)
    doc["principle_set"]["principles"][0]["confidence"] = 0.1
    with pytest.raises(UserError, match=f"id {rid} does not match the content"):
        store.import_(doc)
    doc["provenance"]["extra"] = 1
    with pytest.raises(UserError, match=r"provenance\.extra: Extra inputs are not permitted"):
        store.import_(doc)


def test_unknown_and_ambiguous_ids(store):
    with pytest.raises(UserError, match="unknown principle set id 'zzz'"):
        store.get("zzz")
    with pytest.raises(UserError, match="unknown principle set id 'abcdef'"):
        store.get("abcdef")
    # Find two records whose ids share their first 4 hex digits (ids are content hashes: deterministic).
    pset, seen = make_set(), {}
    for k in range(5000):
        prov = make_prov(run_id=f"r{k}")
        rid = record_id(prov, pset)
        if rid[:4] in seen:
            break
        seen[rid[:4]] = prov
    first = store.add(pset, seen[rid[:4]])
    second = store.add(pset, prov)
    with pytest.raises(UserError, match=f"principle set id '{rid[:4]}' is ambiguous"):
        store.get(rid[:4])
    assert store.get(first.upper()).id == first and store.get(second[:8]).id == second


def test_store_path_precedence(tmp_path, monkeypatch):
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(tmp_path / "data" / app))
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_store_path() == tmp_path / "data" / "lapt" / "principles.sqlite"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert resolve_store_path() == tmp_path / "env.sqlite"
    assert resolve_store_path(tmp_path / "explicit.sqlite") == tmp_path / "explicit.sqlite"  # explicit wins


def test_not_a_store(tmp_path):
    bad = tmp_path / "junk.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match=r"junk\.sqlite cannot be used: file is not a database"):
        PrincipleStore(bad).list()


def test_newer_schema_is_refused(store):
    store.add(make_set(), make_prov())
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(UserError, match="newer lapt"):
        PrincipleStore(store.path).list()


# -- several processes ------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_principle_store import make_prov, make_set
    from lapt.principles.store import PrincipleStore

    store = PrincipleStore(sys.argv[1])
    worker, count = sys.argv[2], int(sys.argv[3])
    for k in range(count):
        rid = store.add(make_set(k), make_prov(run_id=f"{{worker}}-{{k}}"))
        print(rid, flush=True)
    """
).format(tests=str(Path(__file__).resolve().parent))


def _writer(path: Path, worker: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), worker, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_writers_all_land(tmp_path):
    path = tmp_path / "shared.sqlite"  # not created yet: the writers race to create it too
    procs = [_writer(path, f"w{k}", 25) for k in range(4)]
    printed = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        printed += out.split()
    assert len(printed) == 100 == len(set(printed))
    assert {r.id for r in PrincipleStore(path).list()} == set(printed)


def test_writer_killed_mid_write_leaves_a_readable_store(tmp_path):
    path = tmp_path / "killed.sqlite"
    proc = _writer(path, "victim", 100_000)
    assert proc.stdout is not None
    committed = [proc.stdout.readline().strip() for _ in range(30)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    committed += [line.strip() for line in proc.stdout if line.strip()]  # ids printed before the kill
    store = PrincipleStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = {r.id for r in store.list()}
    assert set(committed) <= ids
    assert len(ids) - len(committed) <= 1  # at most the record committed just before the kill, unprinted
    assert store.add(make_set(), make_prov(run_id="after")) in {r.id for r in store.list()}


# -- command line -----------------------------------------------------------------------------------
def test_cli_commands(tmp_path, capsys, monkeypatch):
    path = tmp_path / "cli.sqlite"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert main(["principles", "list", "--store", str(path)]) == 0
    assert "no principle sets in" in capsys.readouterr().out
    rid = PrincipleStore(tmp_path / "src.sqlite").add(make_set(), make_prov())
    exported = tmp_path / "out" / "p.json"
    exported.parent.mkdir()
    assert main(["principles", "export", rid, "-o", str(exported), "--store", str(tmp_path / "src.sqlite")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {exported}"
    assert main(["principles", "import", str(exported), "--store", str(path)]) == 0
    assert capsys.readouterr().out.strip() == rid
    assert main(["principles", "list", "--store", str(path), "--space", "nb201"]) == 0
    out = capsys.readouterr().out
    assert rid in out and "offline" in out and "cifar10" in out
    assert main(["principles", "list", "--store", str(path), "--space", "darts"]) == 0
    assert "no principle sets for space 'darts'" in capsys.readouterr().out
    assert main(["principles", "show", rid[:5], "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"id        {rid}" in out and "[edge_0_3] A skip connection" in out and "avoid: avg_pool_3x3" in out
    assert main(["principles", "export", rid, "--store", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(exported.read_text())
    # Without --store the environment variable decides.
    assert main(["principles", "import", str(exported)]) == 0
    capsys.readouterr()
    assert PrincipleStore(tmp_path / "env.sqlite").get(rid).id == rid


@pytest.mark.parametrize(
    "args,needle",
    [
        (["show", "0123456789ab"], "unknown principle set id '0123456789ab'"),
        (["show", "not-an-id"], "unknown principle set id 'not-an-id'"),
        (["export", "0123456789ab"], "unknown principle set id"),
        (["import", "missing.json"], "import missing.json: no such file"),
        (["import", "bad.json"], "bad.json: not valid JSON"),
        (["import", "wrong.json"], "wrong.json: not a lapt principle export"),
    ],
)
def test_cli_errors_one_line_exit_2(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "wrong.json").write_text('{"principles": []}')
    assert main(["principles", *args, "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_cli_subprocess_exit_status(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lapt.cli", "principles", "show", "abcd", "--store", str(tmp_path / "s.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "unknown principle set id 'abcd'" in out.stderr
