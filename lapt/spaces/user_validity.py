"""The ``[validity]`` section of a space file, checked and turned into a :class:`~lapt.spaces.validity.Validity`.

Two declarative rules (format: ``docs/user_spaces.md``):

* ``optional``: chain layers that may be left out, but only from the end (variable depth). A left-out
  layer holds the ``absent`` op (default ``none``); once one is left out, every later optional layer is
  too, so a chain of 4 layers with 2 optional ones has networks of 2, 3 and 4 layers and no string
  that pads a gap;
* ``forbid``: combinations that are not architectures, each a table of layer = op (or list of ops).

``table_only = true`` makes the table's rows the only candidates; the rules are then checked against
every row when the table is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lapt.errors import UserError
from lapt.spaces.base import LayerSpec
from lapt.spaces.user_file import ValidityEntry
from lapt.spaces.validity import Forbid, RuleValidity

_Fail = Callable[[str], UserError]


def build_rules(entry: ValidityEntry, kind: str, layers: Sequence[LayerSpec], fail: _Fail) -> RuleValidity | None:
    """The rules of the section, or None when it declares none (``table_only`` is the loader's business)."""
    names = [layer.name for layer in layers]
    optional = _optional_layers(entry, kind, layers, names, fail)
    forbids = [_forbid(k, item, layers, names, fail) for k, item in enumerate(entry.forbid)]
    if not optional and not forbids:
        return None
    return RuleValidity(names, [layer.ops for layer in layers], forbids, optional, entry.absent)


def _optional_layers(
    entry: ValidityEntry, kind: str, layers: Sequence[LayerSpec], names: list[str], fail: _Fail
) -> list[int]:
    if entry.optional and kind != "chain":
        raise fail("[validity] optional layers make a chain's depth variable; a cell has none (give an edge 'none')")
    out: list[int] = []
    for name in entry.optional:
        if name not in names:
            raise fail(f"[validity] optional: unknown layer {name!r} (layers: {', '.join(names)})")
        i = names.index(name)
        if i in out:
            raise fail(f"[validity] optional: layer {name!r} is listed twice")
        ops = layers[i].ops
        if entry.absent not in ops:
            raise fail(
                f"[validity] optional layer {name!r} needs the absent op {entry.absent!r} among its ops "
                f"({', '.join(ops)})"
            )
        if len(ops) < 2:
            raise fail(f"[validity] optional layer {name!r} has no op besides the absent one {entry.absent!r}")
        out.append(i)
    fixed = [names[i] for i in range(min(out, default=len(names)), len(names)) if i not in out]
    if fixed:  # left out "from the end only": an optional layer before a fixed one could never be left out
        first = names[min(out)]
        raise fail(
            f"[validity] optional: layer {first!r} is not at the end of the chain: optional layers must be the last "
            f"ones ({', '.join(fixed)} after it {'is' if len(fixed) == 1 else 'are'} not optional)"
        )
    return sorted(out)


def _forbid(k: int, item: dict[str, str | list[str]], layers: Sequence[LayerSpec], names: list[str],
            fail: _Fail) -> Forbid:
    where = f"[validity] forbid[{k}]"
    if not item:
        raise fail(f"{where} is empty: name at least one layer and its op(s)")
    parts: list[tuple[int, frozenset[str]]] = []
    text: list[str] = []
    for name, value in item.items():
        if name not in names:
            raise fail(f"{where}: unknown layer {name!r} (layers: {', '.join(names)})")
        ops = [value] if isinstance(value, str) else list(value)
        if not ops:
            raise fail(f"{where}: layer {name!r} lists no op")
        layer = layers[names.index(name)]
        unknown = [op for op in ops if op not in layer.ops]
        if unknown:
            raise fail(f"{where}: op {unknown[0]!r} is not an op of {name} ({', '.join(layer.ops)})")
        parts.append((names.index(name), frozenset(ops)))
        text.append(f"{name} = {ops[0]}" if len(ops) == 1 else f"{name} in {'/'.join(ops)}")
    return Forbid(layers=tuple(sorted(parts)), reason=f"{', '.join(text)} is forbidden ({where})")
