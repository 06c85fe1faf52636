"""The ``[validity]`` section of a space file, checked and turned into a :class:`~lapt.spaces.validity.Validity`.

Two declarative rules (format: ``docs/user_spaces.md``):

* ``optional``: chain layers that may be left out, but only from the end (variable depth). A left-out
  layer holds the ``absent`` op (default ``none``); once one is left out, every later optional layer is
  too, so a chain of 4 layers with 2 optional ones has networks of 2, 3 and 4 layers and no string
  that pads a gap;
* ``forbid``: combinations that are not architectures, each a table of layer = op (or list of ops);
* ``count``: how many layers (all, or those named) may use some ops, ``min`` to ``max``: the usual way a
  macro space says "1 to 4 modules halve the resolution", which as ``forbid`` boxes takes dozens.

``table_only = true`` makes the table's rows the only candidates; the rules are then checked against
every row when the table is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lapt.errors import UserError
from lapt.spaces.base import LayerSpec
from lapt.spaces.user_file import CountEntry, ValidityEntry
from lapt.spaces.validity import CountRule, Forbid, RuleValidity

_Fail = Callable[[str], UserError]

MAX_FORBID = 16
"""Forbidden boxes per space: counting is inclusion-exclusion over them, exponential in their number at
worst. A rule on how many layers use some ops is a count rule, which costs no box at all."""


def build_rules(entry: ValidityEntry, kind: str, layers: Sequence[LayerSpec], fail: _Fail) -> RuleValidity | None:
    """The rules of the section, or None when it declares none (``table_only`` is the loader's business)."""
    names = [layer.name for layer in layers]
    optional = _optional_layers(entry, kind, layers, names, fail)
    if len(entry.forbid) > MAX_FORBID:
        raise fail(
            f"[validity] forbid has {len(entry.forbid)} entries, at most {MAX_FORBID}: a rule on how many layers "
            'use some ops is a count rule, e.g. count = [{ ops = ["m3", "m4"], min = 1, max = 4 }] (over all '
            "layers, or add layers = [...]; see docs/user_spaces.md)"
        )
    forbids = [_forbid(k, item, layers, names, fail) for k, item in enumerate(entry.forbid)]
    counts = [_count_rule(k, item, layers, names, fail) for k, item in enumerate(entry.count)]
    if not optional and not forbids and not counts:
        return None
    return RuleValidity(names, [layer.ops for layer in layers], forbids, optional, entry.absent, counts)


def _count_rule(k: int, item: CountEntry, layers: Sequence[LayerSpec], names: list[str], fail: _Fail) -> CountRule:
    where = f"[validity] count[{k}]"
    chosen = list(range(len(names)))
    if item.layers is not None:
        unknown = [name for name in item.layers if name not in names]
        if unknown:
            raise fail(f"{where}: unknown layer {unknown[0]!r} (layers: {', '.join(names)})")
        if len(set(item.layers)) < len(item.layers):
            raise fail(f"{where}: a layer is listed twice")
        chosen = sorted(names.index(name) for name in item.layers)
    ops = list(dict.fromkeys(item.ops))
    known = {op for i in chosen for op in layers[i].ops}
    unknown_ops = [op for op in ops if op not in known]
    if unknown_ops:
        raise fail(f"{where}: op {unknown_ops[0]!r} is not an op of the layers it counts ({', '.join(sorted(known))})")
    if item.max is not None and item.max < item.min:
        raise fail(f"{where}: min ({item.min}) is above max ({item.max})")
    if item.min > len(chosen):
        raise fail(f"{where}: min {item.min} is more than the {len(chosen)} layer(s) it counts")
    if item.min == 0 and (item.max is None or item.max >= len(chosen)):
        raise fail(f"{where}: min {item.min} and max {item.max} hold for every architecture: give a min or a max")
    if item.max is None:
        amount = f"at least {item.min}"
    elif item.min == 0:
        amount = f"at most {item.max}"
    elif item.min == item.max:
        amount = f"exactly {item.min}"
    else:
        amount = f"{item.min} to {item.max}"
    of = "the layers" if item.layers is None else ", ".join(names[i] for i in chosen)
    return CountRule(
        layers=tuple(chosen),
        ops=frozenset(ops),
        low=item.min,
        high=item.max,
        text=f"{amount} of {of} use {' or '.join(ops)}",
        where=where,
    )


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
