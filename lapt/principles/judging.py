"""Principles judged one by one: what is wrong with one principle costs that principle, not the answer.

A schema-valid answer of the learner or the adapter can still hold principles that break rules JSON
Schema cannot carry, or that the data contradicts. Each rule is applied to the principle it concerns:

=============================================  ================================================
the principle ...                              what happens
=============================================  ================================================
favours and avoids the same op                 the op is dropped from both lists
names an op its layer does not have            the op is dropped
copies placeholder text of the answer format   the principle is dropped
repeats an earlier one (same layer and ops)    the principle is dropped
favours an op the source data contradicts,     with ``support``: the op is dropped, the figures
or avoids one the data supports                recorded (:mod:`lapt.transfer.grounding`)
is left with no op after these drops           the principle is dropped (unless it never named one)
=============================================  ================================================

Every change is a line naming the principle, what was done and why; the agents record them in
``decisions.jsonl`` and the trace. The answer is kept when at least one principle survives; only an
answer with nothing usable goes back for repair, quoting the reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from lapt.spaces import SearchSpace
from lapt.transfer.grounding import SourceSupport

_PLACEHOLDER = re.compile(r"<[^<>]{1,60}>")


def placeholders_of(answer_format: str) -> frozenset[str]:
    """The ``<...>`` placeholders of an answer format (``<one sentence>``, ``<numbers>``)."""
    return frozenset(_PLACEHOLDER.findall(answer_format))


@dataclass
class Judgement:
    """What is left of an answer's principles, and every change made to get there.

    Attributes:
        data: the answer as JSON with the surviving (amended) principles; None when none survived.
        changes: one line per change, ``principles.2: dropped avg_pool_3x3 (...)``.
        contradictions: the changes the data forced (also in ``changes``): quoted back to the model once
            before they are applied, since a repair may state a better principle than the drop leaves.
        support: per surviving principle with an op, its figures (``favour nor_conv_3x3 on edge_1_2:
            41 of the 50 best, 20 % of all``), for the record.
        problem: why nothing survived (None when something did).
    """

    data: dict[str, Any] | None
    changes: list[str] = field(default_factory=list)
    contradictions: list[str] = field(default_factory=list)
    support: list[str] = field(default_factory=list)
    problem: str | None = None


def _label(i: int, p: dict[str, Any]) -> str:
    return f"principles.{i} ({p.get('layer') or 'whole architecture'})"


def judge_principles(
    space: SearchSpace,
    answer: BaseModel,
    placeholders: frozenset[str] = frozenset(),
    support: SourceSupport | None = None,
) -> Judgement:
    """Apply every per-principle rule to ``answer`` (a :func:`~lapt.schemas.principle_draft_model` value).

    Args:
        space: the space the principles are about (its layers and their ops).
        answer: the schema-valid answer.
        placeholders: the answer format's placeholder texts (a principle quoting one is dropped).
        support: the source data's figures; None skips grounding (the offline miner's own answers, or
            an adapter, whose claims are about the target).
    """
    data = answer.model_dump()
    layer_ops = {la.name: set(la.ops) for la in space.layers}
    out = Judgement(data=None)
    kept: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for i, p in enumerate(data.get("principles") or []):
        where = _label(i, p)
        text = f"{p.get('statement', '')} {p.get('evidence', '')}"
        copied = sorted(h for h in placeholders if h in text)
        if copied:
            out.changes.append(f"{where}: dropped, it copies the answer format's placeholder {copied[0]}")
            continue
        named = bool(p["favour"] or p["avoid"])
        both = [op for op in p["favour"] if op in p["avoid"]]
        if both:
            p["favour"] = [op for op in p["favour"] if op not in both]
            p["avoid"] = [op for op in p["avoid"] if op not in both]
            out.changes.append(f"{where}: dropped {', '.join(both)} from favour and avoid (an op cannot be both)")
        layer = p.get("layer")
        if layer is not None:
            foreign = [op for op in [*p["favour"], *p["avoid"]] if op not in layer_ops[layer]]
            if foreign:
                p["favour"] = [op for op in p["favour"] if op in layer_ops[layer]]
                p["avoid"] = [op for op in p["avoid"] if op in layer_ops[layer]]
                out.changes.append(f"{where}: dropped {', '.join(sorted(set(foreign)))} ({layer} has no such op)")
        if support is not None:
            for key, favoured in (("favour", True), ("avoid", False)):
                bad = [(op, s) for op in p[key] if (s := support.contradicts(op, layer, favoured)) is not None]
                if bad:
                    p[key] = [op for op in p[key] if op not in {op for op, _ in bad}]
                    verb = "favours" if favoured else "avoids"
                    line = f"{where}: dropped {key} {', '.join(op for op, _ in bad)}: it {verb} " + "; ".join(
                        s.text() for _, s in bad
                    )
                    out.changes.append(line)
                    out.contradictions.append(line)
        if named and not (p["favour"] or p["avoid"]):
            out.changes.append(f"{where}: dropped, no op of it is left")
            continue
        same = (layer, tuple(sorted(p["favour"])), tuple(sorted(p["avoid"])))
        if same in seen and named:
            out.changes.append(f"{where}: dropped, it repeats an earlier principle on the same layer and ops")
            continue
        seen.add(same)
        kept.append(p)
        if support is not None and named:
            figures = [
                f"{verb} {s.text()}"
                for ops, verb in ((p["favour"], "favour"), (p["avoid"], "avoid"))
                for op in ops
                if (s := support.op(op, layer)) is not None
            ]
            out.support.append(f"principles.{i}: " + "; ".join(figures))
    if not kept:
        out.problem = "no principle is usable: " + "; ".join(out.changes or ["the answer has none"])
        return out
    out.data = {**data, "principles": kept}
    return out
