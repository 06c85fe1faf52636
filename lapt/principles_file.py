"""``lapt run --principles``: start a run from saved design principles instead of learning them.

The file is a :class:`~lapt.schemas.PrincipleSet` as ``lapt learn --out`` writes it (``principles.json``),
or the export format of the principle library (the set under ``principle_set``). Everything is checked
before a run starts: the JSON, the schema, and that every layer and op a principle names exists in the
target space (a principle about an op the space lacks would silently constrain nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lapt.errors import UserError
from lapt.schemas import PrincipleSet
from lapt.spaces import SearchSpace


def resolve_principles(value: str) -> PrincipleSet:
    """The principle set ``--principles VALUE`` names.

    Today VALUE is a file path. This is the one place to resolve a principle-library id as well
    (``lapt principles list``): look it up here when VALUE is not a file.
    """
    path = Path(value)
    if not path.is_file():
        raise UserError(f"--principles {value}: no such file (give a principles.json from `lapt learn --out`)")
    return load_principles_file(path)


def load_principles_file(path: Path) -> PrincipleSet:
    """Read and validate a principle set file; UserError with the first problem, on one line."""
    try:
        data: Any = json.loads(path.read_text())
    except OSError as e:
        raise UserError(f"--principles {path}: cannot read it ({e.strerror or e})") from e
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
    if not pset.principles:
        raise UserError(f"--principles {path}: the set holds no principle")
    return pset


def check_principles_fit(pset: PrincipleSet, space: SearchSpace, origin: str) -> None:
    """Refuse principles that name a layer or an op the target space does not have."""
    layers = {layer.name: set(layer.ops) for layer in space.layers}
    all_ops = set(space.ops)
    for k, p in enumerate(pset.principles, start=1):
        if p.layer is not None and p.layer not in layers:
            raise UserError(
                f"--principles {origin}: principle {k} is about layer {p.layer!r}, which {space.name} does not have "
                f"(layers: {', '.join(layers)})"
            )
        known = layers[p.layer] if p.layer is not None else all_ops
        unknown = [op for op in (*p.favour, *p.avoid) if op not in known]
        if unknown:
            raise UserError(
                f"--principles {origin}: principle {k} names op(s) {', '.join(unknown)} that "
                f"{p.layer or space.name} does not have (ops: {', '.join(sorted(known))})"
            )
