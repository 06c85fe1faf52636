"""Compact, explicit views of architectures, regions and principles for prompts.

A prompt pays for every token and a 7B model must still read it right. So an architecture is one line
of short op codes in a stated layer order (``nor3 nor3 skip nor1 avg3 none 91.61``: 14 tokens, against 45 for a
list of full op names), the codes come with a legend, and every list states its order. Principles are
one line each without their evidence; a region is one line per layer. Everything is derived from the
space's own layer and op names, so the same code serves NAS-Bench-201, DARTS and user spaces.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lapt.schemas import Principle
from lapt.spaces import SearchSpace

NEW_MARK = "*"


def _short(op: str) -> str:
    """``nor_conv_3x3`` -> ``nor3``, ``skip_connect`` -> ``skip``, ``dil_conv_5x5`` -> ``dil5``, ``none``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", op) if p]
    if not parts:
        return op
    size = next((m.group(0) for p in parts[1:] if (m := re.match(r"\d+", p))), "")
    return parts[0][:4].lower() + size


@functools.lru_cache(maxsize=64)
def op_codes(space: SearchSpace) -> dict[str, str]:
    """A short, unique code per op of ``space`` (its first word and size; numbered only to break ties)."""
    codes: dict[str, str] = {}
    for op in space.ops:
        code, k = _short(op), 2
        while code in codes.values():
            code = f"{_short(op)}_{k}"
            k += 1
        codes[op] = code
    return codes


def legend(space: SearchSpace) -> str:
    """``none=none, skip=skip_connect, ...`` in the space's op order."""
    return ", ".join(f"{code}={op}" for op, code in op_codes(space).items())


def layer_order(space: SearchSpace) -> str:
    return " ".join(space.layer_names)


def value(v: float | None) -> str:
    """A metric with 4 significant digits (``91.61``, ``0.5873``, ``-0.601``)."""
    if v is None:
        return "n/a"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def _choice(space: SearchSpace, choice: Any) -> str:
    codes = op_codes(space)
    if isinstance(choice, str):
        return codes.get(choice, choice)
    # a DARTS node: [[op, input], [op, input]]
    return "+".join(f"{codes.get(str(op), str(op))}@{inp}" for op, inp in choice)


def architecture(space: SearchSpace, arch: Mapping[str, Any]) -> str:
    """One architecture (``{layer: choice}``) as codes in layer order."""
    return " ".join(_choice(space, arch[name]) for name in space.layer_names)


def architecture_rows(
    space: SearchSpace,
    rows: Iterable[tuple[Mapping[str, Any], float | None, bool]],
    mark_new: bool = False,
    label: str = "",
) -> str:
    """``[*]codes value`` lines; with ``mark_new`` a leading ``*`` marks rows flagged new; a ``label``
    (the task, when several are listed) starts every line as ``[label]``."""
    lines = []
    prefix = f"[{label}] " if label else ""
    for arch, val, new in rows:
        mark = (NEW_MARK if new else " ") if mark_new else ""
        lines.append(f"{prefix}{mark}{architecture(space, arch)} {value(val)}")
    return "\n".join(lines) if lines else "(none yet)"


def statistics(space: SearchSpace, stats: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Per layer, ``code top/hit%`` for every op: ``edge_0_1: none 0/0.0 skip 5/3.1 ...``."""
    codes = op_codes(space)
    lines = []
    for layer, per_op in stats.items():
        cells = " ".join(
            f"{codes.get(op, op)} {int(s['top_count'])}/{100 * s['hit_rate']:.1f}" for op, s in per_op.items()
        )
        lines.append(f"{layer}: {cells}")
    return "\n".join(lines)


def arch_line(space: SearchSpace, arch: Mapping[str, Any]) -> str:
    """An architecture (layer -> choice) as one line of op codes, layers in order."""
    codes = op_codes(space)
    parts = []
    for name in space.layer_names:
        choice = arch.get(name)
        if isinstance(choice, (list, tuple)):  # DARTS: [[op, input], [op, input]]
            parts.append(",".join(f"{codes.get(op, op)}@{i}" for op, i in choice))
        else:
            parts.append(codes.get(str(choice), str(choice)))
    return " ".join(parts)


def region(space: SearchSpace, mask: Mapping[str, Any]) -> str:
    """A mask (``{layer: [ops]}`` or DARTS ``{layer: {"ops", "inputs"}}``) as one line, layers in order."""
    codes = op_codes(space)
    parts = []
    for name in space.layer_names:
        allowed = mask.get(name, [])
        if isinstance(allowed, Mapping):
            ops = ",".join(codes.get(op, op) for op in allowed.get("ops", []))
            parts.append(f"{ops}@{','.join(str(i) for i in allowed.get('inputs', []))}")
        else:
            parts.append(",".join(codes.get(op, op) for op in allowed))
    return " | ".join(parts)


def regions(space: SearchSpace, masks: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(f"{i + 1}. {region(space, m)}" for i, m in enumerate(masks)) or "(none)"


def principles(items: Sequence[Principle]) -> str:
    """One line per principle, full op names (the model must answer with them): layer, confidence, ops."""
    lines = []
    for i, p in enumerate(items):
        ops = []
        if p.favour:
            ops.append("favour " + " ".join(p.favour))
        if p.avoid:
            ops.append("avoid " + " ".join(p.avoid))
        detail = f" {'; '.join(ops)}." if ops else ""
        lines.append(f"{i + 1}. {p.layer or 'whole architecture'} ({p.confidence:.2f}):{detail} {p.statement}")
    return "\n".join(lines) if lines else "(none)"


def space_summary(space: SearchSpace) -> str:
    """The space in a few lines: title, size, layers in order with their ops (and inputs)."""
    same_ops = len({layer.ops for layer in space.layers}) == 1
    edges = all(_EDGE.fullmatch(layer.description.strip()) for layer in space.layers)
    parts = []
    for layer in space.layers:
        what = f" ({layer.description})" if layer.description and not (edges or layer.inputs) else ""
        ops = "" if same_ops else f": {', '.join(layer.ops)}"
        inputs = f" (inputs {', '.join(str(i) for i in layer.inputs)})" if layer.inputs else ""
        parts.append(f"{layer.name}{what}{inputs}{ops}")
    note = " (edge_i_j: the edge from node i to node j)" if edges else ""
    listed = ("; " if not same_ops else ", ").join(parts)
    lines = [f"{space.title} ({space.size():,} architectures). Layers, in order: {listed}{note}."]
    if same_ops:
        lines.append(f"Every layer chooses one of: {', '.join(space.layers[0].ops)}.")
    if space.has_inputs:
        lines.append("Each node applies two ops to two distinct input states and sums them.")
    return "\n".join(lines)


_EDGE = re.compile(r"edge from node \d+ to node \d+")


def principles_example(space: SearchSpace) -> str:
    """The answer format of the learner and the adapter, with this space's own names."""
    layer, op = space.layers[-1].name, space.layers[-1].ops[-1]
    return (
        '{"analysis": "<two to four sentences>", "principles": [{"statement": "<one sentence>", '
        f'"evidence": "<numbers>", "confidence": <0 to 1>, "layer": "<layer name, e.g. {layer}>" or null, '
        f'"favour": [<op names, e.g. "{op}">], "avoid": [<op names>]}}, ...]}}'
    )


def mask_example(space: SearchSpace, max_ops: int) -> str:
    """The answer format of the refiner, with this space's own layer names."""
    ops = f"<1 to {max_ops} op names>" if max_ops > 1 else "<1 op name>"
    first, last = space.layers[0], space.layers[-1]
    node = f'{{"ops": [{ops}], "inputs": [<2 or more input states>]}}'
    value = node if space.has_inputs else f"[{ops}]"
    return (
        f'{{"rationale": "<one or two sentences citing the principles>", "{first.name}": {value}, ..., '
        f'"{last.name}": {value}}} with a key for every layer'
    )


def target_evidence(space: SearchSpace, evidence: Mapping[str, Any] | None) -> str:
    """The target evidence (:mod:`lapt.transfer.target_evidence`) as one line per layer, ops best first.

    ``nor3 22% [14%] n4``: the calibrated hit rate on the target, the sources' prediction in brackets
    where it differs, and how many evaluated target architectures used the op here (left out when none
    did). Ops under 2 % that no target architecture used are left out: the long tail a prompt need not
    pay for. Without hit rates (a space too large to score, no source table) each op the target tried
    shows its mean standardised result.
    """
    if not evidence or not evidence.get("layers"):
        return "(no target evidence yet)"
    codes = op_codes(space)
    lines = []
    for name in space.layer_names:
        per_op = evidence["layers"].get(name) or {}
        parts = []
        scored = all(s.get("hit_rate") is not None for s in per_op.values())
        order = sorted(per_op, key=lambda op: -(per_op[op].get("hit_rate") or 0.0)) if scored else list(per_op)
        for op in order:
            s = per_op[op]
            n = int(s.get("n") or 0)
            if scored:
                hit = round(100 * float(s["hit_rate"]))
                if hit < 2 and n == 0:
                    continue
                text = f"{codes.get(op, op)} {hit}%"
                if s.get("predicted_hit_rate") is not None:
                    predicted = round(100 * float(s["predicted_hit_rate"]))
                    text += f" [{predicted}%]" if predicted != hit else ""
            elif n:
                text = f"{codes.get(op, op)} mean {float(s['target_mean']):+.2f}"
            else:
                continue
            parts.append(text + (f" n{n}" if n else ""))
        lines.append(f"{name}: {', '.join(parts) or '-'}")
    weights = [s for s in evidence.get("sources") or [] if s.get("weight") is not None]
    if len(weights) > 1:
        lines.append("source weights: " + ", ".join(f"{s['task']} {float(s['weight']):.2f}" for s in weights))
    return "\n".join(lines)
