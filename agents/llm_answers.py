"""Reading the JSON out of answers as models actually write them.

Models wrap their JSON in many ways: reasoning in ``<think>``/``<thinking>`` blocks (DeepSeek-R1, Qwen3,
QwQ; sometimes only the closing tag survives the chat template) or in a separate ``reasoning_content``
field (vLLM and DeepSeek reasoning parsers), markdown fences, and prose before or after the object,
often itself holding braces (``"I kept {edge_0_1} as is"``). A brace-to-brace slice of such a text is
not JSON, or is the wrong JSON.

:func:`extract` lists every JSON object the answer holds, most likely first, and returns the first one
that *validates*, with a label saying where it was found (recorded in the agent's decision). When
none does, it returns the validation problem of the closest candidate, which the reasoner sends back
to the model in a repair round, quoting the error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

# <think>...</think>, <thinking>...</thinking>, <reasoning>...</reasoning> (case-insensitive).
_THOUGHT = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>", re.S | re.I)
# A closing tag with no opening one: the chat template put "<think>" into the prompt.
_ORPHAN_CLOSE = re.compile(r"^(.*?)</(think|thinking|reasoning)>", re.S | re.I)
# An opening tag never closed: the answer was cut inside the reasoning.
_UNCLOSED = re.compile(r"<(think|thinking|reasoning)>(.*)$", re.S | re.I)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.S)
_DECODER = json.JSONDecoder()
MAX_ERRORS_SHOWN = 8


class AnswerRejected(ValueError):
    """A schema-valid answer that the agent's own check refuses (the reason goes back to the model)."""


@dataclass(frozen=True)
class Candidate:
    """One JSON object found in an answer, and where."""

    data: Any
    how: str


@dataclass(frozen=True)
class Extraction:
    """The outcome of reading one answer.

    Attributes:
        value: the validated object, or None.
        how: where ``value`` was found (see :class:`~lapt.agents.reasoner.AgentReply`).
        problem: why nothing validated (None when ``value`` is set), for the repair prompt.
        shown: the answer as the repair round shows it back to the model: without its reasoning, which
            would only cost tokens (and which DeepSeek asks clients not to send back).
    """

    value: BaseModel | None
    how: str | None
    problem: str | None
    shown: str


def split_reasoning(text: str) -> tuple[str, list[str]]:
    """``text`` without its reasoning blocks, and the blocks' contents in order."""
    thoughts = [m.group(2) for m in _THOUGHT.finditer(text)]
    visible = _THOUGHT.sub("", text)
    orphan = _ORPHAN_CLOSE.match(visible)  # complete blocks are gone: a closing tag left is an orphan
    if orphan:
        thoughts.append(orphan.group(1))
        visible = visible[orphan.end() :]
    unclosed = _UNCLOSED.search(visible)
    if unclosed:
        thoughts.append(unclosed.group(2))
        visible = visible[: unclosed.start()]
    return visible.strip(), thoughts


def _whole(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _embedded(text: str) -> Iterator[Any]:
    """Every JSON object that starts at a ``{`` of ``text`` and is not inside an earlier one."""
    i = text.find("{")
    while i != -1:
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        yield obj
        i = text.find("{", end)


def _from_text(text: str, first: str) -> Iterator[Candidate]:
    """Candidates of one text: the whole of it, fenced blocks, then objects embedded in prose."""
    whole = _whole(text)
    if whole is not None:
        yield Candidate(whole, first)
    for block in _FENCE.findall(text):
        data = _whole(block.strip())
        if data is not None:
            yield Candidate(data, "fenced")
        else:
            for obj in _embedded(block):
                yield Candidate(obj, "fenced")
    for obj in _embedded(text):
        yield Candidate(obj, "embedded")


def candidates(raw: str | dict[str, Any], reasoning: str | None = None) -> list[Candidate]:
    """Every JSON object in an answer, most likely first, without repeats.

    Order: a tool call's arguments; the visible text (the answer without reasoning blocks) as a whole,
    its fenced blocks, objects embedded in its prose; the same in the ``reasoning_content`` field;
    objects inside the reasoning blocks. A one-key object wrapping the answer (``{"answer": {...}}``)
    adds its inner object right after it.
    """
    found: list[Candidate] = []
    if isinstance(raw, dict):
        found.append(Candidate(raw, "tool_call"))
    else:
        visible, thoughts = split_reasoning(raw)
        found += _from_text(visible, "after_think" if thoughts else "json")
        if reasoning:
            found += [Candidate(c.data, "reasoning_content") for c in _from_text(reasoning.strip(), "")]
        for thought in thoughts:
            found += [Candidate(obj, "inside_think") for obj in _embedded(thought)]
    out: list[Candidate] = []
    seen: set[str] = set()
    for cand in found:
        for item in (cand, *_unwrapped(cand)):
            key = json.dumps(item.data, sort_keys=True, default=str)
            if isinstance(item.data, dict) and key not in seen:
                seen.add(key)
                out.append(item)
    return out


def _unwrapped(cand: Candidate) -> list[Candidate]:
    data = cand.data
    if isinstance(data, dict) and len(data) == 1:
        (inner,) = data.values()
        if isinstance(inner, dict):
            return [Candidate(inner, "unwrapped")]
    return []


def describe(exc: Exception) -> str:
    """A validation failure as the model should read it: where, what is wrong, what it wrote."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:MAX_ERRORS_SHOWN]:
            where = ".".join(str(p) for p in err["loc"]) or "answer"
            got = err.get("input")
            shown = "" if err["type"] in ("missing", "model_type") else f" (got {json.dumps(got, default=str)[:60]})"
            parts.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}{shown}")
        more = exc.error_count() - MAX_ERRORS_SHOWN
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    return str(exc)


def extract(
    raw: str | dict[str, Any],
    validate: Callable[[Any], BaseModel],
    reasoning: str | None = None,
) -> Extraction:
    """The first candidate of ``raw`` that ``validate`` accepts, or the problem of the final answer.

    ``validate`` raises ``ValidationError`` (schema) or :class:`AnswerRejected` (the agent's check).
    When nothing validates, the problem quoted is that of the *final* answer, the one the model meant:
    the tool call, the whole visible text (after any think block), else the last JSON object of the
    visible text; a draft inside the reasoning is only quoted when the answer has no other JSON.
    """
    shown = json.dumps(raw) if isinstance(raw, dict) else (split_reasoning(raw)[0] or raw.strip())
    problems: list[tuple[str, str]] = []
    for cand in candidates(raw, reasoning):
        try:
            return Extraction(validate(cand.data), cand.how, None, shown)
        except ValidationError as exc:
            problem = describe(exc)
        except AnswerRejected as exc:
            problem = str(exc)
        problems.append((cand.how, problem))
    if not problems:
        return Extraction(None, None, "not JSON: the answer holds no JSON object", shown)
    return Extraction(None, None, _final(problems), shown)


def _final(problems: list[tuple[str, str]]) -> str:
    """The problem of the final answer among the candidates' (see :func:`extract`)."""
    for how, problem in problems:
        if how in ("tool_call", "json", "after_think"):
            return problem
    visible = [problem for how, problem in problems if how in ("fenced", "embedded", "unwrapped")]
    if visible:
        return visible[-1]
    return problems[0][1]
