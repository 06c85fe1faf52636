"""The search-space interface shared by every space.

A space names its decision slots ("layers": the edges of a cell, or the nodes of a DARTS cell) and the
candidate op *names* of each. Genotypes are frozen tuples; integers appear only inside codecs that read
benchmark strings. Masks are per-space Pydantic models (see :mod:`lapt.transfer.masks`) turned into a compact
:class:`MaskSpec` before they reach hot loops, because strategies sample and mutate thousands of times
per second. Randomness comes from ``random.Random``: it is several times cheaper per draw than numpy's
generator for these scalar choices, and its state is plain JSON.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Genotype = tuple[Any, ...]


@dataclass(frozen=True)
class LayerSpec:
    """One decision slot of a space.

    Attributes:
        name: identifier used as a mask field and in prompts (``edge_0_3``, ``normal_node_2``).
        ops: candidate op names, in the space's canonical order.
        inputs: for DARTS-style nodes, the candidate input indices; empty for fixed-edge cells.
        description: one line shown to agents (which nodes the edge connects, say).
    """

    name: str
    ops: tuple[str, ...]
    inputs: tuple[int, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class MaskSpec:
    """A validated mask in a form cheap to use: allowed ops (and inputs) per layer, in layer order.

    ``weights`` (optional, aligned with ``ops``) make cell spaces draw the allowed ops of a layer in
    proportion to them when sampling and mutating, instead of uniformly: the region stays the same, only
    the preference inside it changes. They are not part of the region's identity (equality and hashing
    ignore them); spaces whose layers also choose inputs (DARTS) draw uniformly.
    """

    ops: tuple[tuple[str, ...], ...]
    inputs: tuple[tuple[int, ...], ...] = ()
    weights: tuple[tuple[float, ...], ...] | None = field(default=None, compare=False)

    def as_dict(self, layer_names: Sequence[str]) -> dict[str, Any]:
        """JSON-ready form keyed by layer name (the same shape the Pydantic mask uses)."""
        out: dict[str, Any] = {}
        for i, name in enumerate(layer_names):
            if self.inputs:
                out[name] = {"ops": list(self.ops[i]), "inputs": list(self.inputs[i])}
            else:
                out[name] = list(self.ops[i])
        return out


@dataclass(frozen=True)
class SearchDefaults:
    """A space's search settings, used where a run does not set them (the paper's values per space).

    Attributes:
        population: REA population.
        tournament: REA tournament size (at most ``population``).
        adapt_every: evaluations between two principle adaptations.
        max_ops: at most this many allowed ops per layer in a refined space.
        top_target: best target architectures the adapter reads (the paper's top-k).
    """

    population: int = 5
    tournament: int = 2
    adapt_every: int = 5
    max_ops: int = 2
    top_target: int = 5

    def as_settings(self) -> dict[str, int]:
        """The run-settings fields these defaults fill."""
        return asdict(self)


class SearchSpace(abc.ABC):
    """A NAS search space keyed by op names.

    Subclasses provide the layers, a codec to and from the benchmark's architecture string, and the
    code description shown to LLM agents. Sampling, mutation and sizes are defined against a
    :class:`MaskSpec` so that every strategy works unchanged on every space.
    """

    name: str
    title: str
    tasks: tuple[str, ...] = ()
    defaults: SearchDefaults = SearchDefaults()
    higher_is_better: bool = True  # the direction of the validation metric that selection uses

    def search_defaults(self) -> SearchDefaults:
        """The search settings a run on this space uses unless it sets its own."""
        return self.defaults

    @property
    @abc.abstractmethod
    def layers(self) -> tuple[LayerSpec, ...]:
        """The decision slots, in genotype order."""

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of the layers, in genotype order."""
        return tuple(layer.name for layer in self.layers)

    @property
    def ops(self) -> tuple[str, ...]:
        """Every op name that appears in the space, in canonical order."""
        seen: dict[str, None] = {}
        for layer in self.layers:
            for op in layer.ops:
                seen.setdefault(op, None)
        return tuple(seen)

    # -- codec ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def to_str(self, genotype: Genotype) -> str:
        """Encode a genotype as the benchmark's architecture string."""

    @abc.abstractmethod
    def from_str(self, arch: str) -> Genotype:
        """Decode a benchmark architecture string; raises :class:`~lapt.errors.UserError` if malformed."""

    def parse(self, arch: str) -> Genotype:
        """:meth:`from_str` with a memo: strategies and graph nodes decode the same strings every step."""
        cache: dict[str, Genotype] = self.__dict__.setdefault("_parse_cache", {})
        g = cache.get(arch)
        if g is None:
            g = self.from_str(arch)
            if len(cache) < 1_000_000:
                cache[arch] = g
        return g

    def key(self, genotype: Genotype) -> Hashable:
        """A hashable identity used to never evaluate the same architecture twice."""
        return genotype

    # -- masks ---------------------------------------------------------------------------------
    def full_mask(self) -> MaskSpec:
        """The mask that allows everything."""
        ops = tuple(layer.ops for layer in self.layers)
        inputs = tuple(layer.inputs for layer in self.layers) if self.has_inputs else ()
        return MaskSpec(ops=ops, inputs=inputs)

    @property
    def has_inputs(self) -> bool:
        """True when layers also choose their inputs (DARTS)."""
        return any(layer.inputs for layer in self.layers)

    @abc.abstractmethod
    def size(self, mask: MaskSpec | None = None) -> int:
        """Exact number of distinct valid architectures allowed by ``mask`` (the full space if None)."""

    def region_problem(self, mask: MaskSpec) -> str | None:
        """Why ``mask`` leaves no usable architecture (one line), or None when it leaves one.

        Mask models call it on every mask an agent or a user proposes, so that a region without a
        working network never reaches the search. The default asks for one valid architecture; spaces
        add what "working" means for them (a path from input to output, two inputs per node).
        """
        return None if self.size(mask) > 0 else "the mask allows no valid architecture"

    def layers_needing_an_op(self) -> frozenset[str]:
        """Layers that each must allow an op other than ``none`` in every region (see :meth:`region_problem`).

        A refiner reads it to keep such a layer working when the principles favour ``none`` there (a cost
        table ranks ``none`` first). None by default: a cell needs a path, not any one edge.
        """
        return frozenset()

    def is_valid(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` is an architecture of the space (every combination is, unless the space
        declares validity rules or takes its candidates from a table)."""
        return self.why_invalid(genotype) is None

    def why_invalid(self, genotype: Genotype) -> str | None:
        """One line saying why ``genotype`` is not an architecture of the space, or None when it is one."""
        return None

    @abc.abstractmethod
    def contains(self, genotype: Genotype, mask: MaskSpec) -> bool:
        """Whether ``mask`` allows ``genotype``."""

    @abc.abstractmethod
    def sample(self, mask: MaskSpec, rng: random.Random) -> Genotype:
        """Draw one architecture uniformly from the region ``mask`` allows."""

    @abc.abstractmethod
    def mutate(self, genotype: Genotype, mask: MaskSpec, rng: random.Random) -> Genotype:
        """Project ``genotype`` into ``mask``, then change one choice to another allowed one.

        The projection matters after an adaptation: parents found under an older mask may use ops the
        new mask forbids, and children must stay inside the current region. When no layer has an
        alternative the projected genotype is returned unchanged (callers treat that as "no move").
        """

    @abc.abstractmethod
    def enumerate(self, mask: MaskSpec | None = None, limit: int = 1_000_000) -> Iterator[Genotype]:
        """Every architecture the mask allows; raises ValueError above ``limit``."""

    @abc.abstractmethod
    def describe_code(self) -> str:
        """The space as PyTorch-style code (op table and a ``forward``) for agent prompts."""

    def describe_genotype(self, genotype: Genotype) -> dict[str, Any]:
        """Per-layer JSON view of a genotype, as agents read it."""
        return {layer.name: choice for layer, choice in zip(self.layers, genotype, strict=True)}
