"""The graph state: what a run needs to continue, of constant size however long the run.

Nodes return updates; the runner streams them and writes the run's record (``trials.jsonl``,
``decisions.jsonl``, ``principles/``, ``masks/``) from them (:mod:`lapt.graph.recorder`). The state
keeps only what the next steps need plus the latest entries of each record, so a checkpoint (the whole
state, saved after every step) costs the same at evaluation 10 or 10,000:

* principles: the original set and the current one (the adapter needs both), via a reducer;
* the mask in force; trials: the latest batch; decisions: the most recent few, via a reducer;
* counters (trials, decisions, rounds) that say how long each record is;
* the search strategy's constant-size state.

The latest entries are also what lets a resumed run repair its files: a killed process may have
written its record a step behind or ahead of its last checkpoint, and the checkpoint's counters and
latest entries say exactly what the files must hold (:meth:`RunRecorder.resume`).

Everything is plain JSON (dicts, lists, numbers) so the SQLite checkpointer stores it cheaply; clients,
tables and prompts live in the run context, never here.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

RECENT_DECISIONS = 8
"""Decisions kept in the state: more than one step ever makes (two: a widened region and its search)."""


def keep_original_and_latest(old: list[dict[str, Any]] | None, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reducer of ``principles``: the first set ever (the learned one) and the newest."""
    if not new:
        return list(old or [])
    if not old:
        return [new[0], new[-1]] if len(new) > 1 else [new[0]]
    return [old[0], new[-1]]


def keep_recent(old: list[dict[str, Any]] | None, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reducer of ``decisions``: append, keep the last :data:`RECENT_DECISIONS`."""
    return [*(old or []), *new][-RECENT_DECISIONS:]


class LaptState(TypedDict, total=False):
    """State of one LAPT run.

    Attributes:
        principles: the original PrincipleSet (dict) and the current one (a single entry until the first
            adaptation); each node update carries only the new set.
        mask: the mask record in force: ``{"version", "round", "mask", "size", "source", "note"}``.
        trials: the latest batch of trials (Trial dicts), as the evaluation node made them.
        n_trials: trials recorded so far (the length of ``trials.jsonl``).
        decisions: the most recent decisions (each with its position ``seq`` in ``decisions.jsonl``).
        n_decisions: decisions made so far.
        pending: the proposals waiting for evaluation: ``{"id", "index", "arch", "mask_version"}``.
        search: the search strategy's constant-size state (see :mod:`lapt.search.session`).
        round: adaptation rounds done.
        since_adapt: evaluations since the last adaptation.
        adapted_at: ``n_trials`` at the last adaptation (trials after it are "new" to the adapter).
        best_at_adapt: best fitness at the last adaptation (None before the first).
        branch: the last adaptation branch ("improved" or "stalled").
        empty_asks: consecutive proposals that found the current region exhausted.
        usage: LLM calls and tokens spent so far.
        failures: agent decisions without a valid answer so far, per agent.
        done: why the run ended ("budget", "exhausted"), None while running.
    """

    principles: Annotated[list[dict[str, Any]], keep_original_and_latest]
    mask: dict[str, Any]
    trials: list[dict[str, Any]]
    n_trials: int
    decisions: Annotated[list[dict[str, Any]], keep_recent]
    n_decisions: int
    pending: list[dict[str, Any]]
    search: dict[str, Any]
    round: int
    since_adapt: int
    adapted_at: int
    best_at_adapt: float | None
    branch: str | None
    empty_asks: int
    usage: dict[str, int]
    failures: dict[str, int]
    done: str | None
