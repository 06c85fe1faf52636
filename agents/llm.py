"""The LLM reasoner: any OpenAI-compatible chat server through langchain-openai.

Robustness is the point of this file:

* **Structured output with a fallback chain.** Servers differ: OpenAI supports ``json_schema``; vLLM,
  Ollama and llama.cpp often only JSON mode or tool calls. We try ``json_schema``, then ``json_mode``,
  then tool calling, then JSON extracted from plain text, and remember the first that works.
* **Validation and repair.** Every answer is validated with the request's Pydantic schema; the error
  is sent back to the model for a bounded number of repairs.
* **Transient faults** (429, 5xx, timeouts, dropped connections, truncated bodies) are retried with
  tenacity (exponential backoff with jitter, honouring ``Retry-After``) under an explicit per-call
  timeout; ``max_retries=0`` on the client so every attempt is visible in the trace.
* **Fatal faults** (401, 403, 404, an endpoint unreachable on the first call) raise
  :class:`LLMConfigError`, which the CLI reports in one line with exit status 2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from lapt.agents.reasoner import AgentReply, AgentRequest
from lapt.errors import UserError

METHODS = ("json_schema", "json_mode", "function_calling", "text")
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


class LLMConfigError(UserError):
    """The LLM cannot be used at all: wrong key, unknown model, unreachable endpoint."""


class NoStructuredOutput(Exception):
    """None of the structured-output methods worked with this server."""


class _Unsupported(Exception):
    """The server does not support the structured-output method just tried."""


@dataclass(frozen=True)
class LLMSettings:
    """How to reach the model. The API key is never logged or written anywhere."""

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    max_attempts: int = 4
    max_repairs: int = 2
    temperature: float = 0.0
    backoff_max_s: float = 20.0

    def public(self) -> dict[str, Any]:
        """Settings safe to record in a run directory (no key)."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            "timeout_s": self.timeout_s,
            "max_attempts": self.max_attempts,
            "max_repairs": self.max_repairs,
            "temperature": self.temperature,
        }


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409, 429)
    # Truncated or non-JSON bodies surface as decoding errors inside the client.
    return isinstance(
        exc, (json.JSONDecodeError, httpx.RemoteProtocolError, httpx.ReadError, openai.APIResponseValidationError)
    )


def _retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


def _extract_json(text: str) -> Any:
    """The first JSON object in ``text``: the whole text, a fenced block, or the outermost braces."""
    text = text.strip()
    for candidate in (text, *(m.group(1) for m in _FENCE.finditer(text))):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        return json.loads(text[start : end + 1])
    raise json.JSONDecodeError("no JSON object in the answer", text, 0)


class LLMReasoner:
    """A :class:`~lapt.agents.reasoner.Reasoner` backed by ``ChatOpenAI``."""

    name = "llm"

    def __init__(self, settings: LLMSettings, method: str | None = None):
        from langchain_openai import ChatOpenAI

        self.settings = settings
        self.model = settings.model
        self.chat = ChatOpenAI(
            model=settings.model,
            base_url=settings.base_url,
            api_key=settings.api_key or SecretStr("not-needed"),
            timeout=settings.timeout_s,
            max_retries=0,
            temperature=settings.temperature,
        )
        self.method: str | None = method
        self._succeeded_once = False

    # -- one HTTP call with retries -------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = _retry_after(exc)
        backoff = wait_random_exponential(multiplier=0.5, max=self.settings.backoff_max_s)(state)
        return min(self.settings.backoff_max_s, hinted) if hinted is not None else backoff

    def _invoke(
        self, messages: list[BaseMessage], method: str, schema: type[BaseModel], attempts: list[str]
    ) -> AIMessage:
        runnable: Any = self.chat
        if method == "json_schema":
            runnable = self.chat.bind(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": False},
                }
            )
        elif method == "json_mode":
            runnable = self.chat.bind(response_format={"type": "json_object"})
        elif method == "function_calling":
            runnable = self.chat.bind_tools([schema], tool_choice=schema.__name__)
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                n = attempt.retry_state.attempt_number
                try:
                    msg = runnable.invoke(messages, config={"run_name": f"{method}_attempt_{n}", "tags": [method]})
                except Exception as exc:  # recorded, then re-raised for tenacity or the caller to classify
                    attempts.append(f"{method} attempt {n}: {type(exc).__name__}: {str(exc)[:200]}")
                    raise
                attempts.append(f"{method} attempt {n}: ok")
                return msg
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, messages: list[BaseMessage], schema: type[BaseModel], reply: AgentReply) -> tuple[Any, str]:
        """One answer as parsed JSON (or raw text on a parse failure), trying methods in order."""
        order = [self.method] if self.method else list(METHODS)
        last: Exception | None = None
        for method in order:
            try:
                msg = self._invoke(messages, method, schema, reply.attempts)
            except openai.BadRequestError as exc:
                if self.method is None and _looks_unsupported(exc):
                    last = exc
                    continue
                raise
            except openai.AuthenticationError as exc:
                raise LLMConfigError(f"LLM endpoint rejected the API key (401): {_short(exc)}") from exc
            except openai.PermissionDeniedError as exc:
                raise LLMConfigError(f"LLM endpoint refused access (403): {_short(exc)}") from exc
            except openai.NotFoundError as exc:
                raise LLMConfigError(f"unknown model {self.model!r} or wrong base URL (404): {_short(exc)}") from exc
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                if not self._succeeded_once:
                    where = self.settings.base_url or "the OpenAI API"
                    raise LLMConfigError(f"cannot reach the LLM endpoint {where}: {_short(exc)}") from exc
                raise
            self._succeeded_once = True
            reply.calls += 1
            usage: dict[str, Any] = dict(msg.usage_metadata or {})
            reply.input_tokens += int(usage.get("input_tokens", 0))
            reply.output_tokens += int(usage.get("output_tokens", 0))
            if method == "function_calling":
                if not msg.tool_calls:
                    if self.method is None:
                        last = _Unsupported("no tool call in the answer")
                        continue
                    return msg.content, method
                return msg.tool_calls[0]["args"], method
            self.method = self.method or method
            return msg.content, method
        raise NoStructuredOutput(f"no structured-output method works with this server (last: {last})")

    # -- the Reasoner interface ----------------------------------------------------------------
    def complete(self, request: AgentRequest) -> AgentReply:
        reply = AgentReply(value=None)
        schema = request.schema
        messages: list[BaseMessage] = [
            SystemMessage(request.system),
            HumanMessage(request.user),
        ]
        for repair in range(self.settings.max_repairs + 1):
            try:
                raw, method = self._call(messages, schema, reply)
            except LLMConfigError:
                raise
            except (openai.APIError, json.JSONDecodeError, httpx.HTTPError, NoStructuredOutput) as exc:
                reply.error = f"LLM call failed after retries: {type(exc).__name__}: {_short(exc)}"
                return reply
            if method == "function_calling" and isinstance(raw, dict):
                self.method = self.method or method
            try:
                data = raw if isinstance(raw, dict) else _extract_json(str(raw))
                reply.value = schema.model_validate(data)
                return reply
            except (json.JSONDecodeError, ValidationError) as exc:
                problem = _describe(exc)
                reply.attempts.append(f"repair {repair + 1}: {problem[:300]}")
                reply.error = f"invalid answer after {repair + 1} attempt(s): {problem[:300]}"
                messages = [
                    *messages,
                    AIMessage(raw if isinstance(raw, str) else json.dumps(raw)),
                    HumanMessage(
                        "Your answer is not valid: " + problem + "\nReply again with one JSON object that follows "
                        "the schema exactly (only allowed op names, every required key, no extra keys)."
                    ),
                ]
        return reply


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:8])
    return f"not JSON ({exc})"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _looks_unsupported(exc: openai.BadRequestError) -> bool:
    text = str(exc).lower()
    return any(
        word in text
        for word in (
            "response_format",
            "json_schema",
            "json_object",
            "tool",
            "function",
            "not supported",
            "unsupported",
        )
    )
