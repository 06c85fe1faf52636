"""What OpenAI-compatible servers say when they refuse part of a request, and what lapt does about it.

Servers differ in what they support, and say so in their own words, with 400, 422 or even 500. A
refusal is read by meaning, not by message: any error answer whose body names the structured-output
feature (``response_format``, ``json_schema``, ``schema``, ``grammar``, ``tools``, ``tool_choice``) is a
refusal of that method, whatever its status, and is never retried as if the server were down:

* a structured-output feature: vLLM's guided-decoding backends (xgrammar, outlines, guidance /
  llguidance), llama.cpp's schema-to-grammar converter and its ``--jinja`` requirement for tools,
  Ollama's models without tool support and its Go-side schema decoding, LM Studio's refusal of
  ``json_object``, OpenAI's strict-schema checks. lapt moves to the next method
  (``json_schema`` -> ``json_mode`` -> tool calling -> plain text); a refusal of ``strict`` alone is
  answered by sending the same method without it first.
* a sampling parameter: OpenAI's reasoning models (o1, o3, o4-mini, gpt-5) refuse ``temperature``;
  some servers refuse ``max_completion_tokens`` or an extra field. A parameter lapt added by default is
  dropped and the call repeated; one the user set with ``--llm-option`` is a configuration error.

:func:`classify_refusal` reads a status error into one of these; anything it does not recognise is
left to the retry and failure handling of :mod:`lapt.agents.llm` (a 500 that is a refusal must not be
retried as if the server were briefly down).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import openai

# Refusals of a structured-output feature, whatever the method (lower case substrings).
_GRAMMAR_REFUSALS = (
    # vLLM (v0 guided decoding and v1 structured outputs)
    "features not supported by xgrammar",
    "failed to transform json schema into a grammar",
    "failed to transform json schema into a regex",
    "error serializing structured outputs jsonschema",
    "invalid json grammar specification",
    "invalid grammar specification",
    "grammar error:",
    "regex uses unsupported feature for structured outputs",
    "regex does not have a anchored universal start state",
    "not supported by outlines",
    "outlines",
    "guidance",
    "llguidance",
    "xgrammar",
    # llama.cpp server (answers some of these with 500)
    "json schema conversion failed",
    "tools param requires --jinja",
    "json-schema-to-grammar",
    "unable to generate parser",
    "error parsing grammar",
    "unrecognized schema",
    # Ollama, for a model without tool support
    "does not support tools",
    # OpenAI (and proxies speaking its dialect) on a schema its strict mode cannot take
    "invalid schema for response_format",
    "invalid schema for function",
    "invalid_json_schema",
)
# Refusals naming one method's feature (only trusted on 400/422, where they describe the request).
_METHOD_REFUSALS: dict[str, tuple[str, ...]] = {
    "json_schema": ("response_format", "response format", "json_schema", "structured output", "guided"),
    "json_mode": ("response_format", "response format", "json_object", "json mode", "must be 'json_schema'"),
    "function_calling": (
        "tool_choice",
        "tool choice",
        "tool call",
        "tools",
        "function",
    ),
    "text": (),
}
# Ollama decodes the request in Go before anything else: a schema it cannot take reads like this.
_GO_UNMARSHAL = re.compile(r"cannot unmarshal .* into go struct field \S*\.(tools|format|response_format)\b")
_PARAM_WORDS = (
    "unsupported",
    "not supported",
    "does not support",
    "not permitted",
    "unrecognized",
    "unrecognised",
    "unknown",
    "not allowed",
    "extra inputs",
    "extra fields",
    "invalid",
)
# The structured-output feature named as a word of an error body, whatever its status: llama-cpp-python's
# server answers a json_schema request with 500 and a pydantic error on ('body', 'response_format', 'type').
_FEATURE_NAMES = ("response_format", "json_schema", "schema", "grammar", "tools", "tool_choice")
_CONTEXT_WORDS = ("maximum context length", "context length", "context window", "too many tokens", "prompt is too long")

RefusalKind = Literal["feature", "strict", "param"]


@dataclass(frozen=True)
class Refusal:
    """A recognised refusal: of a structured-output ``feature``, of ``strict``, or of a ``param``."""

    kind: RefusalKind
    param: str | None = None


def server_message(exc: BaseException) -> str:
    """The server's own words: the error body's message (and param/code), else the exception text."""
    body: Any = getattr(exc, "body", None)
    parts: list[str] = []
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts += [str(error.get(k)) for k in ("message", "param", "code", "detail") if error.get(k)]
        elif error:
            parts.append(str(error))
    parts.append(str(exc))
    return " ".join(parts)


def _param_of(exc: BaseException) -> str | None:
    body: Any = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    param = getattr(exc, "param", None) or (error.get("param") if isinstance(error, dict) else None)
    return str(param) if param else None


def _mentions(text: str, name: str) -> bool:
    """``name`` as a word of ``text`` (``temperature``, ``'temperature'``, ``body.temperature``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name.lower())}(?![A-Za-z0-9_])", text) is not None


def refused_param(exc: BaseException, sent: Iterable[str]) -> str | None:
    """Which of the request's own parameters (``sent``) a 400/422 refuses, if it names one."""
    if getattr(exc, "status_code", None) not in (400, 422):
        return None
    text = server_message(exc).lower()
    named = _param_of(exc)
    for param in sent:
        if named == param:
            return param
        if _mentions(text, param) and any(word in text for word in _PARAM_WORDS):
            return param
    return None


def classify_refusal(exc: BaseException, method: str, sent: Iterable[str], strict: bool) -> Refusal | None:
    """What a status error refuses, if it is a refusal lapt can work around (see the module docstring).

    Args:
        exc: the error (``openai.APIStatusError``; anything else is not a refusal).
        method: the structured-output method of the request.
        sent: the request parameters lapt chose (``temperature``, ``max_completion_tokens``, extra fields).
        strict: whether the request asked for strict structured output.
    """
    status = getattr(exc, "status_code", None)
    if not isinstance(exc, openai.APIStatusError) or status is None or status in (401, 403, 404, 408, 429):
        return None
    param = refused_param(exc, sent)
    if param is not None:
        return Refusal("param", param)
    text = server_message(exc).lower()
    if strict and (_mentions(text, "strict") or "invalid schema for" in text or "invalid_json_schema" in text):
        return Refusal("strict")
    if method == "text":
        return None
    if any(word in text for word in _GRAMMAR_REFUSALS) or _GO_UNMARSHAL.search(text):
        return Refusal("feature")
    if status in (400, 422) and any(word in text for word in _METHOD_REFUSALS[method]):
        return Refusal("feature")
    if not too_long(exc) and any(_mentions(text, name) for name in _FEATURE_NAMES):
        return Refusal("feature")  # by meaning: an error about the feature is a refusal, not an outage
    return None


def too_long(exc: BaseException) -> bool:
    """A 400 saying the request does not fit the model's context window."""
    return getattr(exc, "status_code", None) in (400, 413, 422) and any(
        word in server_message(exc).lower() for word in _CONTEXT_WORDS
    )
