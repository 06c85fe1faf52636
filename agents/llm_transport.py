"""The HTTP transport under the LLM client: a deadline for the whole call and a cap on the answer's size.

httpx's timeouts are per operation: a read timeout of 5 s bounds each read, so a server that sends one
byte every 2 s keeps a call alive for ever. And nothing bounds what a body may hold: a 200 MB answer was
read whole into memory, then copied into the trace. :class:`BoundedTransport` wraps httpx's own
transport and reads every response body through :class:`_Bounded`, which

* raises httpx's ``ReadTimeout`` once the call has run past its deadline (``--llm-timeout`` from the
  request's start: the client retries it like any timeout), and
* raises :class:`AnswerTooLarge` past :data:`MAX_ANSWER_BYTES`, which is not retried (the same request
  would bring the same answer) and ends the call as a ``truncated`` answer.

The overshoot of the deadline is at most one read (each read is bounded by httpx's own timeout).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from typing import Any

import openai

# The httpx the OpenAI client is built on (recent releases ship their own fork as ``httpx2``): its
# transport, stream and error classes are the ones the client accepts and wraps.
httpx: Any = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])

MAX_ANSWER_BYTES = 1 << 20
"""1 MiB: a 4,096-token answer is about 16 KB of text, and a reasoning model's 8,000 tokens of thought fit
many times over; what is larger is no answer lapt could use."""


class AnswerTooLarge(httpx.ReadError):
    """The server's answer passed :data:`MAX_ANSWER_BYTES`; reading stopped there."""


class _Bounded(httpx.SyncByteStream):
    def __init__(self, stream: Any, request: Any, deadline: float, timeout_s: float, cap: int):
        self.stream = stream
        self.request = request
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.cap = cap

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self.stream:
            size += len(chunk)
            if size > self.cap:
                raise AnswerTooLarge(
                    f"the answer passed {self.cap // 1024} KB; it was cut there and refused", request=self.request
                )
            if time.monotonic() > self.deadline:
                raise httpx.ReadTimeout(
                    f"the answer was still arriving after the {self.timeout_s:g} s the call may take",
                    request=self.request,
                )
            yield chunk

    def close(self) -> None:
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()


class BoundedTransport(httpx.BaseTransport):
    """httpx's transport with a whole-call deadline of ``timeout_s`` and an answer cap of ``cap`` bytes."""

    def __init__(self, timeout_s: float, cap: int = MAX_ANSWER_BYTES, **kwargs: Any):
        self.inner = httpx.HTTPTransport(**kwargs)
        self.timeout_s = timeout_s
        self.cap = cap

    def handle_request(self, request: Any) -> Any:
        deadline = time.monotonic() + self.timeout_s
        response = self.inner.handle_request(request)
        if time.monotonic() > deadline:
            response.close()
            raise httpx.ReadTimeout(f"no answer within the {self.timeout_s:g} s the call may take", request=request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Bounded(response.stream, request, deadline, self.timeout_s, self.cap),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()
