"""The whole-call deadline and the answer cap, against raw HTTP servers on 127.0.0.1 that misbehave."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lapt.agents.llm import LLMReasoner, LLMSettings
from lapt.agents.prompts import load_prompts
from lapt.agents.refiner import make_space_refiner
from lapt.schemas import Principle, PrincipleSet
from lapt.spaces import get_space

PRINCIPLES = PrincipleSet(version=0, source="s", principles=[Principle(statement="Convolutions help.")])


class _Server:
    """One misbehaviour per server: ``drip`` sends a byte every 0.3 s, ``huge`` a 3 MB body at once."""

    def __init__(self, kind: str):
        self.kind = kind
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if outer.kind == "huge":
                    body = b'{"choices": [{"message": {"role": "assistant", "content": "' + b"x" * 3_000_000 + b'"}}]}'
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(100000):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.3)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(request):
    s = _Server(request.param)
    yield s
    s.close()


def refine(url: str, **kw):
    settings = LLMSettings(model="m", base_url=url, backoff_max_s=0.01, **kw)
    return make_space_refiner(LLMReasoner(settings), load_prompts())(get_space("nb201"), PRINCIPLES, 2, "cifar100")


@pytest.mark.parametrize("server", ["drip"], indirect=True)
def test_llm_timeout_is_a_deadline_for_the_whole_call(server):
    start = time.monotonic()
    outcome = refine(server.url, timeout_s=1.5, max_attempts=2)
    took = time.monotonic() - start
    assert outcome.value is None and outcome.reply.failure == "timeout"
    assert "after the 1.5 s the call may take" in outcome.reply.error
    assert server.requests == 2 and took < 2 * 1.5 + 2  # two attempts, each cut at its deadline (+ one read)


@pytest.mark.parametrize("server", ["huge"], indirect=True)
def test_an_answer_past_the_cap_is_refused_as_truncated_and_not_asked_again(server):
    outcome = refine(server.url, timeout_s=30, max_attempts=3)
    assert outcome.value is None and outcome.reply.failure == "truncated"
    assert "the answer passed 1024 KB" in outcome.reply.error
    assert server.requests == 1
