"""The part-by-part judgements agents hand their reasoner (``AgentRequest.amend``).

Each turns a schema-valid answer into :class:`~lapt.agents.reasoner.Amended`: what is kept, every change
with its reason, and what the data contradicts. The rules live in the domain
(:mod:`lapt.principles.judging`, :mod:`lapt.transfer.mask_judging`); this module binds them to one
request's space, schema and evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel

from lapt.agents import compact
from lapt.agents.reasoner import Amended
from lapt.principles.judging import judge_principles, placeholders_of
from lapt.schemas import Principle
from lapt.spaces import Genotype, SearchSpace
from lapt.transfer.grounding import SourceSupport, region_coverage
from lapt.transfer.mask_judging import mask_problem
from lapt.transfer.masks import MaskBase, to_spec


def principle_judge(
    space: SearchSpace, schema: type[BaseModel], support: SourceSupport | None
) -> Callable[[BaseModel], Amended]:
    """The judgement of a learner's or adapter's answer; with ``support``, grounded in the source data."""
    placeholders = placeholders_of(compact.principles_example(space))

    def amend(value: BaseModel) -> Amended:
        verdict = judge_principles(space, value, placeholders, support)
        if verdict.data is None:
            return Amended(None, tuple(verdict.changes), verdict.problem)
        contested = "; ".join(verdict.contradictions) or None
        return Amended(
            schema.model_validate(verdict.data), tuple(verdict.changes), None, contested, tuple(verdict.support)
        )

    return amend


def mask_judge(
    space: SearchSpace, principles: Sequence[Principle], best: Sequence[Genotype]
) -> Callable[[BaseModel], Amended]:
    """The judgement of a refiner's mask: covers enough of ``best`` (if given), agrees with ``principles``."""

    def amend(value: BaseModel) -> Amended:
        if not isinstance(value, MaskBase):
            return Amended(value)
        spec = to_spec(space, value)
        problem = mask_problem(space, spec, principles, best)
        if problem:
            return Amended(None, (), problem)
        if not best:
            return Amended(value)
        kept = round(region_coverage(space, spec, best) * len(best))
        return Amended(value, support=(f"the region keeps {kept} of the {len(best)} best source architectures",))

    return amend
