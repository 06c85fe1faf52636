"""Servers that refuse part of a request, in their own words, through the real client.

The fake server on 127.0.0.1 answers with the refusals of vLLM (xgrammar, outlines, guidance),
llama.cpp, Ollama, LM Studio and OpenAI (strict schemas, ``temperature``, ``max_completion_tokens``);
the reasoner must recognise each, work around it (next method, no strict, no parameter) and remember
what it learned, without retrying a refusal as if it were a fault. Options set with ``--llm-option``
reach the wire as given.
"""

from __future__ import annotations

import pytest
from fake_openai import FakeOpenAI
from pydantic import SecretStr

from lapt.agents.llm import LLMConfigError, LLMReasoner, LLMSettings
from lapt.agents.prompts import load_prompts
from lapt.agents.refiner import make_space_refiner
from lapt.schemas import Principle, PrincipleSet

PRINCIPLES = PrincipleSet(
    version=0, source="test", tasks_seen=["cifar10"], principles=[Principle(statement="Convolutions help.")]
)


@pytest.fixture(scope="module")
def prompts():
    return load_prompts()


def settings(url: str, **kw) -> LLMSettings:
    return LLMSettings(model="fake", base_url=url, **({"timeout_s": 2.0, "backoff_max_s": 0.01} | kw))


def refine(reasoner, prompts, space):
    return make_space_refiner(reasoner, prompts)(space, PRINCIPLES, 2, "cifar100")


@pytest.mark.parametrize(
    "refusal",
    [
        "vllm_xgrammar",
        "vllm_xgrammar_compile",
        "vllm_outlines",
        "vllm_guidance",
        "llama_cpp_schema",
        "llama_cpp_python",
        "generic_json_schema",
    ],
)
def test_json_schema_refusals_fall_back_to_json_mode(prompts, nb201, refusal):
    with FakeOpenAI(refuse={"json_schema": refusal}) as fake:
        reasoner = LLMReasoner(settings(fake.url, max_attempts=3))
        outcome = refine(reasoner, prompts, nb201)
        assert outcome.value is not None, outcome.reply.error
        # One refused request (a refusal is an answer: llama.cpp's 500 is not retried), then JSON mode.
        assert [(r.method, r.status) for r in fake.chat_requests()] == [
            ("json_schema", 400 if not refusal.startswith("llama") else 500),
            ("json_mode", 200),
        ]
        assert "unsupported by the server, trying json_mode" in outcome.reply.attempts[0]
        assert reasoner.method == "json_mode" and outcome.reply.method == "json_mode"


@pytest.mark.parametrize(
    "refusal,method",
    [("ollama_tools", "function_calling"), ("ollama_go", "function_calling"), ("llama_cpp_tools", "function_calling")],
)
def test_tool_refusals_fall_back_to_text(prompts, nb201, refusal, method):
    refuse = {"json_schema": "generic_response_format", "json_mode": "generic_response_format", method: refusal}
    with FakeOpenAI(refuse=refuse) as fake:
        outcome = refine(LLMReasoner(settings(fake.url)), prompts, nb201)
        assert outcome.value is not None, outcome.reply.error
        assert [r.method for r in fake.chat_requests()] == ["json_schema", "json_mode", "function_calling", "text"]
        assert outcome.reply.method == "text" and outcome.reply.extraction == "json"
        assert "follows this JSON schema:" in fake.chat_requests()[-1].text  # text mode: schema in the prompt


def test_lm_studio_refusing_json_object_falls_back_to_tools(prompts, nb201):
    refuse = {"json_schema": "vllm_xgrammar", "json_mode": "lmstudio_json_object"}
    with FakeOpenAI(refuse=refuse) as fake:
        outcome = refine(LLMReasoner(settings(fake.url)), prompts, nb201)
        assert outcome.value is not None
        requests = fake.chat_requests()
        assert [(r.method, r.status) for r in requests] == [
            ("json_schema", 400),
            ("json_mode", 400),
            ("function_calling", 200),
        ]
        assert outcome.reply.extraction == "tool_call"
        tool = requests[-1].body["tools"][0]["function"]
        assert tool["strict"] is True and requests[-1].body["tool_choice"]["function"]["name"] == tool["name"]


def test_schemas_are_sent_strict_and_a_strict_refusal_drops_only_strict(prompts, nb201):
    with FakeOpenAI(refuse={"strict": "openai_strict"}) as fake:
        reasoner = LLMReasoner(settings(fake.url))
        outcome = refine(reasoner, prompts, nb201)
        assert outcome.value is not None
        first, second = fake.chat_requests()
        assert first.body["response_format"]["json_schema"]["strict"] is True and first.status == 400
        assert second.method == "json_schema" and "strict" not in second.body["response_format"]["json_schema"]
        assert "sending without strict" in outcome.reply.attempts[0]
        fake.reset_log()
        assert refine(reasoner, prompts, nb201).value is not None  # remembered: no strict, no refusal
        assert [r.status for r in fake.chat_requests()] == [200]


def test_refused_default_temperature_is_dropped_and_remembered(prompts, nb201):
    with FakeOpenAI(refuse={"temperature": "openai_temperature"}) as fake:
        reasoner = LLMReasoner(settings(fake.url))
        outcome = refine(reasoner, prompts, nb201)
        assert outcome.value is not None
        first, second = fake.chat_requests()
        assert first.body["temperature"] == 0.0 and first.status == 400
        assert "temperature" not in second.body and second.status == 200
        assert "the server refused temperature" in outcome.reply.attempts[0]
        fake.reset_log()
        refine(reasoner, prompts, nb201)
        assert ["temperature" in r.body for r in fake.chat_requests()] == [False]


def test_refused_default_answer_cap_is_dropped(prompts, nb201):
    with FakeOpenAI(refuse={"max_tokens": "openai_max_tokens"}) as fake:
        outcome = refine(LLMReasoner(settings(fake.url)), prompts, nb201)
        assert outcome.value is not None
        first, second = fake.chat_requests()
        assert first.body["max_tokens"] > 0 and "max_tokens" not in second.body


def test_refused_user_option_is_a_config_error(prompts, nb201):
    with FakeOpenAI(refuse={"temperature": "openai_temperature"}) as fake:
        reasoner = LLMReasoner(settings(fake.url, options={"temperature": 0.3}))
        with pytest.raises(LLMConfigError, match=r"refused --llm-option temperature=0.3: Unsupported value") as info:
            refine(reasoner, prompts, nb201)
        assert info.value.kind == "refused_option" and len(fake.chat_requests()) == 1


def test_options_reach_the_wire(prompts, nb201):
    options = {"temperature": 0.6, "max_tokens": 700, "reasoning_effort": "low", "top_k": 20, "seed": 3}
    with FakeOpenAI() as fake:
        refine(LLMReasoner(settings(fake.url, options=options)), prompts, nb201)
        (req,) = fake.chat_requests()
    body = req.body
    assert body["temperature"] == 0.6 and body["max_tokens"] == 700
    assert body["reasoning_effort"] == "low" and body["seed"] == 3 and body["top_k"] == 20  # top_k: extra body field


def test_null_options_remove_what_lapt_sends_by_default(prompts, nb201):
    with FakeOpenAI() as fake:
        refine(LLMReasoner(settings(fake.url, options={"temperature": None, "max_tokens": None})), prompts, nb201)
        (req,) = fake.chat_requests()
    assert "temperature" not in req.body and "max_tokens" not in req.body and "max_completion_tokens" not in req.body


def test_default_answer_cap_keeps_request_and_answer_in_4096_tokens(prompts, nb201):
    with FakeOpenAI() as fake:
        refine(LLMReasoner(settings(fake.url)), prompts, nb201)
        (req,) = fake.chat_requests()
    chars = sum(len(m["content"]) for m in req.messages)
    cap = req.body["max_tokens"]
    # The request is a little over 3 characters per token: the cap leaves room for all of it.
    assert 256 <= cap <= 4096 - chars // 4


def test_context_too_long_is_a_failure_kind_and_not_retried(prompts, nb201):
    with FakeOpenAI(refuse={"any": "context_length"}) as fake:
        outcome = refine(LLMReasoner(settings(fake.url, max_attempts=3)), prompts, nb201)
        assert outcome.value is None and outcome.reply.failure == "context_too_long"
        assert len(fake.chat_requests()) == 1 and "maximum context length" in outcome.reply.error


def test_a_refused_forced_method_is_no_structured_output(prompts, nb201):
    with FakeOpenAI(refuse={"function_calling": "ollama_tools"}) as fake:
        outcome = refine(LLMReasoner(settings(fake.url), method="function_calling"), prompts, nb201)
        assert outcome.value is None and outcome.reply.failure == "no_structured_output"
        assert (
            "no structured-output method works" in outcome.reply.error
            and "does not support tools" in outcome.reply.error
        )
        assert len(fake.chat_requests()) == 1


@pytest.mark.parametrize(
    "status,message,feature",
    [
        (500, "('body', 'response_format', 'type'): Input should be 'text' or 'json_object'", True),
        (503, "grammar could not be built for this request", True),
        (502, "tool_choice is not available on this backend", True),
        (500, "upstream failure 500", False),
        (503, "the model is loading, try again", False),
        (400, "This model's maximum context length is 4096 tokens; the schema and prompt need 5000", False),
    ],
)
def test_a_refusal_is_read_by_meaning_whatever_its_status(status, message, feature):
    import httpx
    import openai

    from lapt.agents.llm_servers import classify_refusal

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(status, request=request, json={"error": {"message": message}})
    exc = openai.APIStatusError(message, response=response, body={"error": {"message": message}})
    refusal = classify_refusal(exc, "json_schema", ["temperature"], strict=False)
    assert (refusal is not None and refusal.kind == "feature") is feature


def test_the_answer_cap_goes_as_max_tokens_except_to_openai():
    """llama-cpp-python ignores max_completion_tokens; only OpenAI's own API gets the new name."""
    from langchain_core.messages import HumanMessage

    for url, field in [
        ("http://127.0.0.1:8080/v1", "max_tokens"),
        ("http://localhost:11434/v1", "max_tokens"),
        ("https://api.openai.com/v1", "max_completion_tokens"),
        (None, "max_completion_tokens"),
    ]:
        reasoner = LLMReasoner(LLMSettings(model="m", base_url=url, api_key=SecretStr("sk-test")))
        payload = reasoner.chat._get_request_payload([HumanMessage("hi")], max_tokens=123)
        assert payload.get(field) == 123 and len({"max_tokens", "max_completion_tokens"} & set(payload)) == 1, url
