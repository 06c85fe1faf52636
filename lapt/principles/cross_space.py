"""Carry a principle set to another search space (NB201 -> TNB101, a built-in space -> a user space).

Principles are prose plus optional structure (``layer``, ``favour``, ``avoid``). Only the structure can
be checked against the target, and only the structure turns into masks, so it must not name ops or
layers the target lacks: an unknown op would make the mask invalid, an unknown layer would silently
constrain nothing. This module drops what the target cannot express and reports every drop, so the
user (and the run record) can see what was lost in transfer.
"""

from __future__ import annotations

from lapt.schemas import Principle, PrincipleSet
from lapt.spaces import SearchSpace


def transfer_principles(pset: PrincipleSet, target_space: SearchSpace) -> tuple[PrincipleSet, list[str]]:
    """Adapt ``pset`` to ``target_space``; return the new set and one report line per change.

    * A ``layer`` unknown to the target becomes None (the principle becomes global).
    * Ops unknown to the target (or, for a kept layer, to that layer) are dropped from ``favour`` and
      ``avoid``.
    * A principle whose ``favour``/``avoid`` named ops and lost all of them is dropped: its structured
      advice is about ops the target does not have.

    Prose principles without ops are kept as they are. The version, tasks seen and reasoner are kept
    (transfer adds no new data); ``source`` records the transfer.
    """
    layers = {layer.name: layer for layer in target_space.layers}
    all_ops = set(target_space.ops)
    kept: list[Principle] = []
    report: list[str] = []
    for k, p in enumerate(pset.principles, start=1):
        label = f"principle {k} ({_short(p.statement)})"
        layer = p.layer
        if layer is not None and layer not in layers:
            report.append(f"{label}: layer {layer!r} is not in {target_space.name}; now global")
            layer = None
        known = set(layers[layer].ops) if layer is not None else all_ops
        favour = [op for op in p.favour if op in known]
        avoid = [op for op in p.avoid if op in known]
        dropped = [op for op in (*p.favour, *p.avoid) if op not in known]
        where = f"{layer}" if layer is not None else target_space.name
        if (p.favour or p.avoid) and not (favour or avoid):
            report.append(f"{label}: dropped, its ops ({', '.join(dropped)}) are not in {where}")
            continue
        if dropped:
            report.append(f"{label}: ops {', '.join(dropped)} are not in {where}; removed")
        kept.append(p.model_copy(update={"layer": layer, "favour": favour, "avoid": avoid}))
    if not kept and pset.principles:
        report.append(f"no principle survived the transfer to {target_space.name}")
    new = pset.model_copy(
        update={"principles": kept, "source": f"transferred to {target_space.name} from: {pset.source}"}
    )
    return new, report


def _short(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
