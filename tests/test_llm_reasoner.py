"""The LLM reasoner against a fake OpenAI server at the wire: real ChatOpenAI, real HTTP, real faults.

Every test drives a real agent (refiner or learner with the shipped prompts) through ``LLMReasoner``;
only the server is fake (``tests/fake_openai.py``, bound to 127.0.0.1). The response cache is tested
here too, since it lives inside the reasoner's call path.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from datetime import UTC

import numpy as np
import pytest
from fake_openai import FakeOpenAI
from pydantic import SecretStr

from lapt.agents.learner import SourceData, make_principle_learner
from lapt.agents.llm import LLMConfigError, LLMReasoner, LLMSettings
from lapt.agents.prompts import load_prompts
from lapt.agents.refiner import make_space_refiner
from lapt.llm.cache import CachedAnswer, ResponseCache, request_key
from lapt.schemas import Principle, PrincipleSet
from lapt.transfer.masks import MaskBase

PRINCIPLES = PrincipleSet(
    version=0,
    source="test",
    tasks_seen=["cifar10"],
    principles=[Principle(statement="Convolutions help on every edge.", confidence=0.8)],
)


@pytest.fixture(scope="module")
def prompts():
    return load_prompts()


@pytest.fixture
def fake():
    with FakeOpenAI(slow_s=2.0, retry_after_s=1.0) as server:
        yield server


def settings(url: str, model: str = "fake", **kw) -> LLMSettings:
    """Test settings: short timeout, 10 ms backoff cap, so faults cost milliseconds."""
    values = {"timeout_s": 2.0, "max_attempts": 3, "max_repairs": 2, "backoff_max_s": 0.01} | kw
    return LLMSettings(model=model, base_url=url, **values)


def refine(reasoner, prompts, nb201):
    """One refiner call with the shipped prompt; returns the agent's outcome."""
    return make_space_refiner(reasoner, prompts)(nb201, PRINCIPLES, 2, "cifar100")


def last_user(record) -> str:
    return next(m["content"] for m in reversed(record.messages) if m["role"] == "user")


# -- valid answers, every structured-output method ---------------------------------------------------
def test_valid_answer_json_schema(fake, prompts, nb201):
    outcome = refine(LLMReasoner(settings(fake.url)), prompts, nb201)
    reply = outcome.reply
    assert isinstance(outcome.value, MaskBase) and reply.error is None
    assert reply.calls == 1 and reply.cached_calls == 0
    (req,) = fake.chat_requests()
    assert req.method == "json_schema"
    assert req.body["response_format"]["json_schema"]["name"] == "Nb201Mask"
    assert req.body["model"] == "fake" and req.body["temperature"] == 0.0
    assert "refined search space for the task cifar100" in req.text  # the real refiner prompt went out
    assert reply.input_tokens > 100 and reply.output_tokens > 10  # from the server's usage block
    assert reply.attempts == [f"json_schema attempt 1: ok ({reply.input_tokens}+{reply.output_tokens} tokens)"]


def test_json_mode_only_server(prompts, nb201):
    with FakeOpenAI(mode="json_mode_only") as fake:
        reasoner = LLMReasoner(settings(fake.url))
        outcome = refine(reasoner, prompts, nb201)
        assert outcome.value is not None
        assert [(r.method, r.status) for r in fake.chat_requests()] == [("json_schema", 400), ("json_mode", 200)]
        assert "unsupported by the server, trying json_mode" in outcome.reply.attempts[0]
        assert reasoner.method == "json_mode"
        # The method is remembered: the next call goes straight to JSON mode.
        fake.reset_log()
        assert refine(reasoner, prompts, nb201).value is not None
        assert [r.method for r in fake.chat_requests()] == ["json_mode"]


def test_tool_call_only_server(prompts, nb201):
    with FakeOpenAI(mode="tools_only") as fake:
        reasoner = LLMReasoner(settings(fake.url))
        outcome = refine(reasoner, prompts, nb201)
        assert outcome.value is not None
        requests = fake.chat_requests()
        assert [(r.method, r.status) for r in requests] == [
            ("json_schema", 400),
            ("json_mode", 400),
            ("function_calling", 200),
        ]
        assert requests[-1].body["tool_choice"]["function"]["name"] == "Nb201Mask"
        assert reasoner.method == "function_calling"


def test_tool_call_with_broken_arguments_is_repaired(prompts, nb201):
    with FakeOpenAI(mode="tools_only") as fake:
        reasoner = LLMReasoner(settings(fake.url), method="function_calling")
        fake.script("bad_tool_args", "valid")
        outcome = refine(reasoner, prompts, nb201)
        assert outcome.value is not None and outcome.reply.calls == 2
        assert "not JSON" in last_user(fake.chat_requests()[1])


def test_server_ignoring_the_forced_tool_answers_in_text(prompts, nb201):
    with FakeOpenAI(mode="tools_only") as fake:
        fake.script("ignore_tools")
        outcome = refine(LLMReasoner(settings(fake.url), method="function_calling"), prompts, nb201)
        assert outcome.value is not None and outcome.reply.calls == 1


def test_fenced_json_in_prose_is_accepted(fake, prompts, nb201):
    fake.script("valid_fenced")
    assert refine(LLMReasoner(settings(fake.url)), prompts, nb201).value is not None


# -- invalid answers: the validation error goes back to the model --------------------------------------
@pytest.mark.parametrize(
    "fault,told",
    [
        ("unknown_ops", "Input should be 'none', 'skip_connect'"),
        ("empty_ops", "List should have at least 1 item"),
        ("too_many_ops", "List should have at most 2 items"),
        ("missing_layers", "edge_0_1: Field required"),
        ("no_valid_arch", "the mask leaves no valid architecture"),
        ("schema_fail", "Extra inputs are not permitted"),
        ("prose", "not JSON"),
        ("length_cut", "cut off at the length limit"),
    ],
)
def test_invalid_then_repaired(fake, prompts, nb201, fault, told):
    fake.script(fault, "valid")
    outcome = refine(LLMReasoner(settings(fake.url)), prompts, nb201)
    assert outcome.value is not None and outcome.reply.error is None
    assert outcome.reply.calls == 2
    first, second = fake.chat_requests()
    assert told not in last_user(first)
    assert told in last_user(second)  # the validation error text was sent back to the model
    assert second.messages[-2]["role"] == "assistant"  # with the model's own invalid answer before it
    assert any(a.startswith("invalid answer 1:") and told in a for a in outcome.reply.attempts)


def test_repairs_exhausted_is_an_error_not_an_exception(fake, prompts, nb201):
    fake.script("unknown_ops", "too_many_ops", "missing_layers")
    outcome = refine(LLMReasoner(settings(fake.url, max_repairs=2)), prompts, nb201)
    assert outcome.value is None
    assert outcome.reply.error.startswith("invalid answer after 3 attempt(s)")
    assert outcome.reply.calls == 3 and len(fake.chat_requests()) == 3


def test_learner_principles_are_repaired(fake, prompts, nb201):
    fake.script("schema_fail", "valid")
    values = np.linspace(0.0, 1.0, 15625)
    learn = make_principle_learner(LLMReasoner(settings(fake.url)), prompts, top_k=5)
    outcome = learn(nb201, [SourceData("cifar10", list(nb201.enumerate()), values)])
    assert outcome.value is not None and outcome.value.tasks_seen == ["cifar10"]
    assert "less than or equal to 1" in last_user(fake.chat_requests()[1])


# -- transient faults ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault,seen",
    [
        ("error_500", "500"),
        ("error_502", "502"),
        ("error_503", "503"),
        ("rate_limit", "429"),
        ("reset", "Connection reset"),
        ("truncated", "peer closed connection without sending complete message body"),
        ("non_json_body", "malformed chat completion: Content-Type 'text/html'"),
    ],
)
def test_transient_fault_then_success(fake, prompts, nb201, fault, seen):
    fake.script(fault)
    outcome = refine(LLMReasoner(settings(fake.url)), prompts, nb201)
    assert outcome.value is not None
    assert outcome.reply.calls == 1 and len(fake.chat_requests()) == 2
    assert seen in outcome.reply.attempts[0] and "retrying in" in outcome.reply.attempts[0]
    assert outcome.reply.attempts[1].startswith("json_schema attempt 2: ok")


def test_retry_after_is_honoured(fake, prompts, nb201):
    fake.script("rate_limit_retry_after")
    # Our own backoff is capped at 10 ms: only the server's Retry-After: 1 can explain a 1 s wait.
    outcome = refine(LLMReasoner(settings(fake.url, backoff_max_s=0.01)), prompts, nb201)
    assert outcome.value is not None
    first, second = fake.chat_requests()
    waited = second.at - first.at
    assert 1.0 <= waited < 2.5, waited
    assert "retrying in 1.00 s (Retry-After)" in outcome.reply.attempts[0]


def test_rate_limit_without_retry_after_uses_backoff(fake, prompts, nb201):
    fake.script("rate_limit")
    refine(LLMReasoner(settings(fake.url, backoff_max_s=0.01)), prompts, nb201)
    first, second = fake.chat_requests()
    assert second.at - first.at < 0.5


def test_timeout_then_success(fake, prompts, nb201):
    fake.script("slow")  # the server waits 2 s; the client gives up after 0.5 s and tries again
    start = time.monotonic()
    outcome = refine(LLMReasoner(settings(fake.url, timeout_s=0.5)), prompts, nb201)
    elapsed = time.monotonic() - start
    assert outcome.value is not None
    assert "Timeout" in outcome.reply.attempts[0]
    assert 0.5 <= elapsed < 2.0, elapsed


def test_transient_faults_exhausted_are_an_error(fake, prompts, nb201):
    fake.script("error_503", "reset", "error_502")
    outcome = refine(LLMReasoner(settings(fake.url, max_attempts=3)), prompts, nb201)
    assert outcome.value is None
    assert outcome.reply.error.startswith("LLM call failed after retries")
    assert len(outcome.reply.attempts) == 3 and outcome.reply.calls == 0


# -- fatal configuration errors --------------------------------------------------------------------------
def test_unauthorized_is_a_config_error_and_the_key_never_shows(prompts, nb201):
    secret = "sk-lapt-test-0123456789abcdef"
    with FakeOpenAI(api_key="sk-the-right-one") as fake:
        reasoner = LLMReasoner(settings(fake.url, api_key=SecretStr(secret)))
        with pytest.raises(LLMConfigError, match="401") as info:
            refine(reasoner, prompts, nb201)
        (req,) = fake.chat_requests()
        assert req.status == 401 and req.authorization  # the server echoed the wrong key in its message...
        assert secret not in str(info.value) and "0123456789" not in str(info.value)  # ...the error hides it


def test_scripted_401_is_a_config_error(fake, prompts, nb201):
    fake.script("unauthorized")
    with pytest.raises(LLMConfigError, match="rejected the API key"):
        refine(LLMReasoner(settings(fake.url)), prompts, nb201)


def test_unknown_model_is_a_config_error(fake, prompts, nb201):
    with pytest.raises(LLMConfigError, match=r"unknown model 'gpt-nope'.*404"):
        refine(LLMReasoner(settings(fake.url, model="gpt-nope")), prompts, nb201)


def test_unreachable_endpoint_fails_fast(prompts, nb201):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    # Default backoff: a retry would take up to seconds; a closed port must not be retried at all.
    reasoner = LLMReasoner(LLMSettings(model="fake", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=5))
    with pytest.raises(LLMConfigError, match=f"cannot reach the LLM endpoint http://127.0.0.1:{port}/v1"):
        refine(reasoner, prompts, nb201)
    assert time.monotonic() - start < 1.0


def test_endpoint_lost_after_a_success_is_not_fatal(prompts, nb201):
    fake = FakeOpenAI().start()
    reasoner = LLMReasoner(settings(fake.url, max_attempts=2))
    assert refine(reasoner, prompts, nb201).value is not None
    fake.stop()
    outcome = refine(reasoner, prompts, nb201)  # the run goes on without this answer
    assert outcome.value is None and "Connection" in outcome.reply.error


# -- the response cache ------------------------------------------------------------------------------------
def test_cached_answer_costs_no_request(fake, prompts, nb201, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    first = refine(LLMReasoner(settings(fake.url), cache=cache), prompts, nb201)
    assert first.reply.calls == 1 and len(cache) == 1
    fake.reset_log()
    again = refine(LLMReasoner(settings(fake.url), cache=ResponseCache(tmp_path / "c.sqlite")), prompts, nb201)
    assert fake.chat_requests() == []
    assert again.reply.calls == 0 and again.reply.cached_calls == 1
    assert again.value == first.value
    assert again.reply.attempts[0].startswith("json_schema cache hit")


def test_cache_replays_repairs_and_the_discovered_method(prompts, nb201, tmp_path):
    with FakeOpenAI(mode="json_mode_only") as fake:
        fake.script("unknown_ops", "valid")
        first = refine(LLMReasoner(settings(fake.url), cache=ResponseCache(tmp_path / "c.sqlite")), prompts, nb201)
        assert first.reply.calls == 2 and len(fake.chat_requests()) == 3  # 400, invalid, repaired
        fake.reset_log()
        replay = refine(LLMReasoner(settings(fake.url), cache=ResponseCache(tmp_path / "c.sqlite")), prompts, nb201)
        assert fake.chat_requests() == []
        assert replay.reply.cached_calls == 2 and replay.value == first.value


def test_failed_calls_are_not_cached(fake, prompts, nb201, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    fake.script("error_503", "error_503")
    assert refine(LLMReasoner(settings(fake.url, max_attempts=2), cache=cache), prompts, nb201).value is None
    assert len(cache) == 0
    assert refine(LLMReasoner(settings(fake.url), cache=cache), prompts, nb201).reply.calls == 1


def test_cache_key_covers_the_whole_request():
    base = {"model": "m", "base_url": "u", "method": "json_mode", "messages": [{"role": "human", "content": "x"}]}
    assert request_key(base) == request_key(dict(reversed(list(base.items()))))  # canonical JSON
    for change in ({"model": "m2"}, {"base_url": "v"}, {"method": "text"}, {"messages": []}, {"schema": {}}):
        assert request_key(base | change) != request_key(base)


def test_cache_first_answer_wins_and_missing_file_is_not_created(tmp_path):
    cache = ResponseCache(tmp_path / "sub" / "c.sqlite")
    assert cache.get("k") is None and not (tmp_path / "sub").exists()
    cache.put("k", CachedAnswer(raw="first", method="text"))
    cache.put("k", CachedAnswer(raw="second", method="text"))
    assert cache.get("k").raw == "first"
    assert ResponseCache(tmp_path / "sub" / "c.sqlite").get("k").raw == "first"


def _writer(path: str, worker: int, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        cache.put(f"{worker}-{i}", CachedAnswer(raw={"i": i}, method="json_mode", input_tokens=i))
        cache.get(f"{1 - worker}-{i}")


def test_cache_is_safe_for_concurrent_processes(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 150)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = ResponseCache(path)
    assert len(cache) == 300
    assert cache.get("1-149") == CachedAnswer(raw={"i": 149}, method="json_mode", input_tokens=149)


def test_retry_after_header_forms():
    """Retry-After as seconds or an HTTP date, and OpenAI's retry-after-ms (which wins)."""
    from datetime import datetime, timedelta
    from email.utils import format_datetime
    from types import SimpleNamespace

    import httpx

    from lapt.agents.llm import _retry_after

    def exc(**headers: str) -> SimpleNamespace:
        return SimpleNamespace(response=SimpleNamespace(headers=httpx.Headers(headers)))

    assert _retry_after(exc(**{"Retry-After": "3"})) == 3.0
    assert _retry_after(exc(**{"retry-after-ms": "250", "Retry-After": "3"})) == 0.25
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < _retry_after(exc(**{"Retry-After": when})) <= 30
    assert _retry_after(exc(**{"Retry-After": "soon"})) is None
    assert _retry_after(exc()) is None and _retry_after(None) is None
