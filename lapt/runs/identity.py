"""What makes a run the run it is, so that a resume can refuse to continue it as something else.

``config.json`` records the resolved settings (a space file by its absolute path), the sha256 of every
prompt file used, of the space file and of every benchmark table the run reads, the principles a run
was given (if any), the lapt version, the sha256 of the package source and, where a run depends on code
of its own (an evaluator function, a network builder), its sha256 (:func:`user_code_identity`). A
resumed run is only the same run if all of these still hold: other code, other prompts or another table
would make the second half of the run differ from what an uninterrupted run would have done (a table
edited between a kill and a resume gave a run whose trials came from two tables), with nothing in the
run directory to show it. So a resume recomputes them from the code and files at hand and refuses, in
one line, on any difference. The checkpoint database keeps a fingerprint of ``config.json`` so an
edited config is caught too.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lapt.version import __version__
from lapt.runs.config import RunSettings
from lapt.errors import UserError
from lapt.schemas import PrincipleSet
from lapt.spaces import get_space

# The four installed packages of the distribution (lapt.agents/graph/tools live in their own folders).
_PACKAGES = ("lapt", "lapt.agents", "lapt.graph", "lapt.tools")
# Front ends that decide nothing in a run once its settings are resolved (and settings are compared).
_NOT_RUN_CODE = ("lapt/cli/", "lapt/experiments/")


@functools.cache
def source_sha256() -> str:
    """sha256 over every ``.py`` file of the package (and the table manifest), by relative path.

    Any edit to the code, a docstring included, changes it: a resume is refused rather than risk
    continuing a run with code that would have decided differently. The command line and the bench
    harness are left out: they only produce settings, which are compared on their own.
    """
    digest = hashlib.sha256()
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            base = Path(root)
            files = sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
            if package == "lapt":
                files.append(base / "data" / "tables.json")
            for path in files:
                rel = f"{package.replace('.', '/')}/{path.relative_to(base).as_posix()}"
                if path.is_file() and not rel.startswith(_NOT_RUN_CODE):
                    digest.update(f"{rel}\0".encode())
                    digest.update(path.read_bytes())
                    digest.update(b"\0")
    return digest.hexdigest()


def input_hashes(settings: RunSettings) -> dict[str, str]:
    """sha256 of every file the run reads its search space and benchmark tables from, by what it is.

    Keys are ``space file PATH``, ``table PATH`` (a user space's CSV) and ``table NAME`` (a shipped
    table, hashed as its manifest records: it is verified against that on every load). The hashes are
    those of the bytes this process loaded (the space object is read once per process), so they describe
    exactly what the run used. A table is listed when the run reads it: as the evaluator, or as the
    source of the learner's data.
    """
    from lapt.spaces.user import UserSpace
    from lapt.tables.builtin import DATA_DIR, TABLES

    space = get_space(settings.space)
    out: dict[str, str] = {}
    uses_table = settings.evaluator == "table" or bool(settings.sources)
    if isinstance(space, UserSpace):
        out[f"space file {space.source}"] = space.spec_sha256
        if uses_table and space.table_data is not None:
            out[f"table {space.table_data.path}"] = space.table_data.sha256
        return out
    name = settings.table or (space.name if space.name in TABLES else None)
    if uses_table and name in TABLES:
        manifest = json.loads((DATA_DIR / "tables.json").read_text())
        out[f"table {name}"] = str(manifest[TABLES[name][1]]["sha256"])
    return out


def run_config(
    settings: RunSettings, prompt_hashes: dict[str, str], initial_principles: PrincipleSet | None = None
) -> dict[str, Any]:
    """The content of ``config.json`` for a run (no secrets: settings hold none)."""
    config: dict[str, Any] = {
        "settings": settings.model_dump(mode="json"),
        "prompt_hashes": dict(prompt_hashes),
        "input_sha256": input_hashes(settings),
        "lapt_version": __version__,
        "source_sha256": source_sha256(),
    }
    if initial_principles is not None:
        config["initial_principles"] = initial_principles.model_dump(mode="json")
    user_code = user_code_identity(settings)
    if user_code:
        config["user_code"] = user_code
    return config


def user_code_identity(settings: RunSettings) -> dict[str, Any]:
    """sha256 of what a run reads besides the package: its space file and table, and the user code that
    scores architectures (an evaluator function, a network builder). Empty for a built-in space
    evaluated by table or by the built-in networks.

    The user code's hash covers its module's folder (see :class:`lapt.files.code_ref.CodeRef`); nothing is
    imported to compute it.
    """
    from lapt.files.code_ref import CodeRef
    from lapt.spaces import get_space
    from lapt.spaces.user import UserSpace

    out: dict[str, Any] = {}
    space = get_space(settings.space)
    if isinstance(space, UserSpace):
        out["space_file"] = space.spec_sha256
        if space.table_data is not None:
            out["table"] = space.table_data.sha256
        if settings.evaluator == "train" and space.network is not None:
            out["network"] = space.network.identity()
    evaluator = settings.evaluator or ""
    if evaluator.startswith("python:"):
        out["evaluator"] = CodeRef.parse(evaluator.removeprefix("python:"), settings.evaluator_path).identity()
    return out


def config_fingerprint(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a config (what the checkpoint database remembers)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_code(stored: dict[str, Any], where: Path) -> None:
    """Refuse a run made by another lapt version or another package source."""
    version, source = stored.get("lapt_version"), stored.get("source_sha256")
    if version != __version__:
        raise UserError(
            f"cannot resume {where}: it was started by lapt {version}, this is lapt {__version__}; "
            "start a new run"
        )
    if source != source_sha256():
        theirs = str(source)[:12] if source else "unrecorded"
        raise UserError(
            f"cannot resume {where}: the lapt source changed since it started (source {theirs}, now "
            f"{source_sha256()[:12]}), so the rest of the run would not be the same run; start a new run"
        )


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def check_same_run(stored: dict[str, Any], expected: dict[str, Any], where: Path) -> None:
    """Refuse to continue the run in ``where`` (config ``stored``) as the run described by ``expected``."""
    check_code(stored, where)
    settings = _differences(stored.get("settings") or {}, expected["settings"])
    if settings:
        raise UserError(
            f"cannot resume {where}: it holds a run with other settings ({'; '.join(settings[:3])}); "
            f"use `lapt resume {where}` to continue it as it was, or another --run-dir"
        )
    prompts = _differences(stored.get("prompt_hashes") or {}, expected["prompt_hashes"])
    if prompts:
        changed = ", ".join(d.split(":")[0] for d in prompts)
        raise UserError(f"cannot resume {where}: prompt file(s) changed since it started: {changed}")
    check_same_inputs(stored.get("input_sha256") or {}, expected.get("input_sha256") or {}, where)
    if stored.get("initial_principles") != expected.get("initial_principles"):
        raise UserError(f"cannot resume {where}: it was started from other principles (--principles)")
    _check_user_code(stored.get("user_code") or {}, expected.get("user_code") or {}, where)


_USER_CODE = {
    "space_file": "the space file",
    "table": "the space's table",
    "evaluator": "the evaluator's code",
    "network": "the network builder's code",
}


def _check_user_code(old: dict[str, Any], new: dict[str, Any], where: Path) -> None:
    """Refuse a run whose space file, table or evaluation code changed since it started."""
    for key in sorted(set(old) | set(new)):
        before, now = old.get(key), new.get(key)
        if before == now:
            continue
        what = _USER_CODE.get(key, key)
        if isinstance(before, dict) and isinstance(now, dict):
            ref = now.get("ref")
            before, now = before.get("sha256"), now.get("sha256")
            what += f" ({ref})"
        raise UserError(
            f"cannot resume {where}: {what} changed since it started (sha256 {str(before)[:12]} -> {str(now)[:12]}), "
            "so the rest of the run would not be the same run; start a new run"
        )


def check_same_inputs(stored: dict[str, str], current: dict[str, str], where: Path) -> None:
    """Refuse a resume whose space file or tables are not, byte for byte, those the run started with."""
    for key in sorted(set(stored) | set(current)):
        old, new = stored.get(key), current.get(key)
        if old == new:
            continue
        if old is None or new is None:
            raise UserError(
                f"cannot resume {where}: it {'did not read' if old is None else 'read'} {key}, the run now "
                f"would{' not' if new is None else ''}; start a new run"
            )
        raise UserError(
            f"cannot resume {where}: {key} changed since the run started (sha256 {old[:12]}..., now "
            f"{new[:12]}...), so its trials would come from two tables; restore the file or start a new run"
        )


@dataclass(frozen=True)
class StoredRun:
    """A run directory's config, checked and parsed for a resume."""

    config: dict[str, Any]
    settings: RunSettings
    initial_principles: PrincipleSet | None


def read_stored_run(config: dict[str, Any], where: Path) -> StoredRun:
    """Check the code version first (a newer schema may not even parse), then parse the settings."""
    check_code(config, where)
    try:
        settings = RunSettings.model_validate(config["settings"])
        given = config.get("initial_principles")
        initial = PrincipleSet.model_validate(given) if given is not None else None
    except (KeyError, ValidationError) as e:
        raise UserError(f"cannot resume {where}: config.json is not a valid run config ({_first_error(e)})") from e
    return StoredRun(config=config, settings=settings, initial_principles=initial)


def _first_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return f"missing {e}"
