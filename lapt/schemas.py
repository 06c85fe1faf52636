"""Records that cross an LLM, disk or CLI boundary: principles, trials.

Masks live in :mod:`lapt.transfer.masks` because their schema is built per search space; so does the answer
schema of the principle learner and the adapter (:func:`principle_draft_model`), whose layer and op
fields are enums of one space's names. What is stored (:class:`PrincipleSet`) stays space-independent,
so principles can be transferred to other spaces.
"""

from __future__ import annotations

import enum
import functools
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from lapt.spaces import SearchSpace

# Caps on what a principle set may hold. A set travels into every checkpoint of a run, its trace,
# decisions and library: one 30 MB statement made a 516 MB run directory. The caps are far above what
# the learner asks for ("one or two sentences", a handful of principles), so an LLM that overshoots is
# sent back for repair like any other invalid answer. At the caps a set stays under a megabyte of JSON.
MAX_STATEMENT = 2_000
MAX_EVIDENCE = 4_000
MAX_ANALYSIS = 20_000
MAX_PRINCIPLES = 100
MAX_NAMES = 64  # ops named in favour/avoid, tasks seen
Name = Annotated[str, StringConstraints(max_length=200)]


class Principle(BaseModel):
    """One design principle: a statement, the evidence behind it, and how sure the author is.

    ``layer``/``favour``/``avoid`` are optional structure that lets a principle be turned into a mask
    without parsing prose; the LLM fills them when it can, the offline reasoner always does.
    """

    model_config = ConfigDict(extra="forbid")

    statement: str = Field(min_length=1, max_length=MAX_STATEMENT, description="The principle in one or two sentences.")
    evidence: str = Field(
        default="", max_length=MAX_EVIDENCE, description="What in the data supports it (counts, ranks)."
    )
    confidence: float = Field(default=0.5, ge=0.0, le=1.0, description="0 = guess, 1 = certain.")
    layer: Name | None = Field(default=None, description="The layer/edge it concerns, or null if global.")
    favour: list[Name] = Field(default_factory=list, max_length=MAX_NAMES, description="Ops this principle recommends.")
    avoid: list[Name] = Field(
        default_factory=list, max_length=MAX_NAMES, description="Ops this principle advises against."
    )


class PrincipleDraft(BaseModel):
    """Analysis and principles without a space: what the offline miner builds its answers from.

    Agents validate answers with :func:`principle_draft_model` of their space instead.
    """

    model_config = ConfigDict(extra="forbid")

    analysis: str = Field(
        default="", max_length=MAX_ANALYSIS, description="Step-by-step analysis: information flow, common patterns."
    )
    principles: list[Principle] = Field(
        min_length=1, max_length=MAX_PRINCIPLES, description="General design principles."
    )


def _class_prefix(space: SearchSpace) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", space.name.title()) or "Space"


@functools.lru_cache(maxsize=64)
def principle_draft_model(space: SearchSpace) -> type[BaseModel]:
    """The answer schema of the learner and the adapter on ``space`` (cached per space).

    ``layer`` is an enum of the space's layer names (or null for a principle about the whole
    architecture) and ``favour``/``avoid`` are lists from the enum of its op names, so a free string
    such as ``"all edges"`` or ``"3x3 conv"`` is refused when the answer arrives (and sent back for
    repair) instead of reaching the principle library. At most one principle per layer plus one per op
    is accepted, which bounds the answer's length.

    Rules about one principle that JSON Schema cannot carry (an op both favoured and avoided, an op its
    layer does not have, placeholder text, duplicates) are not checked here: they are applied to each
    principle on its own by :func:`lapt.principles.judging.judge_principles`, so that one bad principle
    costs that principle, never the whole answer.
    """
    layer_t: Any = Literal[space.layer_names]
    op_t: Any = Literal[space.ops]

    prefix = _class_prefix(space)
    principle = create_model(
        f"{prefix}Principle",
        __config__=ConfigDict(extra="forbid"),
        __doc__="One design principle.",
        # Few descriptions: the prompt explains the fields once, the schema goes with every call.
        statement=(str, Field(min_length=1)),
        evidence=(str, Field(default="")),
        confidence=(float, Field(default=0.5, ge=0.0, le=1.0, description="0 = a guess, 1 = certain.")),
        layer=(layer_t | None, Field(default=None, description="The layer it is about; null: the whole architecture.")),
        favour=(list[op_t], Field(default_factory=list, description="Best first.")),
        avoid=(list[op_t], Field(default_factory=list)),
    )
    model: type[BaseModel] = create_model(
        f"{prefix}Principles",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Design principles and the short analysis they come from.",
        analysis=(str, Field(default="")),
        principles=(
            list[principle],  # type: ignore[valid-type]
            Field(min_length=1, max_length=len(space.layers) + len(space.ops)),
        ),
    )
    return model


def draft_principles(draft: BaseModel) -> tuple[str, list[Principle]]:
    """The analysis and the space-independent principles of a validated :func:`principle_draft_model` answer."""
    data = draft.model_dump()
    return str(data.get("analysis") or ""), [Principle.model_validate(p) for p in data["principles"]]


class PrincipleSet(BaseModel):
    """A versioned set of principles with where it came from; every version of a run is kept."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, le=1_000_000)
    space: str | None = Field(
        default=None, max_length=4_096, description="Search space the principles were stated for."
    )
    source: str = Field(
        max_length=MAX_STATEMENT, description="How it was made: learned from which tasks, or adapted on which."
    )
    tasks_seen: list[Name] = Field(
        default_factory=list, max_length=MAX_NAMES, description="Tasks whose data the author saw."
    )
    reasoner: Name = ""
    analysis: str = Field(default="", max_length=MAX_ANALYSIS)
    principles: list[Principle] = Field(max_length=MAX_PRINCIPLES)


class Status(enum.StrEnum):
    """How one evaluation ended, for evaluator outcomes and trials alike; failures are data, never raised.

    ``cached``: the run's evaluation cache answered (the evaluation was paid for earlier in this run).
    """

    OK = "ok"
    FAILED = "failed"
    CACHED = "cached"


class Trial(BaseModel):
    """One evaluation of one architecture on the target task.

    ``val`` and ``test`` are the metrics as the benchmark (or the evaluator) reports them; ``fitness`` is
    what selection compares, higher is better: the validation metric, negated where the space declares
    its metric lower-is-better, and None for a failed evaluation. It is stored rather than derived so
    that every reader (strategies, metrics, reports) ranks trials the same way without knowing the space.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0, description="Position in the run: 0 is the first evaluation.")
    arch: str
    task: str
    status: Status
    val: float | None = None
    test: float | None = None
    fitness: float | None = None
    round: int = 0
    mask_version: int = Field(default=0, ge=0, description="The mask (masks/vN.json) the architecture was drawn in.")
    cost_s: float = 0.0
    error: str | None = None
    extras: dict[str, Any] = Field(default_factory=dict)
