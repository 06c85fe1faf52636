"""``lapt run --principles``: start a run from saved design principles instead of learning them.

The file is a :class:`~lapt.schemas.PrincipleSet` as ``lapt learn --out`` writes it (``principles.json``),
or the export format of the principle library (the set under ``principle_set``). Everything is checked
before a run starts: the JSON, the schema, the set itself (:func:`lapt.principles.checks.check_principle_set`,
the same check ``lapt principles import`` makes), and that every layer and op a principle names exists
in the target space (a principle about an op the space lacks would silently constrain nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lapt.errors import UserError
from lapt.files.inputs import MB, read_input
from lapt.files.json_input import JSONTooDeep, load_json
from lapt.principles.checks import check_principle_set, check_principles_fit
from lapt.schemas import PrincipleSet
from lapt.spaces import SearchSpace

MAX_PRINCIPLES_FILE_BYTES = 4 * MB
"""A principle set within the schema's caps (lapt.schemas) is well under a megabyte of JSON."""


def resolve_principles(value: str, space: SearchSpace, store: str | None = None) -> tuple[PrincipleSet, list[str]]:
    """The principle set ``--principles VALUE`` names, fitted to ``space``.

    VALUE is a file (``principles.json`` of ``lapt learn --out``, or a library export) or the id of a
    stored set (``lapt principles list``). Principles stated for another space that shares op names
    (NB201 -> TNB101 micro) are transferred: ops and layers the target lacks are dropped, and the
    returned report says which. Principles for this space (or of unknown origin) must fit it exactly.
    """
    path = Path(value)
    if path.exists():  # a file, or something that is not one (refused when read)
        pset = load_principles_file(path)
        origin = pset.space
        check_principle_set(pset, origin, f"--principles {path}")
    else:
        from lapt.principles.store import PrincipleStore

        store_obj = PrincipleStore(store)
        if not store_obj.path.exists():
            raise UserError(f"--principles {value}: no such file, and no principle store at {store_obj.path}")
        try:
            stored = store_obj.get(value)
        except UserError as e:
            raise UserError(f"--principles {value}: no such file or stored principle set ({e})") from e
        pset = stored.principle_set
        origin = stored.provenance.space
        check_principle_set(pset, origin, f"--principles {value}")  # a record stored before the check existed
    if origin is not None and origin not in (space.name, getattr(space, "ref", None)):
        from lapt.principles.cross_space import transfer_principles

        moved, report = transfer_principles(pset, space)
        if not moved.principles:
            raise UserError(f"--principles {value}: no principle of {origin} applies to {space.name}")
        return moved.model_copy(update={"space": space.name}), report
    check_principles_fit(pset, space, f"--principles {value}")
    return pset, []


def load_principles_file(path: Path) -> PrincipleSet:
    """Read and validate a principle set file; UserError with the first problem, on one line."""
    raw = read_input(path, "--principles", MAX_PRINCIPLES_FILE_BYTES)
    try:
        data: Any = load_json(raw)
    except JSONTooDeep as e:
        raise UserError(f"--principles {path}: not a principle set (the JSON is {e})") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"--principles {path}: not valid JSON ({e})") from e
    if isinstance(data, dict) and data.get("format") == "lapt-principles" and "principle_set" in data:
        data = data["principle_set"]
    try:
        pset = PrincipleSet.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "file"
        raise UserError(f"--principles {path}: not a principle set ({where}: {err['msg']})") from e
    return pset
