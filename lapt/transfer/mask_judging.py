"""A proposed region judged against the evidence before it is searched.

A mask is valid when the space can search it; it is *grounded* when it keeps what the data and its own
principles point to. Two checks, each answered with its figures so the refiner can fix its answer:

* coverage: the share of the source's top-k architectures inside the region must be at least
  :data:`~lapt.transfer.grounding.MIN_COVERAGE` (checked where the region is built from transferred
  principles, i.e. the first refinement); a region of 64 cells that excludes the op all 50 best source
  cells have on one edge keeps none of them.
* consistency: no layer may keep only ops its principles avoid, nor drop every op its principle favours.

A mask failing either goes back to the refiner; the graph replaces one that stays ungrounded by the
region the offline refiner builds from the same principles, and the run says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from lapt.schemas import Principle
from lapt.spaces import Genotype, MaskSpec, SearchSpace
from lapt.transfer.grounding import MIN_COVERAGE, region_coverage


def principle_conflicts(space: SearchSpace, spec: MaskSpec, principles: Sequence[Principle]) -> list[str]:
    """Layers where the region contradicts the principles it was made from, one line each."""
    out: list[str] = []
    for li, layer in enumerate(space.layers):
        allowed = set(spec.ops[li])
        about = [p for p in principles if p.layer == layer.name]
        avoided = {op for p in principles if p.layer in (None, layer.name) for op in p.avoid if op in layer.ops}
        if allowed and allowed <= avoided and set(layer.ops) - avoided:
            out.append(f"{layer.name} keeps only {', '.join(sorted(allowed))}, which the principles avoid")
            continue
        favoured = {op for p in about for op in p.favour}
        if favoured and not allowed & favoured:
            out.append(
                f"{layer.name} drops every op its principle favours ({', '.join(sorted(favoured))}) "
                f"and keeps {', '.join(sorted(allowed))}"
            )
    return out


def mask_problem(
    space: SearchSpace, spec: MaskSpec, principles: Sequence[Principle], best: Sequence[Genotype] = ()
) -> str | None:
    """Why the region is not grounded (coverage of ``best`` and consistency with ``principles``), or None."""
    problems = principle_conflicts(space, spec, principles)
    if best:
        coverage = region_coverage(space, spec, best)
        if coverage < MIN_COVERAGE:
            inside = round(coverage * len(best))
            problems.insert(
                0,
                f"the region keeps {inside} of the {len(best)} best source architectures "
                f"({100 * coverage:.0f} %; at least {100 * MIN_COVERAGE:.0f} % needed): keep the ops they use",
            )
    return "; ".join(problems) if problems else None
