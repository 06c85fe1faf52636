"""The offline reasoner: a real, non-LLM principle miner.

It reads the same facts an LLM would (the ``payload`` of each request) and answers with the same
schemas. Principles come from op enrichment per layer: how often an op appears among the best
architectures and its hit rate (share of architectures using it that land in the best 5 %), compared
with the 5 % base rate. It is the default when no LLM is configured and the baseline that shows what
an LLM adds.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import ValidationError

from lapt.agents.reasoner import AgentReply, AgentRequest, judged
from lapt.schemas import Principle, PrincipleDraft
from lapt.spaces import LayerSpec, MaskSpec
from lapt.transfer.evidence import HIT_QUANTILE
from lapt.transfer.regions import PROTECT_TOP, evidence_region, layer_scores, untried_region

DOMINANT_SHARE = 0.9  # an op on >= 90 % of the top architectures is kept alone
AVOID_RATIO = 0.5  # an op whose hit rate is under half the base rate is advised against


class OfflineReasoner:
    """Deterministic miner implementing the :class:`~lapt.agents.reasoner.Reasoner` interface."""

    name = "offline"
    model = "enrichment-miner"

    def complete(self, request: AgentRequest) -> AgentReply:
        handler = {
            "learn": self._learn,
            "refine": self._refine,
            "adapt_improved": self._adapt_improved,
            "adapt_stalled": self._adapt_stalled,
        }[request.kind]
        try:
            value = request.schema.model_validate(handler(request.payload))
        except ValidationError as e:
            # Principles can imply an unusable answer (a mask with no path from input to output, say):
            # that is a failed decision like an LLM's invalid answer, and the graph falls back.
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "answer"
            why = f"the principles give no valid {request.kind} answer ({where}: {err['msg']})"
            return AgentReply(value=None, error=why, failure="invalid_answer")
        verdict = judged(request, value)
        if verdict.value is None:  # the agent's own judgement (e.g. a region already tried) refuses it
            return AgentReply(value=None, error=f"invalid answer: {verdict.problem}", failure="invalid_answer")
        reply = AgentReply(value=verdict.value, extraction="offline")
        reply.take(verdict)
        return reply

    # -- learning --------------------------------------------------------------------------------
    def _learn(self, payload: dict[str, Any]) -> dict[str, Any]:
        sources: dict[str, Any] = payload["sources"]
        principles: list[Principle] = []
        avoided: Counter[str] = Counter()
        n_layers = len(payload["layers"])
        for layer in payload["layers"]:
            name, ops = layer["name"], layer["ops"]
            rate = {
                op: sum(src["stats"][name][op]["hit_rate"] for src in sources.values()) / len(sources) for op in ops
            }
            share = {
                op: sum(src["stats"][name][op]["top_share"] for src in sources.values()) / len(sources) for op in ops
            }
            ranked = sorted(ops, key=lambda op: (-rate[op], -share[op], ops.index(op)))
            best = ranked[0]
            evidence = "; ".join(f"{op}: top {100 * share[op]:.0f}%, hit {100 * rate[op]:.1f}%" for op in ranked)
            base = f"(base hit rate {100 * HIT_QUANTILE:.0f}%, sources {', '.join(sources)})"
            if share[best] >= DOMINANT_SHARE:
                principles.append(
                    Principle(
                        statement=f"{best} on {name} is essential: it appears on {100 * share[best]:.0f}% of the top "
                        f"architectures.",
                        evidence=f"{evidence} {base}",
                        confidence=round(min(0.99, share[best]), 3),
                        layer=name,
                        favour=[best],
                        avoid=[op for op in ranked if op != best],
                    )
                )
                continue
            avoid = [op for op in ranked[1:] if rate[op] < AVOID_RATIO * HIT_QUANTILE]
            favour = [op for op in ranked if op not in avoid]
            avoided.update(avoid)
            lift = rate[best] / HIT_QUANTILE
            principles.append(
                Principle(
                    # The ranking and the ops to avoid are the principle's lists; the statement says why.
                    statement=f"On {name}, {best} is {lift:.1f}x enriched among the best architectures.",
                    evidence=f"{evidence} {base}",
                    confidence=round(min(0.95, 0.5 + 0.5 * (share[best] - share[ranked[1]])), 3),
                    layer=name,
                    favour=favour,
                    avoid=avoid,
                )
            )
        for op, count in sorted(avoided.items()):
            if count >= max(2, n_layers // 2):
                principles.append(
                    Principle(
                        statement=f"{op} degrades performance: it is depleted among the best architectures on "
                        f"{count} of {n_layers} layers.",
                        evidence=f"hit rate under {100 * AVOID_RATIO * HIT_QUANTILE:.1f}% on {count} layers",
                        confidence=round(count / n_layers, 3),
                        layer=None,
                        avoid=[op],
                    )
                )
        analysis = (
            f"Mined {len(payload['layers'])} layers over the source task(s) {', '.join(sources)}: ops ranked per "
            f"layer by hit rate among the best {100 * HIT_QUANTILE:.0f}% and their share of the top architectures."
        )
        return PrincipleDraft(analysis=analysis, principles=principles).model_dump()

    # -- refinement ------------------------------------------------------------------------------
    def _refine(self, payload: dict[str, Any]) -> dict[str, Any]:
        principles = [Principle.model_validate(p) for p in payload["principles"]]
        max_ops: int = payload["max_ops"]
        global_avoid = {op for p in principles if p.layer is None for op in p.avoid}
        mask: dict[str, Any] = {}
        reasons = []
        alternatives: list[tuple[str, list[str], int]] = []  # (layer, its ranking, how many chosen)
        for layer in payload["layers"]:
            name, ops = layer["name"], layer["ops"]
            mine = sorted((p for p in principles if p.layer == name), key=lambda p: -p.confidence)
            ranked: list[str] = []
            single = False
            for p in mine:
                if len(p.favour) == 1 and p.confidence >= DOMINANT_SHARE and not ranked:
                    single = True
                ranked += [op for op in p.favour if op in ops and op not in ranked]
            avoid = {op for p in mine for op in p.avoid} | global_avoid
            ranked += [op for op in ops if op not in ranked and op not in avoid]
            # Ops every principle advises against fill a layer only when nothing else is left.
            chosen = ranked[:1] if single else ranked[:max_ops]
            chosen = chosen or [op for op in ops if op not in ranked][:1]
            ranked += [op for op in ops if op not in ranked]
            kept = ""
            if layer.get("needs_op") and all(op == "none" for op in chosen):
                # The principles favour none here (a cost table ranks it first), but a layer that is not
                # optional must keep working: the best-ranked other op joins it.
                real = next((op for op in ranked if op != "none"), None)
                if real is not None:
                    chosen = [*chosen[: max_ops - 1], real]
                    kept = f" ({real} kept: the layer needs an op other than none)"
            if layer.get("inputs"):
                mask[name] = {"ops": chosen, "inputs": layer["inputs"]}
            else:
                mask[name] = chosen
            if (not single or kept) and len(ranked) > len(chosen):
                alternatives.append((name, ranked, len(chosen)))
            reasons.append(f"{name}: {', '.join(chosen)}" + (" (essential)" if single else "") + kept)
        mask["rationale"] = "Top-ranked ops per layer from the principles; " + "; ".join(reasons)
        needing = {la["name"] for la in payload["layers"] if la.get("needs_op")}
        return _untried(mask, payload.get("avoid_regions") or [], alternatives, needing)

    # -- adaptation ------------------------------------------------------------------------------
    def _adapt_improved(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Judge each layer's ops by the target evidence; without it, by the best target architectures."""
        from_evidence = self._adapt_from_evidence(payload, stalled=False)
        if from_evidence is not None:
            return from_evidence
        current = [Principle.model_validate(p) for p in payload["principles"]]
        top: list[dict[str, Any]] = payload["top_target"]
        out: list[Principle] = []
        for p in current:
            if p.layer is None or not top:
                out.append(p)
                continue
            counts = Counter(row["arch"][p.layer] for row in top)
            ops_here = [op for op in p.favour + [op for op, _ in counts.most_common()] if op]
            ranked = sorted(dict.fromkeys(ops_here), key=lambda op: (-counts.get(op, 0), ops_here.index(op)))
            share = counts.most_common(1)[0][1] / len(top)
            keep_single = len(p.favour) == 1 and p.confidence >= DOMINANT_SHARE and ranked[0] == p.favour[0]
            out.append(
                Principle(
                    statement=f"On {p.layer}, the best target architectures use "
                    + ", ".join(f"{op} ({counts[op]}/{len(top)})" for op, _ in counts.most_common())
                    + f"; prefer {ranked[0]}.",
                    evidence=f"target top {len(top)}: {dict(counts)}; source: {p.evidence}",
                    confidence=round(max(p.confidence, share) if keep_single else min(0.95, 0.5 + share / 2), 3),
                    layer=p.layer,
                    favour=[ranked[0]] if keep_single else ranked,
                    avoid=[op for op in p.avoid if op not in ranked] if not keep_single else p.avoid,
                )
            )
        analysis = (
            f"Updated {sum(p.layer is not None for p in out)} layer principles with the top {len(top)} target results."
        )
        return PrincipleDraft(analysis=analysis, principles=out).model_dump()

    def _adapt_stalled(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The region the target evidence supports, changed until it is one not tried before; without
        evidence, keep each layer's best current op and rotate in the next ops of the original ranking."""
        from_evidence = self._adapt_from_evidence(payload, stalled=True)
        if from_evidence is not None:
            return from_evidence
        original = [Principle.model_validate(p) for p in payload["original_principles"]]
        current_mask: dict[str, Any] = payload["current_mask"]
        best: dict[str, Any] = payload.get("best_arch") or {}
        out: list[Principle] = []
        for p in original:
            if p.layer is None or (len(p.favour) == 1 and p.confidence >= DOMINANT_SHARE):
                out.append(p)
                continue
            allowed = current_mask.get(p.layer, [])
            allowed = allowed["ops"] if isinstance(allowed, dict) else allowed
            keep = best.get(p.layer) if best.get(p.layer) in allowed else (allowed[0] if allowed else None)
            fresh = [op for op in p.favour if op not in allowed] + [op for op in p.avoid if op not in allowed]
            ranked = ([keep] if keep else []) + fresh + [op for op in p.favour if op != keep and op in allowed]
            ranked = list(dict.fromkeys(ranked))
            out.append(
                Principle(
                    statement=f"On {p.layer}, keep {keep} and try {', '.join(fresh[:2]) or 'nothing new'} next: "
                    f"the current choice stopped yielding better architectures.",
                    evidence=f"stalled in {allowed}; original ranking {p.favour}",
                    confidence=round(p.confidence * 0.8, 3),
                    layer=p.layer,
                    favour=ranked,
                    avoid=[],
                )
            )
        return PrincipleDraft(
            analysis="Search stalled: exploring the next-ranked ops of the original principles.", principles=out
        ).model_dump()


    def _adapt_from_evidence(self, payload: dict[str, Any], stalled: bool) -> dict[str, Any] | None:
        """Principles stating the region the target evidence supports (None when it has no hit rates).

        Each layer keeps its ops ranked by calibrated hit rate (see :mod:`lapt.transfer.target_evidence`) while they
        are at least :data:`~lapt.transfer.regions.KEEP_RATIO` of the chance rate, plus the ops of the best target
        architectures so far (:data:`~lapt.transfer.regions.PROTECT_TOP`), so that the region keeps the search's own
        best results; the rest are advised against, so the refiner allows exactly the kept ones. On the
        stalled branch, a region tried before is changed
        (:func:`~lapt.transfer.regions.untried_region`) until it is new: the search never goes back to a region that
        stopped paying.
        """
        evidence = payload.get("evidence")
        max_ops = payload.get("max_ops")
        layers = payload.get("layers")
        if not evidence or not max_ops or not layers:
            return None
        space = _LayerView(layers)
        best = [row["arch"] for row in payload.get("top_target") or []][:PROTECT_TOP]
        region = evidence_region(space, evidence, int(max_ops), protect=best)  # type: ignore[arg-type]
        if region is None:
            return None
        note = ""
        if stalled:
            # Every region searched so far: those before the current one, and the current one.
            masks = [*(payload.get("tried_regions") or []), payload["current_mask"]]
            tried = [_spec(layers, [_ops(m.get(la["name"], la["ops"])) for la in layers]) for m in masks]
            spec = _spec(layers, region)
            scores = layer_scores(space, evidence)  # type: ignore[arg-type]
            fresh = untried_region(space, spec, tried, scores, int(max_ops))  # type: ignore[arg-type]
            if fresh is not None and fresh != spec:
                note = " (the region the evidence supports was tried before: changed to an untried one)"
                region = [sorted(ops, key=lambda op: -scores[i].get(op, 0.0)) for i, ops in enumerate(fresh.ops)]
        base = float(evidence.get("base_rate", 0.05))
        out: list[Principle] = []
        for la, keep in zip(layers, region, strict=True):
            stats = evidence["layers"][la["name"]]
            rest = [op for op in la["ops"] if op not in keep]
            text = ", ".join(f"{op} {100 * stats[op]['hit_rate']:.1f}%" for op in [*keep, *rest])
            prior = ", ".join(
                f"{op} {100 * stats[op]['predicted_hit_rate']:.1f}%"
                for op in la["ops"]
                if stats[op].get("predicted_hit_rate") is not None
            )
            lead = float(stats[keep[0]]["hit_rate"]) / base
            out.append(
                Principle(
                    # The favoured and avoided ops are the principle's lists; the statement says why.
                    statement=f"On {la['name']}, the target results put {keep[0]} among the best {lead:.1f}x as "
                    "often as chance.",
                    evidence=f"calibrated hit rates on the target after {evidence.get('evaluations', 0)} evaluations: "
                    f"{text}" + (f"; sources predicted {prior}" if prior else ""),
                    confidence=round(min(0.95, 0.5 + 0.1 * lead), 3),
                    layer=la["name"],
                    favour=list(keep),
                    avoid=rest,
                )
            )
        weights = ", ".join(
            f"{src['task']} {src['weight']:.2f}" for src in evidence.get("sources", []) if src.get("weight") is not None
        )
        analysis = (
            f"{'Search stalled' if stalled else 'Search improved'}: ops judged by calibrated hit rates on the target "
            f"after {evidence.get('evaluations', 0)} evaluations"
            + (f" (source weights: {weights})" if weights else "")
            + note
            + "."
        )
        return PrincipleDraft(analysis=analysis, principles=out).model_dump()


def _region_key(mask: dict[str, Any]) -> tuple[Any, ...]:
    """A mask's allowed ops (and inputs) per layer as sets, for comparing regions.

    A run compares each refinement with every region it tried, the same mask objects each time: their
    keys are kept by object (with the object, so an id is never reused for another mask).
    """
    hit = _KEYS.get(id(mask))
    if hit is not None and hit[0] is mask:
        return hit[1]
    key = _compute_region_key(mask)
    if len(_KEYS) > 65_536:
        _KEYS.clear()
    _KEYS[id(mask)] = (mask, key)
    return key


_KEYS: dict[int, tuple[dict[str, Any], tuple[Any, ...]]] = {}


def _compute_region_key(mask: dict[str, Any]) -> tuple[Any, ...]:
    out = []
    for name, value in sorted(mask.items()):
        if name == "rationale":
            continue
        if isinstance(value, dict):
            out.append((name, frozenset(value.get("ops", [])), frozenset(value.get("inputs", []))))
        else:
            out.append((name, frozenset(value), frozenset()))
    return tuple(out)


def _untried(
    mask: dict[str, Any],
    avoid: list[dict[str, Any]],
    alternatives: list[tuple[str, list[str], int]],
    needing: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``mask``, or, if it is a region already tried, the next-ranked untried one (the refiner is told
    which regions were tried): on one layer at a time, the last chosen op gives way to the next ranked,
    never leaving a layer of ``needing`` (one that must keep an op other than ``none``) with none alone."""
    tried = {_region_key(m) for m in avoid}
    if _region_key(mask) not in tried:
        return mask
    for name, ranked, n in alternatives:
        for extra in ranked[n:]:
            candidate = dict(mask)
            ops = [*ranked[: n - 1], extra]
            if name in needing and all(op == "none" for op in ops):
                continue
            candidate[name] = {**mask[name], "ops": ops} if isinstance(mask[name], dict) else ops
            if _region_key(candidate) not in tried:
                candidate["rationale"] = f"{mask['rationale']}; {name} tries {extra} (the region was already tried)"
                return candidate
    return mask  # every nearby region was tried: the check refuses it and the previous mask stays


def _spec(layers: list[dict[str, Any]], allowed: list[list[str]]) -> MaskSpec:
    """A region over the payload's ``layers``: each layer's ops that are in ``allowed`` (aligned with the
    layers), in the layer's own order, as a stored mask is."""
    pairs = zip(layers, allowed, strict=True)
    return MaskSpec(ops=tuple(tuple(op for op in la["ops"] if op in ok) for la, ok in pairs))


def _ops(choice: Any) -> list[str]:
    """The allowed ops of one mask entry (a list, or ``{"ops": [...], "inputs": [...]}`` on DARTS)."""
    return list(choice["ops"]) if isinstance(choice, dict) else list(choice)


class _LayerView:
    """The part of a search space the region helpers read, rebuilt from a payload's ``layers``."""

    def __init__(self, layers: list[dict[str, Any]]):
        self.layers = tuple(LayerSpec(name=la["name"], ops=tuple(la["ops"])) for la in layers)
        self._full = MaskSpec(ops=tuple(layer.ops for layer in self.layers))

    def full_mask(self) -> Any:
        return self._full
