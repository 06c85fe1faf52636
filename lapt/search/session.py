"""The live search of one run: the strategy, the masks it searched in, and every trial so far.

The graph's nodes are called once per step with the state; rebuilding a strategy from JSON at every
step (and saving every architecture it has seen in every checkpoint) made a run's cost per evaluation
grow with its length. So the strategy lives here, across steps, and the graph state holds only its
constant-size :meth:`~lapt.strategies.base.Strategy.state_dict` and a few counters.

The session is a cache of what the run has recorded, kept honest by counters: every node that uses it
first calls :meth:`SearchSession.sync` with the state it was given. That catches up with a step whose
writes LangGraph re-applied from a checkpoint without running its node (a resumed run), and refuses
(:class:`SessionOutOfSync`) anything it cannot reconstruct. A resumed run starts a session from its
trial and mask files with :meth:`SearchSession.restore`.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lapt.spaces import Genotype, MaskSpec, SearchSpace
from lapt.strategies import Strategy, make_strategy
from lapt.strategies.escape import RegionEscape
from lapt.transfer.target_evidence import TargetRecord

TOP_KEPT = 64
"""Best trials kept in order (the adapter reads the top 5 on NB201, 15 on TNB101)."""


class SessionOutOfSync(RuntimeError):
    """The graph state is further ahead than this process's record of the run (not a resumable gap)."""


@dataclass(frozen=True)
class SearchParams:
    """The settings that fix a search: strategy name, seed, REA population and tournament, and whether
    the search may step outside the refined region (:class:`~lapt.strategies.escape.RegionEscape`)."""

    strategy: str
    seed: int
    population: int | None = None
    tournament: int | None = None
    escape: bool = False


@dataclass
class SearchSession:
    """One run's strategy, its mask history and its trials, synchronised with the graph state.

    Attributes:
        space: the search space.
        strategy: the live strategy (ask/tell).
        trials: every trial recorded so far (dicts, as stored in ``trials.jsonl``), in order.
        masks: every mask record that came into force, in order (``masks/vN.json``).
    """

    space: SearchSpace
    params: SearchParams
    strategy: Strategy | RegionEscape = field(init=False)
    trials: list[dict[str, Any]] = field(default_factory=list)
    masks: list[dict[str, Any]] = field(default_factory=list)
    _spec: tuple[int, MaskSpec] | None = field(default=None, init=False, repr=False)
    _regions: dict[MaskSpec, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _top: list[tuple[float, int]] = field(default_factory=list, init=False, repr=False)
    genotypes: list[Genotype] = field(default_factory=list, init=False, repr=False)
    """The trials' architectures, parsed once."""
    evidence: tuple[int, dict[str, Any]] | None = field(default=None, init=False, repr=False)
    """The target evidence and the number of trials it was computed from (a cache; see the graph)."""
    weights_from: dict[str, Any] | None = field(default=None, init=False, repr=False)
    """The evidence the strategy's sampling weights were set from (set by the graph)."""
    record: TargetRecord | None = field(default=None, init=False, repr=False)
    """The trials so far in the arrays the evidence reads (grown as adaptations need it)."""

    def __post_init__(self) -> None:
        self.strategy = self._new_strategy()

    def _new_strategy(self) -> Strategy | RegionEscape:
        p = self.params
        base = make_strategy(p.strategy, self.space, p.seed, population=p.population, tournament=p.tournament)
        return RegionEscape(base) if p.escape else base

    def _reload(self, state: Mapping[str, Any]) -> None:
        """A fresh strategy in ``state``'s search state, told what the run's record says it has seen."""
        weights = getattr(self.strategy, "weights", None)
        self.strategy = self._new_strategy()
        if state.get("search") is not None:
            self.strategy.load_state_dict(dict(state["search"]))
        self.strategy.mark_seen(self.genotypes)
        self.strategy.mark_seen([self.space.parse(p["arch"]) for p in state.get("pending") or []])
        if isinstance(self.strategy, RegionEscape):
            self.strategy.weights = weights
            self.strategy.replay([(g, t.get("fitness")) for g, t in zip(self.genotypes, self.trials, strict=True)])

    def set_weights(self, weights: Mapping[str, Mapping[str, float]] | None) -> None:
        """Per-op sampling weights for the next asks (no effect unless the search may step outside)."""
        if isinstance(self.strategy, RegionEscape):
            self.strategy.weights = weights

    def is_outside(self, genotype: Genotype) -> bool:
        """Whether an architecture lies outside the mask in force."""
        return not self.space.contains(genotype, self.spec())

    # -- what the graph state holds ----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The strategy's constant-size state, for the ``search`` channel of the graph state."""
        return self.strategy.state_dict()

    @property
    def told(self) -> int:
        """Trials recorded so far."""
        return len(self.trials)

    @property
    def mask_version(self) -> int | None:
        """Version of the mask in force (None before the first)."""
        return self.masks[-1]["version"] if self.masks else None

    # -- the search ----------------------------------------------------------------------------------
    def spec(self) -> MaskSpec:
        """The mask in force as a :class:`MaskSpec` (built once per mask version)."""
        if not self.masks:
            raise SessionOutOfSync("no mask is in force yet")
        version = self.masks[-1]["version"]
        if self._spec is None or self._spec[0] != version:
            self._spec = (version, spec_of(self.space, self.masks[-1]["mask"]))
        return self._spec[1]

    def enter_mask(self, record: Mapping[str, Any]) -> None:
        """A new mask version came into force (versions are consecutive from 0)."""
        expected = 0 if not self.masks else self.masks[-1]["version"] + 1
        if record["version"] != expected:
            raise SessionOutOfSync(f"mask version {record['version']} follows version {expected - 1}")
        self.masks.append(dict(record))
        self._remember(self.masks[-1])

    def _remember(self, record: Mapping[str, Any]) -> None:
        spec = spec_of(self.space, record["mask"])
        self._regions.pop(spec, None)  # most recent last
        self._regions[spec] = record["mask"]

    def record_until(self, n: int, archs: Sequence[Genotype] | None) -> TargetRecord:
        """The first ``n`` trials as a :class:`~lapt.transfer.target_evidence.TargetRecord` over ``archs``, grown
        from the last call (started again only if it holds more trials than asked for)."""
        record = self.record
        if record is None or record.told > n or record.archs is not archs:
            record = self.record = TargetRecord(self.space, archs)
        for g, t in zip(self.genotypes[record.told : n], self.trials[record.told : n], strict=True):
            record.add(g, t.get("fitness"))
        return record

    def specs_tried(self) -> Collection[MaskSpec]:
        """Every distinct region searched so far, as :class:`MaskSpec` (a view: no copy, no parsing)."""
        return self._regions.keys()

    def regions_tried(self) -> list[dict[str, Any]]:
        """Every distinct region searched so far (mask JSON), the most recently searched last."""
        return list(self._regions.values())

    def ask(self, n: int) -> list[Genotype]:
        """Up to ``n`` unseen architectures inside the mask in force."""
        return self.strategy.ask(self.spec(), n)

    def ask_in(self, spec: MaskSpec, n: int) -> list[Genotype]:
        """Up to ``n`` unseen architectures inside ``spec`` (a region other than the mask in force)."""
        return self.strategy.ask(spec, n)

    def tell(self, trials: Sequence[Mapping[str, Any]]) -> None:
        """Record evaluated trials (in index order, continuing the record) and report them to the strategy."""
        start = len(self.trials)
        for t in trials:
            if t["index"] != len(self.trials):
                raise SessionOutOfSync(f"trial {t['index']} recorded after trial {len(self.trials) - 1}")
            self._append(t)
        self.strategy.tell([(g, t.get("fitness")) for g, t in zip(self.genotypes[start:], trials, strict=True)])

    def _append(self, trial: Mapping[str, Any]) -> None:
        self.trials.append(dict(trial))
        self.genotypes.append(self.space.parse(trial["arch"]))
        fitness = trial.get("fitness")
        if fitness is not None:
            bisect.insort(self._top, (-float(fitness), int(trial["index"])))
            del self._top[TOP_KEPT:]

    def best(self, k: int) -> list[dict[str, Any]]:
        """The ``k`` trials with the highest fitness, best first (ties: the earlier first).

        Kept sorted as trials arrive (an adaptation needs the best few of however many there are); asking
        for more than :data:`TOP_KEPT` sorts them all.
        """
        if k > TOP_KEPT:
            ok = [t for t in self.trials if t.get("fitness") is not None]
            return sorted(ok, key=lambda t: (-t["fitness"], t["index"]))[:k]
        return [self.trials[i] for _, i in self._top[:k]]

    # -- keeping in step with the graph state -------------------------------------------------------------
    def sync(self, state: Mapping[str, Any]) -> None:
        """Catch up with ``state`` when it is ahead by the one step LangGraph may re-apply on a resume.

        A step's writes can reach the state without its node running here (a resumed run re-applies the
        writes a killed process saved): a new mask, a batch of trials, the strategy's state after an
        ask. Each leaves a trace in the state (the mask record, the latest batch, ``search``) from which
        the session catches up. A larger gap means this process never saw the run's record (e.g. a
        graph server restarted) and is refused.
        """
        mask = state.get("mask")
        if mask is not None and mask["version"] != self.mask_version:
            self.enter_mask(mask)
        n = int(state.get("n_trials", 0))
        search = state.get("search")
        if n == self.told and (search is None or search.get("asks") == self.strategy.asks):
            return
        if n != self.told:
            batch = [t for t in state.get("trials") or [] if t["index"] >= self.told]
            if self.told + len(batch) != n:
                raise SessionOutOfSync(
                    f"the state holds {n} trials, this process knows {self.told}: the run's trial record is "
                    "not available here (resume it from its run directory)"
                )
            for t in batch:
                self._append(t)
        if search is not None:
            # The state's strategy is authoritative; the architectures it has seen are the recorded ones
            # and those still waiting for evaluation.
            self._reload(state)

    def restore(
        self,
        trials: Sequence[Mapping[str, Any]],
        masks: Sequence[Mapping[str, Any]],
        state: Mapping[str, Any],
    ) -> None:
        """Start from a run's record (its trial and mask files) and its last checkpoint ``state``."""
        self.trials = []
        self.genotypes = []
        self._top = []
        self.evidence = None
        self.weights_from = None
        self.record = None
        for t in trials:
            self._append(t)
        self.masks = [dict(m) for m in masks]
        self._spec = None
        self._regions = {}
        for m in self.masks:
            self._remember(m)
        self._reload(state)


def spec_of(space: SearchSpace, mask: Mapping[str, Any]) -> MaskSpec:
    """The :class:`MaskSpec` of a stored mask (layer name -> ops, or ``{"ops", "inputs"}`` on DARTS).

    Stored masks were validated when they were made; this only puts them in canonical order.
    """
    ops: list[tuple[str, ...]] = []
    inputs: list[tuple[int, ...]] = []
    for layer in space.layers:
        value = mask[layer.name]
        allowed = value["ops"] if layer.inputs else value
        ops.append(tuple(op for op in layer.ops if op in allowed))
        if layer.inputs:
            inputs.append(tuple(i for i in layer.inputs if i in value["inputs"]))
    return MaskSpec(ops=tuple(ops), inputs=tuple(inputs))
