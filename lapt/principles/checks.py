"""The one check a principle set passes wherever it comes in: ``lapt principles import``, a
``--principles`` file, or a stored set named by its id.

A set is refused when it holds no principle (a run from it would search an arbitrary region and call
it "from the principles"), or when its structure names layers or ops that its own space does not have
(a principle about an op nobody has constrains nothing, and would be refused only when used, far
from where it came in). Its space is known when it is a built-in name or a space file present on this
machine; a set from a space file that is not here (exported on another machine) can still be carried
to another space, so only its structure's shape is checked then.
"""

from __future__ import annotations

from pathlib import Path

from lapt.errors import UserError
from lapt.schemas import PrincipleSet
from lapt.spaces import SearchSpace, builtin_space_names, get_space


def check_principle_set(pset: PrincipleSet, space_ref: str | None, origin: str, *, named: bool = False) -> None:
    """Refuse ``pset`` (one line, prefixed by ``origin``) if it is empty or names what its space lacks.

    Args:
        pset: the set.
        space_ref: the space it was stated for: a built-in name, ``file:PATH``, a space file's name, or
            None when unknown.
        origin: how the user gave it (``"--principles FILE"``, ``"import FILE"``), for the message.
        named: ``space_ref`` is a library record's space, which a run always writes as a built-in name
            or ``file:PATH``: anything else is refused as an unknown space.

    Raises:
        UserError: no principle, an unknown space (``named``), or a layer or op that space lacks.
    """
    if not pset.principles:
        raise UserError(f"{origin}: the set holds no principle")
    space = _own_space(space_ref, origin, named)
    if space is not None:
        check_principles_fit(pset, space, origin)


def _own_space(ref: str | None, origin: str, named: bool) -> SearchSpace | None:
    """The space ``ref`` names, when it can be loaded here; None when it cannot be known."""
    if ref is None:
        return None
    if ref in builtin_space_names():
        return get_space(ref)
    if ref.startswith("file:"):
        if not Path(ref[len("file:") :]).is_file():
            return None  # a space file of another machine: the set may still be transferred
        try:
            return get_space(ref)
        except UserError as e:
            raise UserError(f"{origin}: its space {ref} cannot be loaded ({e})") from e
    if named:
        raise UserError(
            f"{origin}: unknown space {ref!r} (a built-in space: {', '.join(builtin_space_names())}, "
            "or file:PATH of a space file)"
        )
    return None  # a space file's bare name, as `lapt learn --out` writes it


def check_principles_fit(pset: PrincipleSet, space: SearchSpace, origin: str) -> None:
    """Refuse principles that name a layer or an op ``space`` does not have."""
    layers = {layer.name: set(layer.ops) for layer in space.layers}
    all_ops = set(space.ops)
    for k, p in enumerate(pset.principles, start=1):
        if p.layer is not None and p.layer not in layers:
            raise UserError(
                f"{origin}: principle {k} is about layer {p.layer!r}, which {space.name} does not have "
                f"(layers: {', '.join(layers)})"
            )
        known = layers[p.layer] if p.layer is not None else all_ops
        unknown = [op for op in (*p.favour, *p.avoid) if op not in known]
        if unknown:
            raise UserError(
                f"{origin}: principle {k} names op(s) {', '.join(unknown)} that "
                f"{p.layer or space.name} does not have (ops: {', '.join(sorted(known))})"
            )
