"""The LLM reasoner: any OpenAI-compatible chat server through langchain-openai.

Robustness is the point of this file. Every fault ends in one of three places, and every attempt is
listed in :attr:`AgentReply.attempts` so traces and ``decisions.jsonl`` show what happened:

==========================================================  =============================================
fault                                                       handling
==========================================================  =============================================
429 (``Retry-After``/``retry-after-ms`` honoured), 408,     retried with tenacity under an explicit per-call
409, 425, 5xx, timeout, connection reset, truncated body,   timeout (exponential backoff with jitter, capped
non-JSON or choice-less 200 body                            by ``backoff_max_s``); after ``max_attempts``:
                                                            ``reply.error`` and ``reply.failure``
a refusal of a structured-output feature (vLLM xgrammar /   next method: ``json_schema`` -> ``json_mode`` ->
outlines / guidance, llama.cpp, Ollama, LM Studio, OpenAI   tool calling -> JSON read from plain text; a
strict schemas; see :mod:`lapt.agents.llm_servers`)         refusal of ``strict`` alone: the same method
                                                            without it
a refusal of ``temperature`` (o1/o3/o4-mini) or of the      the call again without it (remembered); if the
answer cap lapt added                                       user set it with ``--llm-option``:
                                                            :class:`LLMConfigError`
answer with reasoning, fences or prose around the JSON      the first JSON object that validates
                                                            (:mod:`lapt.agents.llm_answers`); where it was
                                                            found is ``reply.extraction``
answer that is not JSON, fails the schema or the agent's    the validation error is quoted back to the
check, or was cut at the length limit                       model, at most ``max_repairs`` times; then
                                                            ``reply.error``
401, 403, 404, endpoint unreachable before any success      :class:`LLMConfigError` (the CLI: one line,
                                                            exit status 2)
==========================================================  =============================================

Requests: strict structured output where the schema allows it (all of lapt's do, see
:mod:`lapt.llm.schema`); ``temperature`` 0 unless ``--llm-option`` says otherwise; an answer cap that
keeps request and answer inside a 4,096-token context (Ollama's default) unless ``max_tokens`` is set;
the JSON schema is written into the prompt only for the methods that do not carry it (JSON mode, text).

``ChatOpenAI`` runs with ``max_retries=0`` so that every HTTP attempt is ours to count, and with an httpx
response hook that rejects 200 answers that are not chat completions (an HTML page from a proxy, a
truncated or choice-less body): without it they surface as ``AttributeError`` deep inside LangChain.

With a :class:`~lapt.llm.cache.ResponseCache`, answers are looked up by the exact request before any
HTTP call; a hit counts in ``reply.cached_calls``, not ``reply.calls``. Secrets never reach an error
message or an attempt line: the API key, the password of the base URL (and anything shaped like
``sk-...``) are redacted.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import math
import re
import sys
import time
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import langsmith
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from lapt.agents.llm_answers import AnswerRejected, extract
from lapt.agents.llm_servers import classify_refusal, server_message, too_long
from lapt.agents.llm_transport import AnswerTooLarge, BoundedTransport
from lapt.agents.reasoner import AgentReply, AgentRequest, Amended, FailureKind, judged
from lapt.errors import UserError
from lapt.llm.cache import CachedAnswer, ResponseCache, request_key
from lapt.llm.redaction import redact, redact_url, register_secret
from lapt.llm.schema import llm_json_schema, llm_json_schema_text, strict_problems
from lapt.runs.config import LLMConfig

METHODS = ("json_schema", "json_mode", "function_calling", "text")
DEFAULT_TEMPERATURE = 0.0
CONTEXT_TOKENS = 4096  # request + answer must fit this (Ollama's default context) unless max_tokens is set
MIN_ANSWER_TOKENS = 256
_CHARS_PER_TOKEN = 2.5  # over-counts tokens on purpose: lapt's prompts run 2.9-3.4 chars per o200k token
_CHAT_FIELDS = ("temperature", "top_p", "seed", "reasoning_effort", "frequency_penalty", "presence_penalty")
_WIRE_NAMES = {"max_tokens": "max_completion_tokens"}  # option -> request field (ChatOpenAI renames it)
SCHEMA_HINT = "\n\nReply with one JSON object that follows this JSON schema:\n"
REPAIR = (
    "Your answer is not valid: {problem}\n"
    "Reply again with the complete JSON object, fixing these problems: only the allowed layer and op names, "
    "every required key, no other key."
)
_UNSET: Any = object()
# langchain-openai warns on stderr when a server refuses structured output; lapt handles the refusal
# itself (next method, or no strict), so the advice to change method would only mislead.
_LANGCHAIN_ADVICE = ("Invalid schema for OpenAI's structured output", "This model does not support OpenAI's structured")


class LLMConfigError(UserError):
    """The LLM cannot be used at all: wrong key, unknown model, unreachable endpoint, a refused option.

    Attributes:
        kind: ``unauthorized``, ``forbidden``, ``unknown_model``, ``unreachable``, ``refused_option`` or
            ``bad_settings``.
    """

    def __init__(self, message: str, kind: str = "bad_settings"):
        super().__init__(message)
        self.kind = kind


class NoStructuredOutput(Exception):
    """None of the structured-output methods worked with this server."""


@dataclass(frozen=True)
class LLMSettings:
    """How to reach the model, as this process uses it: the real URL and the key (never written anywhere).

    What a run records is :meth:`config` (an :class:`~lapt.runs.config.LLMConfig`, URL password redacted).

    Attributes:
        base_url: the server's URL as given, credentials included; None for the OpenAI API.
        timeout_s: the deadline of each HTTP attempt, from its start to the last byte of the answer (httpx alone
            bounds each read, see :mod:`lapt.agents.llm_transport`); ``ChatOpenAI`` has none by default.
        max_attempts: HTTP attempts per call on transient faults.
        max_repairs: rounds of "your answer is invalid because ..." before giving up.
        options: ``--llm-option`` pairs (``temperature``, ``max_tokens``, ``reasoning_effort``, extra body
            fields); ``None`` as a value removes what lapt would send by default.
        backoff_max_s: cap of our own exponential backoff between attempts.
        retry_after_max_s: cap of a server's ``Retry-After`` hint (honoured up to this).
    """

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    max_attempts: int = 4
    max_repairs: int = 2
    options: Mapping[str, Any] = field(default_factory=dict)
    backoff_max_s: float = 20.0
    retry_after_max_s: float = 60.0

    def __post_init__(self) -> None:
        self.config()  # refuse a bad URL, timeout or option now, not at the first call

    def config(self) -> LLMConfig:
        """The settings a run records (no key, URL password redacted)."""
        try:
            return LLMConfig(
                model=self.model,
                base_url=self.base_url,
                timeout_s=self.timeout_s,
                max_attempts=self.max_attempts,
                max_repairs=self.max_repairs,
                options=dict(self.options),
            )
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise LLMConfigError(f"LLM settings: {where}: {msg}") from None

    def public(self) -> dict[str, Any]:
        """:meth:`config` as JSON (what ``RunSettings.llm`` is built from)."""
        return self.config().model_dump(mode="json")

    @classmethod
    def from_config(
        cls, config: LLMConfig, api_key: SecretStr | None = None, base_url: str | None = None, **extra: Any
    ) -> LLMSettings:
        """Settings for a recorded config; ``base_url`` must be given when the recorded one lost its password.

        Raises:
            LLMConfigError: the recorded URL was redacted and no URL (or another one) was given.
        """
        url = config.base_url
        if base_url is not None and url is not None and redact_url(base_url) == url:
            url = base_url
        elif config.url_was_redacted:
            given = f" ({redact_url(base_url)} is another URL)" if base_url else ""
            raise LLMConfigError(
                f"the LLM URL of this run held a password ({config.base_url}); give the URL again with "
                f"OPENAI_BASE_URL or --llm-base-url{given}",
                kind="bad_settings",
            )
        return cls(
            model=config.model,
            base_url=url,
            api_key=api_key,
            timeout_s=config.timeout_s,
            max_attempts=config.max_attempts,
            max_repairs=config.max_repairs,
            options=dict(config.options),
            **extra,
        )


def make_llm_reasoner(
    config: LLMConfig, api_key: SecretStr | None, base_url: str | None, cache: ResponseCache | None
) -> LLMReasoner:
    """The reasoner for a run's recorded LLM settings (see :meth:`LLMSettings.from_config`)."""
    return LLMReasoner(LLMSettings.from_config(config, api_key, base_url), cache=cache)


@dataclass(frozen=True)
class _Answer:
    """One answer of the server: text (or a tool call's parsed arguments) and what came with it."""

    raw: str | dict[str, Any]
    method: str
    truncated: bool = False
    reasoning: str | None = None
    refusal: str | None = None


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


def _too_large(exc: BaseException) -> bool:
    """The answer passed the size cap (:class:`~lapt.agents.llm_transport.AnswerTooLarge`)."""
    return any(isinstance(c, AnswerTooLarge) for c in _causes(exc))


def _is_transient(exc: BaseException) -> bool:
    """Worth another attempt with the same request (not an answer over the size cap: it would come again)."""
    if _too_large(exc):
        return False
    if isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.APIResponseValidationError)):
        return True  # includes timeouts, resets, truncated and malformed bodies (see _check_chat_response)
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409, 425, 429)
    return False


def _failure_kind(exc: BaseException) -> FailureKind:
    """The :data:`~lapt.agents.reasoner.FailureKind` of the error that ended a call."""
    if isinstance(exc, NoStructuredOutput):
        return "no_structured_output"
    if _too_large(exc):
        return "truncated"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "unreachable" if _unreachable(exc) else "server_error"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
        return "context_too_long" if too_long(exc) else "bad_request"
    return "server_error"


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


@functools.cache
def _chat_class() -> Any:
    """``ChatOpenAI`` keeping the reasoning a server sends beside the answer.

    ``ChatOpenAI`` follows the official API only and drops ``reasoning_content`` (vLLM's and DeepSeek's
    reasoning parsers) and ``reasoning`` (OpenRouter, newer vLLM); both can hold the JSON when the
    visible content is empty, so they are kept in ``additional_kwargs["reasoning_content"]``.
    """
    from langchain_openai import ChatOpenAI

    class ReasoningChatOpenAI(ChatOpenAI):
        legacy_cap: bool = False  # send the answer cap as max_tokens (see _legacy_cap)

        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            if self.legacy_cap and "max_completion_tokens" in payload:
                payload["max_tokens"] = payload.pop("max_completion_tokens")
            return payload

        def _create_chat_result(self, response: Any, generation_info: dict[str, Any] | None = None) -> Any:
            result = super()._create_chat_result(response, generation_info)
            choices = response.get("choices") if isinstance(response, dict) else getattr(response, "choices", None)
            for gen, choice in zip(result.generations, choices or [], strict=False):
                message = choice.get("message") if isinstance(choice, dict) else getattr(choice, "message", None)
                if isinstance(message, dict):
                    reasoning = message.get("reasoning_content") or message.get("reasoning")
                else:
                    extra = getattr(message, "model_extra", None) or {}
                    reasoning = extra.get("reasoning_content") or extra.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    gen.message.additional_kwargs["reasoning_content"] = reasoning
            return result

    return ReasoningChatOpenAI


def _legacy_cap(base_url: str | None) -> bool:
    """Whether the answer cap goes as ``max_tokens`` rather than ``max_completion_tokens``.

    OpenAI's API renamed the field; ``ChatOpenAI`` sends the new name everywhere. Servers that speak
    the older dialect take it in silence and ignore it: llama-cpp-python's server generated 2,878 tokens
    against a cap of 400. Every server but OpenAI's own gets the name all of them read.
    """
    if base_url is None:
        return False
    host = (urllib.parse.urlsplit(base_url).hostname or "").lower()
    return not (host == "openai.com" or host.endswith(".openai.com"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks: keep the text ones
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return json.dumps(content)


class LLMReasoner:
    """A :class:`~lapt.agents.reasoner.Reasoner` backed by ``ChatOpenAI``.

    Args:
        settings: how to reach the model.
        method: force one structured-output method (no fallback); None finds the first that works.
        cache: answers by exact request; hits cost no HTTP call.
    """

    name = "llm"

    def __init__(self, settings: LLMSettings, method: str | None = None, cache: ResponseCache | None = None):
        if method is not None and method not in METHODS:
            raise ValueError(f"unknown structured-output method {method!r} (known: {', '.join(METHODS)})")
        self.settings = settings
        self.model = settings.model
        self.cache = cache
        self._public_url = redact_url(settings.base_url)
        password = urllib.parse.urlsplit(settings.base_url).password if settings.base_url else None
        register_secret(password)
        self._secrets = [s for s in (password, settings.api_key.get_secret_value() if settings.api_key else "") if s]
        self._options = dict(settings.options)
        self._dropped: set[str] = set()  # default parameters the server refused (temperature, max_tokens)
        self._strict = True  # until the server refuses strict structured output
        self._http = openai.DefaultHttpxClient(
            transport=BoundedTransport(settings.timeout_s, limits=openai.DEFAULT_CONNECTION_LIMITS),
            event_hooks={"response": [_check_chat_response]},
        )
        self.chat = self._make_chat()
        self._forced = method
        self.method: str | None = method  # the method that last worked
        self._succeeded_once = False
        self._last_request: tuple[bool, list[str]] = (False, [])

    # -- the request ------------------------------------------------------------------------------
    def _effective(self) -> dict[str, Any]:
        """The options a request carries now: defaults, the user's, minus what the server refused."""
        out: dict[str, Any] = {"temperature": DEFAULT_TEMPERATURE} | self._options
        return {k: v for k, v in out.items() if v is not None and k not in self._dropped and k != "max_tokens"}

    def _make_chat(self) -> Any:
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in self._effective().items():
            (kwargs if key in _CHAT_FIELDS else extra)[key] = value
        return _chat_class()(
            model=self.settings.model,
            base_url=self.settings.base_url,
            api_key=self.settings.api_key or SecretStr("not-needed"),
            timeout=self.settings.timeout_s,
            max_retries=0,
            temperature=kwargs.pop("temperature", None),
            extra_body=extra or None,
            http_client=self._http,
            legacy_cap=_legacy_cap(self.settings.base_url),
            **kwargs,
        )

    def _answer_cap(self, messages: list[BaseMessage], schema_text: str) -> int | None:
        """``max_tokens`` of a request: the user's, none, or what keeps request + answer in the context."""
        if "max_tokens" in self._dropped:
            return None
        user = self._options.get("max_tokens", _UNSET)
        if user is not _UNSET:
            return int(user) if user is not None else None
        chars = sum(len(_text(m.content)) for m in messages) + len(schema_text)
        estimate = math.ceil(chars / _CHARS_PER_TOKEN) + 8 * len(messages)
        return max(MIN_ANSWER_TOKENS, CONTEXT_TOKENS - estimate)

    def _sent_params(self, cap: int | None) -> list[str]:
        """The request fields lapt chose (wire names), which a server may refuse by name."""
        names = list(self._effective())
        return names + ([_WIRE_NAMES["max_tokens"], "max_tokens"] if cap is not None else [])

    def _strict_for(self, method: str, schema_json: dict[str, Any]) -> bool:
        return self._strict and method in ("json_schema", "function_calling") and not strict_problems(schema_json)

    def _messages(self, base: list[BaseMessage], method: str, schema: type[BaseModel]) -> list[BaseMessage]:
        """``base`` with the JSON schema written into the first user message when the method cannot carry it."""
        if method not in ("json_mode", "text"):
            return base
        out = list(base)
        for i, m in enumerate(out):
            if isinstance(m, HumanMessage):
                out[i] = HumanMessage(_text(m.content) + SCHEMA_HINT + llm_json_schema_text(schema))
                break
        return out

    def _runnable(self, method: str, schema: type[BaseModel], strict: bool) -> Any:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
        if method == "json_schema":
            spec: dict[str, Any] = {"name": name, "schema": llm_json_schema(schema)}
            if strict:
                spec["strict"] = True
            return self.chat.bind(response_format={"type": "json_schema", "json_schema": spec})
        if method == "json_mode":
            return self.chat.bind(response_format={"type": "json_object"})
        if method == "function_calling":
            schema_json = llm_json_schema(schema)
            function: dict[str, Any] = {
                "name": name,
                "description": str(schema_json.get("description") or "Give the answer."),
                "parameters": schema_json,
            }
            if strict:
                function["strict"] = True
            return self.chat.bind(
                tools=[{"type": "function", "function": function}],
                tool_choice={"type": "function", "function": {"name": name}},
            )
        return self.chat

    def _cache_key(self, messages: list[BaseMessage], schema: type[BaseModel], method: str) -> str:
        return request_key(
            {
                "model": self.settings.model,
                "base_url": self._public_url,
                "options": self._options,
                "method": method,
                "messages": [{"role": m.type, "content": m.content} for m in messages],
                "schema": llm_json_schema(schema),
            }
        )

    # -- helpers ----------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _describe_exc(self, exc: BaseException) -> str:
        """``Type: message`` of ``exc`` and of its root cause (OpenAI's "Connection error." hides it)."""

        def one(e: BaseException) -> str:
            text = str(e).splitlines()[0][:200] if str(e) else ""
            return f"{type(e).__name__}: {text}" if text else type(e).__name__

        chain = _causes(exc)
        if len(chain) == 1 or isinstance(exc, openai.APIStatusError):  # a status error says it all
            return self._redact(one(exc))
        return self._redact(f"{one(exc)} (cause: {one(chain[-1])})")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = _retry_after(exc)
        if hinted is not None:
            return min(hinted, self.settings.retry_after_max_s)
        return float(wait_random_exponential(multiplier=0.5, max=self.settings.backoff_max_s)(state))

    # -- one HTTP call with retries -------------------------------------------------------------
    def _invoke(
        self, messages: list[BaseMessage], method: str, schema: type[BaseModel], attempts: list[str], label: str
    ) -> AIMessage:
        """One answer, with retries on transient faults (never on refusals: they go back to :meth:`_call`)."""
        schema_json = llm_json_schema(schema)
        strict = self._strict_for(method, schema_json)
        runnable = self._runnable(method, schema, strict)
        cap = self._answer_cap(messages, json.dumps(schema_json) if method != "text" else "")
        sent = self._sent_params(cap)
        self._last_request = (strict, sent)  # what a refusal of this call is about (see _call)

        def retry(exc: BaseException) -> bool:
            # An endpoint that never answered is a configuration problem, and a refusal is an answer.
            if classify_refusal(exc, method, sent, strict) is not None:
                return False
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
        call_kwargs = {"max_tokens": cap} if cap is not None else {}
        for attempt in retrying:
            with attempt:
                n = attempt.retry_state.attempt_number
                config = {"run_name": f"{method}_attempt_{n}", "tags": [method]}
                try:
                    with warnings.catch_warnings():
                        for advice in _LANGCHAIN_ADVICE:
                            warnings.filterwarnings("ignore", message=advice, category=UserWarning)
                        msg = runnable.invoke(messages, config=config, **call_kwargs)
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
        self, base: list[BaseMessage], schema: type[BaseModel], order: list[str], reply: AgentReply, label: str
    ) -> _Answer | None:
        if self.cache is None:
            return None
        for method in order:
            hit = self.cache.get(self._cache_key(self._messages(base, method, schema), schema, method))
            if hit is not None:
                reply.cached_calls += 1
                reply.attempts.append(
                    f"{method} cache hit{label} (saved {hit.input_tokens}+{hit.output_tokens} tokens)"
                )
                self.method = self._forced or method
                return _Answer(hit.raw, method, hit.truncated, hit.reasoning)
        return None

    def _relax(self, param: str, exc: BaseException, reply: AgentReply) -> None:
        """Stop sending ``param`` (a default lapt added); a parameter the user set is a config error."""
        option = next((k for k, v in _WIRE_NAMES.items() if v == param), param)
        if self._options.get(option) is not None:
            raise LLMConfigError(
                f"the LLM server refused --llm-option {option}={json.dumps(self._options[option])}: "
                f"{self._redact(server_message(exc))[:300]}",
                kind="refused_option",
            ) from exc
        self._dropped.add(option)
        self.chat = self._make_chat()
        reply.attempts[-1] += f"; the server refused {option}: sending it no more"

    def _call(self, base: list[BaseMessage], schema: type[BaseModel], reply: AgentReply, label: str) -> _Answer:
        """One answer, trying structured-output methods in order from the last one that worked."""
        if self._forced:
            order = [self._forced]
        else:
            order = list(METHODS[METHODS.index(self.method) :] if self.method else METHODS)
        cached = self._from_cache(base, schema, order, reply, label)
        if cached is not None:
            return cached
        last: Exception | None = None
        i = 0
        while i < len(order):
            method = order[i]
            messages = self._messages(base, method, schema)
            truncated = False
            try:
                msg = self._invoke(messages, method, schema, reply.attempts, label)
            except openai.AuthenticationError as exc:
                raise LLMConfigError(
                    f"LLM endpoint rejected the API key (401): {self._describe_exc(exc)}", kind="unauthorized"
                ) from exc
            except openai.PermissionDeniedError as exc:
                raise LLMConfigError(
                    f"LLM endpoint refused access (403): {self._describe_exc(exc)}", kind="forbidden"
                ) from exc
            except openai.NotFoundError as exc:
                raise LLMConfigError(
                    f"unknown model {self.model!r} or wrong base URL (404): {self._describe_exc(exc)}",
                    kind="unknown_model",
                ) from exc
            except openai.APIConnectionError as exc:
                if not self._succeeded_once and _unreachable(exc):
                    where = self._public_url or "the OpenAI API"
                    raise LLMConfigError(
                        f"cannot reach the LLM endpoint {where}: {self._describe_exc(exc)}", kind="unreachable"
                    ) from exc
                raise
            except openai.APIStatusError as exc:
                strict, sent = self._last_request
                refusal = classify_refusal(exc, method, sent, strict)
                if refusal is None:
                    raise
                if refusal.kind == "param" and refusal.param is not None:
                    self._relax(refusal.param, exc, reply)
                    continue
                if refusal.kind == "strict":
                    self._strict = False
                    reply.attempts[-1] += "; strict structured output refused: sending without strict"
                    continue
                last = exc
                if i + 1 < len(order):
                    reply.attempts[-1] += f"; unsupported by the server, trying {order[i + 1]}"
                    i += 1
                    continue
                break
            except openai.LengthFinishReasonError as exc:
                # The server cut the answer at its token limit: keep the partial text for the repair round.
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
            return self._keep(msg, method, schema, messages, reply, truncated)
        raise NoStructuredOutput(
            f"no structured-output method works with this server (last: {self._describe_exc(last) if last else '-'})"
        )

    def _keep(
        self,
        msg: AIMessage,
        method: str,
        schema: type[BaseModel],
        messages: list[BaseMessage],
        reply: AgentReply,
        truncated: bool,
    ) -> _Answer:
        """Count a paid answer, remember the method, store it in the cache."""
        truncated = truncated or msg.response_metadata.get("finish_reason") == "length"
        self._succeeded_once = True
        self.method = self._forced or method
        reply.calls += 1
        usage: dict[str, Any] = dict(msg.usage_metadata or {})
        reply.input_tokens += int(usage.get("input_tokens", 0))
        reply.output_tokens += int(usage.get("output_tokens", 0))
        reasoning = msg.additional_kwargs.get("reasoning_content")
        refusal = msg.additional_kwargs.get("refusal")
        answer = _Answer(
            self._raw(msg, method, schema),
            method,
            truncated,
            reasoning if isinstance(reasoning, str) else None,
            refusal if isinstance(refusal, str) else None,
        )
        if self.cache is not None:
            self.cache.put(
                self._cache_key(messages, schema, method),
                CachedAnswer(
                    raw=answer.raw,
                    method=method,
                    model=self.model,
                    input_tokens=int(usage.get("input_tokens", 0)),
                    output_tokens=int(usage.get("output_tokens", 0)),
                    truncated=truncated,
                    reasoning=answer.reasoning,
                ),
            )
        return answer

    @staticmethod
    def _raw(msg: AIMessage, method: str, schema: type[BaseModel]) -> str | dict[str, Any]:
        """The answer to read: the forced tool call's arguments, else the message text."""
        if method == "function_calling":
            name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
            calls = [c for c in msg.tool_calls if c["name"] == name] or msg.tool_calls
            if calls:
                return dict(calls[0]["args"])
            bad = [c for c in msg.invalid_tool_calls if c.get("args")]
            if bad:  # arguments that are not JSON: hand the text to validation, which asks for a repair
                return str(bad[0]["args"])
        return _text(msg.content)  # also a server that ignored the forced tool and answered in text

    # -- the Reasoner interface ----------------------------------------------------------------
    def complete(self, request: AgentRequest) -> AgentReply:
        """Ask, read, judge, repair; an error in ``reply.error`` rather than an exception (except config).

        An answer is judged part by part (``request.amend``): what breaks a rule is dropped and the rest
        kept; only an answer with nothing usable goes back for repair. Parts the data contradicts are
        quoted back once; if the repair does not answer better, the first answer is kept without them.
        A repair answered with the same text as the answer before it ends the repairs at once: the
        model at temperature 0 would only repeat itself.
        """
        reply = AgentReply(value=None)
        schema = request.schema
        messages: list[BaseMessage] = [SystemMessage(request.system), HumanMessage(request.user)]
        held: tuple[BaseModel, Amended, str | None, str] | None = None  # usable, its contested parts quoted back
        previous: str | dict[str, Any] | None = None

        for repair in range(self.settings.max_repairs + 1):
            label = f" (repair {repair})" if repair else ""
            verdicts: dict[int, Amended] = {}
            validate = functools.partial(_judge, request, verdicts)

            with _round_run(repair, reply):  # traced as answer / repair_N; the HTTP attempts nest inside
                try:
                    answer = self._call(messages, schema, reply, label)
                except LLMConfigError:
                    raise
                except (openai.OpenAIError, NoStructuredOutput) as exc:
                    if held is not None:
                        break  # the first answer stands, without its contested parts
                    # Failure is data: the graph decides what a missing answer means and records this line.
                    reply.failure = _failure_kind(exc)
                    reply.error = f"LLM call failed after retries: {self._describe_exc(exc)}"
                    return reply
                result = extract(answer.raw, validate, answer.reasoning)
                if result.value is not None:
                    verdict = verdicts[id(result.value)]
                    if verdict.contested and held is None and repair < self.settings.max_repairs:
                        held = (result.value, verdict, result.how, answer.method)
                        problem = f"the data contradicts part of the answer: {verdict.contested}"
                        reply.attempts.append(f"contested answer {repair + 1}: {problem[:300]}")
                    else:
                        reply.value, reply.extraction, reply.method = result.value, result.how, answer.method
                        reply.take(verdict)
                        reply.error = reply.failure = None
                        return reply
                else:
                    problem = result.problem or "no valid answer"
                    if answer.truncated:
                        problem = (
                            "the answer was cut off at the length limit before the JSON object was complete "
                            "(a shorter answer is needed, or a larger max_tokens)"
                        )
                    elif answer.refusal and not answer.raw:
                        problem = f"the model refused to answer: {answer.refusal[:200]}"
                    reply.attempts.append(f"invalid answer {repair + 1}: {problem[:300]}")
                    reply.error = f"invalid answer after {repair + 1} attempt(s): {problem[:300]}"
                    reply.failure = "truncated" if answer.truncated else "invalid_answer"
                if previous is not None and answer.raw == previous:
                    reply.attempts.append("the repair repeated the answer before it word for word: no more repairs")
                    break
                previous = answer.raw
                messages = [*messages, AIMessage(result.shown), HumanMessage(REPAIR.format(problem=problem))]
        if held is not None:
            value, verdict, how, method = held
            reply.attempts.append("kept the contested answer without the parts the data contradicts")
            reply.value, reply.extraction, reply.method = value, how, method
            reply.take(verdict)
            reply.error = reply.failure = None
        return reply


def _judge(request: AgentRequest, verdicts: dict[int, Amended], data: Any) -> BaseModel:
    """Validate ``data`` and judge it part by part; the verdict of a kept value is noted in ``verdicts``."""
    verdict = judged(request, request.schema.model_validate(data))
    if verdict.value is None:
        raise AnswerRejected(verdict.problem or "no usable part")
    verdicts[id(verdict.value)] = verdict
    return verdict.value


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
                    "extraction": reply.extraction if ok else None,
                    "attempts": reply.attempts[first:],
                }
            )
