"""The LLM reasoner: any OpenAI-compatible chat server through langchain-openai.

Robustness is the point of this file. Every fault ends in one of three places, and every attempt is
listed in :attr:`AgentReply.attempts` so traces and ``decisions.jsonl`` show what happened:

==========================================================  =============================================
fault                                                       handling
==========================================================  =============================================
429 (``Retry-After``/``retry-after-ms`` honoured), 408,     retried with tenacity under an explicit per-call
409, 425, 5xx, timeout, connection reset, truncated body,   timeout (exponential backoff with jitter, capped
non-JSON or choice-less 200 body                            by ``backoff_max_s``); after ``max_attempts``:
                                                            ``reply.error``, the graph falls back
400/422 naming the structured-output feature just tried     next method: ``json_schema`` -> ``json_mode`` ->
                                                            tool calling -> JSON extracted from plain text
answer that is not JSON, fails the schema, or was cut at    the validation error is sent back to the model,
the length limit                                            at most ``max_repairs`` times; then
                                                            ``reply.error``
401, 403, 404, endpoint unreachable before any success      :class:`LLMConfigError` (the CLI: one line,
                                                            exit status 2)
==========================================================  =============================================

``ChatOpenAI`` runs with ``max_retries=0`` so that every HTTP attempt is ours to count, and with an httpx
response hook that rejects 200 answers that are not chat completions (an HTML page from a proxy, a
truncated or choice-less body): without it they surface as ``AttributeError`` deep inside LangChain.

With a :class:`~lapt.llm_cache.ResponseCache`, answers are looked up by the exact request before any
HTTP call; a hit counts in ``reply.cached_calls``, not ``reply.calls``. Secrets never reach an error
message or an attempt line: the API key (and anything shaped like ``sk-...``) is redacted.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import langsmith
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from lapt.agents.reasoner import AgentReply, AgentRequest
from lapt.errors import UserError
from lapt.llm_cache import CachedAnswer, ResponseCache, request_key
from lapt.redaction import redact

METHODS = ("json_schema", "json_mode", "function_calling", "text")
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)
# Words that show a 400/422 is about the structured-output feature just tried, not about the request.
_FEATURE_WORDS = {
    "json_schema": ("response_format", "response format", "json_schema", "structured output", "guided"),
    "json_mode": ("response_format", "response format", "json_object", "json mode"),
    "function_calling": ("tool", "function"),
    "text": (),
}


class LLMConfigError(UserError):
    """The LLM cannot be used at all: wrong key, unknown model, unreachable endpoint."""


class NoStructuredOutput(Exception):
    """None of the structured-output methods worked with this server."""


@dataclass(frozen=True)
class LLMSettings:
    """How to reach the model. The API key is never logged or written anywhere.

    Attributes:
        timeout_s: per HTTP attempt; ``ChatOpenAI`` has none by default.
        max_attempts: HTTP attempts per call on transient faults.
        max_repairs: rounds of "your answer is invalid because ..." before giving up.
        backoff_max_s: cap of our own exponential backoff between attempts.
        retry_after_max_s: cap of a server's ``Retry-After`` hint (honoured up to this).
    """

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    max_attempts: int = 4
    max_repairs: int = 2
    temperature: float = 0.0
    backoff_max_s: float = 20.0
    retry_after_max_s: float = 60.0

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


@dataclass(frozen=True)
class _Answer:
    """One answer of the server: text, or a tool call's arguments (parsed, or raw text if not JSON)."""

    raw: str | dict[str, Any]
    method: str
    truncated: bool = False


# -- classifying faults --------------------------------------------------------------------------
def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it was raised from, outermost first."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def _unreachable(exc: BaseException) -> bool:
    """Refused, unresolvable or never-accepting endpoint (as opposed to a server that dropped a call)."""
    return any(type(c).__name__ in ("ConnectError", "ConnectTimeout") for c in _causes(exc))


def _is_transient(exc: BaseException) -> bool:
    """Worth another attempt with the same request."""
    if isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.APIResponseValidationError)):
        return True  # includes timeouts, resets, truncated and malformed bodies (see _check_chat_response)
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409, 425, 429)
    return False


def _retry_after(exc: BaseException | None) -> float | None:
    """The server's wait hint in seconds: ``retry-after-ms``, or ``Retry-After`` (seconds or HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _looks_unsupported(exc: openai.APIStatusError, method: str) -> bool:
    """A 400/422 that names the structured-output feature of ``method`` (the server lacks it)."""
    if exc.status_code not in (400, 422):
        return False
    text = str(exc).lower()
    return any(word in text for word in _FEATURE_WORDS[method])


def _chat_body_problem(content_type: str, body: bytes) -> str | None:
    """Why a 2xx body is not a chat completion, or None when it is one."""
    if "json" not in content_type.lower():
        return f"Content-Type {content_type or 'missing'!r}, body {body[:80]!r}"
    try:
        data = json.loads(body)
    except ValueError as e:
        return f"body is not JSON ({e}): {body[:80]!r}"
    if not isinstance(data, dict):
        return f"body is not a JSON object: {body[:80]!r}"
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        error = data.get("error")
        return f"no choices in the answer{f' (error: {error})' if error else ''}"
    if not isinstance(choices[0].get("message"), dict):
        return "the first choice has no message"
    return None


def _check_chat_response(response: Any) -> None:
    """httpx response hook: raise a transport-level decoding error for a malformed chat completion.

    Raising the client library's own ``DecodingError`` (httpx or httpx2, whichever ``openai`` uses)
    lets the OpenAI client wrap it as ``APIConnectionError`` like any other broken transfer.
    """
    request = response.request
    if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
        return
    if not 200 <= response.status_code < 300:
        return
    response.read()
    problem = _chat_body_problem(response.headers.get("content-type", ""), response.content)
    if problem is not None:
        httpx_module = sys.modules[type(response).__module__.split(".")[0]]
        raise httpx_module.DecodingError(f"malformed chat completion: {problem}", request=request)


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


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content)


class LLMReasoner:
    """A :class:`~lapt.agents.reasoner.Reasoner` backed by ``ChatOpenAI``.

    Args:
        settings: how to reach the model.
        method: force one structured-output method (no fallback); None finds the first that works.
        cache: answers by exact request; hits cost no HTTP call.
    """

    name = "llm"

    def __init__(self, settings: LLMSettings, method: str | None = None, cache: ResponseCache | None = None):
        from langchain_openai import ChatOpenAI

        if method is not None and method not in METHODS:
            raise ValueError(f"unknown structured-output method {method!r} (known: {', '.join(METHODS)})")
        self.settings = settings
        self.model = settings.model
        self.cache = cache
        self.chat = ChatOpenAI(
            model=settings.model,
            base_url=settings.base_url,
            api_key=settings.api_key or SecretStr("not-needed"),
            timeout=settings.timeout_s,
            max_retries=0,
            temperature=settings.temperature,
            http_client=openai.DefaultHttpxClient(event_hooks={"response": [_check_chat_response]}),
        )
        self._forced = method
        self.method: str | None = method  # the method that last worked
        self._succeeded_once = False

    # -- helpers --------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        return redact(text, [key] if key else [])

    def _describe_exc(self, exc: BaseException) -> str:
        """``Type: message`` of ``exc`` and of its root cause (OpenAI's "Connection error." hides it)."""

        def one(e: BaseException) -> str:
            text = str(e).splitlines()[0][:200] if str(e) else ""
            return f"{type(e).__name__}: {text}" if text else type(e).__name__

        chain = _causes(exc)
        if len(chain) == 1 or isinstance(exc, openai.APIStatusError):  # a status error says it all
            return self._redact(one(exc))
        out = f"{one(exc)} (cause: {one(chain[-1])})"
        return self._redact(out)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = _retry_after(exc)
        if hinted is not None:
            return min(hinted, self.settings.retry_after_max_s)
        return float(wait_random_exponential(multiplier=0.5, max=self.settings.backoff_max_s)(state))

    def _runnable(self, method: str, schema: type[BaseModel]) -> Any:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
        if method == "json_schema":
            fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema.model_json_schema()}}
            return self.chat.bind(response_format=fmt)
        if method == "json_mode":
            return self.chat.bind(response_format={"type": "json_object"})
        if method == "function_calling":
            return self.chat.bind_tools([schema], tool_choice=schema.__name__)
        return self.chat

    def _cache_key(self, messages: list[BaseMessage], schema: type[BaseModel], method: str) -> str:
        return request_key(
            {
                "model": self.settings.model,
                "base_url": self.settings.base_url,
                "temperature": self.settings.temperature,
                "method": method,
                "messages": [{"role": m.type, "content": m.content} for m in messages],
                "schema": schema.model_json_schema(),
            }
        )

    # -- one HTTP call with retries -------------------------------------------------------------
    def _invoke(
        self, messages: list[BaseMessage], method: str, schema: type[BaseModel], attempts: list[str], label: str
    ) -> AIMessage:
        runnable = self._runnable(method, schema)

        def retry(exc: BaseException) -> bool:
            # An endpoint that never answered is a configuration problem: fail fast, do not retry.
            return _is_transient(exc) and (self._succeeded_once or not _unreachable(exc))

        def note_wait(state: RetryCallState) -> None:
            sleep = state.next_action.sleep if state.next_action else 0.0
            hinted = " (Retry-After)" if _retry_after(state.outcome.exception() if state.outcome else None) else ""
            attempts[-1] += f"; retrying in {sleep:.2f} s{hinted}"

        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(retry),
            before_sleep=note_wait,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                n = attempt.retry_state.attempt_number
                try:
                    msg = runnable.invoke(messages, config={"run_name": f"{method}_attempt_{n}", "tags": [method]})
                except Exception as exc:  # recorded, then re-raised for tenacity or the caller to classify
                    attempts.append(f"{method} attempt {n}{label}: {self._describe_exc(exc)}")
                    raise
                usage = dict(msg.usage_metadata or {})
                attempts.append(
                    f"{method} attempt {n}{label}: ok ({usage.get('input_tokens', 0)}+"
                    f"{usage.get('output_tokens', 0)} tokens)"
                )
                return msg
        raise AssertionError("unreachable")  # pragma: no cover

    def _from_cache(
        self, messages: list[BaseMessage], schema: type[BaseModel], order: list[str], reply: AgentReply, label: str
    ) -> _Answer | None:
        if self.cache is None:
            return None
        for method in order:
            hit = self.cache.get(self._cache_key(messages, schema, method))
            if hit is not None:
                reply.cached_calls += 1
                reply.attempts.append(
                    f"{method} cache hit{label} (saved {hit.input_tokens}+{hit.output_tokens} tokens)"
                )
                self.method = self._forced or method
                return _Answer(hit.raw, method, hit.truncated)
        return None

    def _call(self, messages: list[BaseMessage], schema: type[BaseModel], reply: AgentReply, label: str) -> _Answer:
        """One answer, trying structured-output methods in order from the last one that worked."""
        if self._forced:
            order = [self._forced]
        else:
            order = list(METHODS[METHODS.index(self.method) :] if self.method else METHODS)
        cached = self._from_cache(messages, schema, order, reply, label)
        if cached is not None:
            return cached
        last: Exception | None = None
        for i, method in enumerate(order):
            truncated = False
            try:
                msg = self._invoke(messages, method, schema, reply.attempts, label)
            except openai.AuthenticationError as exc:
                raise LLMConfigError(f"LLM endpoint rejected the API key (401): {self._describe_exc(exc)}") from exc
            except openai.PermissionDeniedError as exc:
                raise LLMConfigError(f"LLM endpoint refused access (403): {self._describe_exc(exc)}") from exc
            except openai.NotFoundError as exc:
                raise LLMConfigError(
                    f"unknown model {self.model!r} or wrong base URL (404): {self._describe_exc(exc)}"
                ) from exc
            except openai.APIConnectionError as exc:
                if not self._succeeded_once and _unreachable(exc):
                    where = self.settings.base_url or "the OpenAI API"
                    raise LLMConfigError(f"cannot reach the LLM endpoint {where}: {self._describe_exc(exc)}") from exc
                raise
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if i + 1 < len(order) and _looks_unsupported(exc, method):
                    reply.attempts[-1] += f"; unsupported by the server, trying {order[i + 1]}"
                    last = exc
                    continue
                raise
            except openai.LengthFinishReasonError as exc:
                # The server cut the answer at its token limit: keep the partial text for the repair round.
                self._succeeded_once = True
                completion = exc.completion
                partial = completion.choices[0].message.content if completion.choices else ""
                usage = completion.usage
                msg = AIMessage(
                    partial or "",
                    usage_metadata={
                        "input_tokens": usage.prompt_tokens if usage else 0,
                        "output_tokens": usage.completion_tokens if usage else 0,
                        "total_tokens": usage.total_tokens if usage else 0,
                    },
                )
                truncated = True
            truncated = truncated or msg.response_metadata.get("finish_reason") == "length"
            self._succeeded_once = True
            self.method = self._forced or method
            reply.calls += 1
            usage_meta: dict[str, Any] = dict(msg.usage_metadata or {})
            reply.input_tokens += int(usage_meta.get("input_tokens", 0))
            reply.output_tokens += int(usage_meta.get("output_tokens", 0))
            answer = _Answer(self._raw(msg, method, schema), method, truncated)
            if self.cache is not None:
                self.cache.put(
                    self._cache_key(messages, schema, method),
                    CachedAnswer(
                        raw=answer.raw,
                        method=method,
                        model=self.model,
                        input_tokens=int(usage_meta.get("input_tokens", 0)),
                        output_tokens=int(usage_meta.get("output_tokens", 0)),
                        truncated=truncated,
                    ),
                )
            return answer
        raise NoStructuredOutput(
            f"no structured-output method works with this server (last: {self._describe_exc(last) if last else '-'})"
        )

    @staticmethod
    def _raw(msg: AIMessage, method: str, schema: type[BaseModel]) -> str | dict[str, Any]:
        """The answer to validate: the forced tool call's arguments, else the message text."""
        if method == "function_calling":
            calls = [c for c in msg.tool_calls if c["name"] == schema.__name__] or msg.tool_calls
            if calls:
                return dict(calls[0]["args"])
            bad = [c for c in msg.invalid_tool_calls if c.get("args")]
            if bad:  # arguments that are not JSON: hand the text to validation, which asks for a repair
                return str(bad[0]["args"])
        return _text(msg.content)  # also a server that ignored the forced tool and answered in text

    # -- the Reasoner interface ----------------------------------------------------------------
    def complete(self, request: AgentRequest) -> AgentReply:
        """Ask, validate, repair; an error in ``reply.error`` rather than an exception (except config)."""
        reply = AgentReply(value=None)
        schema = request.schema
        messages: list[BaseMessage] = [SystemMessage(request.system), HumanMessage(request.user)]
        for repair in range(self.settings.max_repairs + 1):
            label = f" (repair {repair})" if repair else ""
            with _round_run(repair, reply):  # traced as answer / repair_N; the HTTP attempts nest inside
                try:
                    answer = self._call(messages, schema, reply, label)
                except LLMConfigError:
                    raise
                except (openai.OpenAIError, NoStructuredOutput) as exc:
                    # Failure is data: the graph keeps the previous mask and records this line.
                    reply.error = f"LLM call failed after retries: {self._describe_exc(exc)}"
                    return reply
                try:
                    data = answer.raw if isinstance(answer.raw, dict) else _extract_json(answer.raw)
                    reply.value = schema.model_validate(data)
                    reply.error = None
                    return reply
                except (json.JSONDecodeError, ValidationError) as exc:
                    if answer.truncated:
                        problem = "the answer was cut off at the length limit before the JSON object was complete"
                    else:
                        problem = _describe(exc)
                    reply.attempts.append(f"invalid answer {repair + 1}: {problem[:300]}")
                    reply.error = f"invalid answer after {repair + 1} attempt(s): {problem[:300]}"
                    messages = [
                        *messages,
                        AIMessage(answer.raw if isinstance(answer.raw, str) else json.dumps(answer.raw)),
                        HumanMessage(
                            "Your answer is not valid: " + problem + "\nReply again with one complete JSON object that "
                            "follows the schema exactly (only allowed op names, every required key, no extra keys)."
                        ),
                    ]
        return reply


@contextlib.contextmanager
def _round_run(repair: int, reply: AgentReply) -> Iterator[None]:
    """One answer round as a traced chain run: ``answer`` first, then ``repair_1``, ``repair_2``...

    Its outputs say whether the answer validated (with the parsed value) or why not; the HTTP attempts
    (``<method>_attempt_<n>`` LLM runs) are its children. Without tracing this costs nothing.
    """
    first = len(reply.attempts)
    name = f"repair_{repair}" if repair else "answer"
    with langsmith.trace(name, run_type="chain", inputs={"round": repair}) as run:
        try:
            yield
        finally:
            ok = reply.value is not None
            run.end(
                outputs={
                    "valid": ok,
                    "parsed": reply.value if ok else None,
                    "problem": None if ok else reply.error,
                    "attempts": reply.attempts[first:],
                }
            )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:8])
    return f"not JSON ({exc})"
