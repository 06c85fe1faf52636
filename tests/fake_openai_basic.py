"""A tiny OpenAI-compatible chat server on 127.0.0.1 for tests: scripted answers with token usage.

``POST /v1/chat/completions`` answers with the next scripted reply for the request (chosen by a
function of the request body) and a ``usage`` block; every request is recorded with its headers so a
test can check what the client sent. Nothing else is served (404).

    with FakeOpenAI(answer) as server:
        LLMSettings(model="fake", base_url=server.base_url, ...)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[dict[str, Any]], str]


class FakeOpenAI:
    """The server; ``answer(request_body) -> reply text`` decides every reply.

    Attributes:
        requests: ``(path, headers, body)`` of every request, in order (header names in lower case).
        usage: the ``usage`` block sent with every answer.
    """

    def __init__(self, answer: Answer, usage: tuple[int, int] = (120, 30)):
        self.answer = answer
        self.usage = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                reply = {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": server.answer(body)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": server.usage,
                }
                self._send(200, reply)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The ``base_url`` for an OpenAI client (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
