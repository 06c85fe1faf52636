"""A file named like a standard module next to the space file is never imported in its place.

The space folder goes on ``sys.path`` after the standard library (:mod:`lapt.tools.train.user_code`),
in this process and in every worker: spawned ``processes`` workers, which import ``logging``, ``types``
and ``uuid`` while they start, used to find the user's files first and die, every one of them. The
evaluator itself, and a sibling module it imports, still come from the space folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import lapt
from lapt.errors import UserError
from lapt.files.code_ref import CodeRef
from lapt.tools.train.user_code import import_callable

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "examples" / "toy_space"
SHADOWS = ("uuid", "types", "logging")


def space_folder(tmp_path: Path) -> Path:
    """The toy space with its table, a function of its own, a sibling helper, and three impostor files."""
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "toy_table.csv").write_bytes((TOY / "toy_table.csv").read_bytes())
    text = (TOY / "toy_space.toml").read_text() + '\n[evaluator]\nfunction = "shadow_score:score"\n'
    (folder / "toy_space.toml").write_text(text)
    (folder / "shadow_helper.py").write_text("WEIGHT = 10.0\n")
    (folder / "shadow_score.py").write_text(
        "import logging, types, uuid\n"
        "from shadow_helper import WEIGHT\n\n"
        "def score(arch, task):\n"
        "    assert uuid.uuid4().version == 4 and isinstance(score, types.FunctionType)\n"
        "    logging.getLogger('shadow').debug('scored')\n"
        "    return {'val': WEIGHT * sum(op == 'conv_3x3' for op in arch.values()) + len(task)}\n"
    )
    for name in SHADOWS:
        (folder / f"{name}.py").write_text(f"raise SystemExit('the user file {name}.py was imported')\n")
    return folder


@pytest.fixture
def clean_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "shadow_score", raising=False)
    monkeypatch.delitem(sys.modules, "shadow_helper", raising=False)


def test_processes_workers_import_the_standard_library_not_the_space_folder_files(tmp_path, clean_sys_path):
    folder = space_folder(tmp_path)
    common: dict[str, Any] = {"space": str(folder / "toy_space.toml"), "sources": ["task_a"], "target": "task_b",
                              "budget": 8, "seed": 1, "evaluator": "python", "batch_size": 2}
    runs = {
        "local": lapt.run(**common),
        "threads": lapt.run(**common, executor="threads", workers=2),
        "processes": lapt.run(**common, executor="processes", workers=2),
    }
    for name, result in runs.items():
        assert [t.status.value for t in result.trials] == ["ok"] * 8, (name, [t.error for t in result.trials])
    want = [t.model_dump(exclude={"cost_s"}) for t in runs["local"].trials]
    assert all([t.model_dump(exclude={"cost_s"}) for t in r.trials] == want for r in runs.values())
    assert max(t.val or 0 for t in runs["local"].trials) > 10  # the sibling helper's weight came from the folder
    entry = sys.path.index(str(folder))
    assert entry > sys.path.index(str(Path(sys.modules["os"].__file__).parent))


def test_a_module_named_like_a_standard_one_is_refused_in_one_line(tmp_path, clean_sys_path):
    folder = space_folder(tmp_path)
    with pytest.raises(UserError, match="'uuid' is the name of a standard-library module; rename your file"):
        CodeRef.parse("uuid:score", folder, what="--evaluator python:")
    with pytest.raises(ImportError, match=r"'types' is imported from .*, not from"):
        import_callable("types", "FunctionType", str(folder))
