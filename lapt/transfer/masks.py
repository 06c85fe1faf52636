"""Per-space Pydantic masks: the JSON schema an LLM fills in and the validator of what it returns.

:func:`mask_model` builds, for a space and a per-layer op limit, a model with one field per layer
(``list[Literal[<that layer's ops>]]``; on DARTS an object with ``ops`` and ``inputs``), ``extra="forbid"``
and a ``rationale``. The same class rejects masks that leave no usable architecture (what that means is
the space's :meth:`~lapt.spaces.base.SearchSpace.region_problem`), so an invalid mask can never reach the
search. What a model is sent is :func:`lapt.llm.schema.llm_json_schema` of the class: the docstrings and
field descriptions here are read by the model, so they speak to it.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from lapt.errors import UserError
from lapt.spaces import MaskSpec, SearchSpace


class MaskBase(BaseModel):
    """Common behaviour of every generated mask class."""

    model_config = ConfigDict(extra="forbid")

    # Capped like principle statements (lapt.schemas): a mask is copied into every later checkpoint.
    # The offline refiner writes one reason per layer; 100,000 characters leave room for ~1,000 layers.
    rationale: str = Field(
        default="", max_length=100_000, description="Why these ops (and inputs) are allowed, citing principles."
    )

    def layer_choices(self) -> dict[str, Any]:
        """The per-layer fields, without the rationale."""
        return {k: v for k, v in self if k != "rationale"}


def _dedupe(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


@functools.lru_cache(maxsize=64)
def mask_model(space: SearchSpace, max_ops: int | None = None) -> type[MaskBase]:
    """Build the mask class of ``space`` allowing at most ``max_ops`` ops per layer (None: no limit)."""
    fields: dict[str, Any] = {}
    for layer in space.layers:
        op_t: Any = Literal[layer.ops]
        # No description per cell layer: the prompt describes the layers once (the schema is sent per call).
        ops_field = Field(min_length=1, max_length=max_ops, description="Allowed ops." if layer.inputs else None)
        if layer.inputs:
            in_t: Any = Literal[layer.inputs]
            node = create_model(
                f"{space.name}_{layer.name}",
                __config__=ConfigDict(extra="forbid"),
                __doc__=f"{layer.description[:1].upper()}{layer.description[1:]}.",
                ops=(list[op_t], ops_field),
                inputs=(
                    list[in_t],
                    Field(min_length=2, description="Allowed input states (at least 2: the node takes two)."),
                ),
            )
            fields[layer.name] = (node, ...)  # described by the node model: a $ref takes no sibling keyword
        else:
            fields[layer.name] = (list[op_t], ops_field)

    def _check(self: MaskBase) -> MaskBase:
        choices = self.layer_choices()
        for name, value in choices.items():
            if isinstance(value, BaseModel):
                value.ops = _dedupe(value.ops)  # type: ignore[attr-defined]
                value.inputs = _dedupe(value.inputs)  # type: ignore[attr-defined]
            else:
                object.__setattr__(self, name, _dedupe(value))
        problem = space.region_problem(to_spec(space, self))  # the space says what a usable region is
        if problem is not None:
            raise ValueError(problem)
        return self

    validators: dict[str, Any] = {"check_region": model_validator(mode="after")(_check)}
    model: type[MaskBase] = create_model(
        f"{space.name.title()}Mask",
        __base__=MaskBase,
        __doc__="The refined search space: the ops allowed on every layer, and why.",
        __validators__=validators,
        **fields,
    )
    return model


def to_spec(space: SearchSpace, mask: MaskBase) -> MaskSpec:
    """Compact, canonical-order form of a validated mask for strategies."""
    ops: list[tuple[str, ...]] = []
    inputs: list[tuple[int, ...]] = []
    for layer in space.layers:
        value = getattr(mask, layer.name)
        allowed_ops = value.ops if layer.inputs else value
        ops.append(tuple(op for op in layer.ops if op in allowed_ops))
        if layer.inputs:
            inputs.append(tuple(i for i in layer.inputs if i in value.inputs))
    return MaskSpec(ops=tuple(ops), inputs=tuple(inputs))


def from_spec(space: SearchSpace, spec: MaskSpec, rationale: str = "") -> MaskBase:
    """The Pydantic mask equal to ``spec`` (no op limit), validated."""
    return mask_model(space)(rationale=rationale, **spec.as_dict(space.layer_names))


def full_mask(space: SearchSpace, rationale: str = "the full space") -> MaskBase:
    """The mask allowing everything."""
    return from_spec(space, space.full_mask(), rationale)


def parse_mask(space: SearchSpace, data: Any, max_ops: int | None = None, origin: str = "mask") -> MaskBase:
    """Validate user-supplied mask data; raise UserError with the first problem on one line."""
    try:
        return mask_model(space, max_ops).model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "mask"
        raise UserError(f"{origin}: invalid mask at {where}: {err['msg']}") from e


MAX_RECORDED_INT = 2**63 - 1
"""The largest integer a checkpoint holds: LangGraph's checkpointer writes msgpack, whose integers are 64-bit
(signed, as SQLite's are). A chain of 64 two-op layers already has 2**64 architectures."""


def recorded_size(size: int) -> int | str:
    """A region's size as a run records it (mask records, decisions, checkpoints): the integer, or, above
    :data:`MAX_RECORDED_INT`, its exact decimal digits as a string (``int()`` reads either back)."""
    return size if size <= MAX_RECORDED_INT else str(size)


def mask_summary(space: SearchSpace, spec: MaskSpec) -> str:
    """One line per layer, for terminals and logs."""
    lines = []
    for i, layer in enumerate(space.layers):
        text = ", ".join(spec.ops[i])
        if spec.inputs:
            text += f"  inputs {list(spec.inputs[i])}"
        lines.append(f"  {layer.name:<16} {text}")
    return "\n".join(lines)
