"""An OpenAI-compatible chat-completions server on 127.0.0.1 that misbehaves on request.

Tests (and ``perf/llm_chaos.py``) fake the LLM only here, at the wire: the real ``ChatOpenAI`` client
talks HTTP to this server, so every fault reaches the client exactly as a real server's would.

Scripting: :meth:`FakeOpenAI.script` queues one behaviour per request (see :data:`BEHAVIOURS`); when the
queue is empty the server answers "smart" valid answers, except that a share ``fault_rate`` of requests
(chosen by a seeded RNG) get a fault drawn from :data:`CHAOS_FAULTS`. Every request is recorded
(:attr:`FakeOpenAI.requests`) so tests can assert what the model was sent.

Answer styles (behaviours) are the ways real models wrap their JSON: reasoning in ``<think>`` blocks that
contain braces (DeepSeek-R1, Qwen3), only a closing ``</think>`` left by the chat template, a separate
``reasoning_content`` field (vLLM and DeepSeek reasoning parsers), fences, prose with braces before or
after the object, a wrapper object, free strings where names are expected.

Refusals (``refuse``) model what servers do not support, each with the server's own words
(:data:`REFUSALS`): a map from the refused feature (``json_schema``, ``json_mode``, ``function_calling``,
``strict``, ``temperature``, ``max_tokens``) to the refusal sent. ``mode`` keeps two shorthands:
``"json_mode_only"`` refuses ``json_schema``, ``"tools_only"`` refuses any ``response_format``.

The smart answer inspects the request: a schema with ``principles`` (from ``response_format``, the tool's
parameters, or the schema the prompt quotes for JSON mode and text) gets a fixed valid principle list
with one more principle per layer of the schema's layer enum (a complete set for the adapter); a
mask schema gets a valid mask built from its layer names, op enums and ``maxItems``, a different one for
each region the prompt lists as already tried. ``answer`` replaces the smart answer (the token benchmark
answers each request with the offline miner's answer to it).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Faults the seeded chaos mode draws from (401/404 are fatal by design, so they are scripted only).
CHAOS_FAULTS = (
    "rate_limit",
    "rate_limit_retry_after",
    "error_500",
    "error_502",
    "error_503",
    "reset",
    "slow",
    "truncated",
    "non_json_body",
    "prose",
    "length_cut",
    "schema_fail",
    "unknown_ops",
    "empty_ops",
    "too_many_ops",
    "missing_layers",
    "no_valid_arch",
)
# How models wrap a valid answer (all as message content, even when a tool call was asked for).
ANSWER_STYLES = (
    "valid_fenced",  # inside a ```json fence with prose around it
    "fence_plain",  # inside a bare ``` fence
    "think_braces",  # a <think> block with braces in it, then the JSON
    "thinking_tag",  # a <thinking> block, then the JSON and a remark
    "orphan_think",  # reasoning and a closing </think> only (the template opened the block), then the JSON
    "reasoning_content",  # the reasoning in the message's reasoning_content field, the JSON as content
    "reasoning_only",  # empty content: the JSON only at the end of reasoning_content
    "prose_braces_after",  # the JSON, then a sentence with braces
    "prose_braces_before",  # a sentence with braces, then the JSON
    "wrapped",  # {"answer": <the JSON>}
)
BEHAVIOURS = (
    "valid",  # smart answer: content JSON, or a tool call when the request offers a tool
    *ANSWER_STYLES,
    "free_strings",  # principles naming "all edges" and "3x3 conv" instead of the space's names
    "ignore_tools",  # smart answer as content even when a tool call was forced
    "bad_tool_args",  # a tool call whose arguments are not JSON
    "unauthorized",  # 401
    "model_not_found",  # 404
    *CHAOS_FAULTS,
)

PRINCIPLES = {
    "analysis": "Information flows from node 0 to node 3 through every edge; convolutions carry it best.",
    "principles": [
        {
            "statement": "Convolutions on the edges feeding the output node help most.",
            "evidence": "They dominate the best architectures shown.",
            "confidence": 0.8,
            "layer": None,
            "favour": [],
            "avoid": [],
        },
        {
            "statement": "A direct path from the input to the output keeps gradients flowing.",
            "evidence": "Most top architectures have one.",
            "confidence": 0.7,
        },
    ],
}


# What servers answer when they refuse a feature: (status, error body), in their own words.
REFUSALS: dict[str, tuple[int, dict[str, Any]]] = {
    "generic_json_schema": (
        400,
        {
            "message": "response_format type 'json_schema' is not supported, use 'json_object'",
            "type": "invalid_request_error",
        },
    ),
    "generic_response_format": (
        400,
        {"message": "'response_format' is not supported by this server", "type": "invalid_request_error"},
    ),
    "vllm_xgrammar": (
        400,
        {
            "message": "The provided JSON schema contains features not supported by xgrammar.",
            "type": "BadRequestError",
            "code": 400,
        },
    ),
    "vllm_xgrammar_compile": (
        400,
        {"message": "Failed to transform json schema into a grammar: unsupported keyword", "type": "BadRequestError"},
    ),
    "vllm_outlines": (
        400,
        {"message": "Failed to transform json schema into a regex: unsupported feature", "type": "BadRequestError"},
    ),
    "vllm_guidance": (
        400,
        {"message": "Grammar error: Unknown format: uri in the schema", "type": "BadRequestError"},
    ),
    "llama_cpp_schema": (
        500,
        {
            "code": 500,
            "message": 'JSON schema conversion failed:\nUnrecognized schema: {"maxItems":2}',
            "type": "server_error",
        },
    ),
    "llama_cpp_tools": (
        500,
        {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"},
    ),
    # llama-cpp-python's server: its request model refuses the type, and the error comes back as a 500.
    "llama_cpp_python": (
        500,
        {
            "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input "
            "should be 'text' or 'json_object'\", 'input': 'json_schema', 'ctx': {'expected': \"'text' or "
            "'json_object'\"}}]",
            "type": "internal_server_error",
        },
    ),
    "ollama_tools": (
        400,
        {"message": "registry.ollama.ai/library/gemma3:4b does not support tools", "type": "api_error"},
    ),
    "ollama_go": (
        400,
        {
            "message": "json: cannot unmarshal array into Go struct field ChatRequest.tools.function.parameters"
            ".properties.type of type string",
            "type": "invalid_request_error",
        },
    ),
    "lmstudio_json_object": (400, {"message": "'response_format.type' must be 'json_schema' or 'text'"}),
    "openai_strict": (
        400,
        {
            "message": "Invalid schema for response_format 'X': In context=(), 'required' is required to be "
            "supplied and to be an array including every key in properties. Missing 'rationale'.",
            "type": "invalid_request_error",
            "param": "response_format",
            "code": None,
        },
    ),
    "openai_temperature": (
        400,
        {
            "message": "Unsupported value: 'temperature' does not support 0.0 with this model. Only the default "
            "(1) value is supported.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        },
    ),
    "openai_max_tokens": (
        400,
        {
            "message": "Unsupported parameter: 'max_completion_tokens' is not supported with this model.",
            "type": "invalid_request_error",
            "param": "max_completion_tokens",
            "code": "unsupported_parameter",
        },
    ),
    "context_length": (
        400,
        {
            "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
            "type": "BadRequestError",
        },
    ),
}
REFUSABLE = ("json_schema", "json_mode", "function_calling", "strict", "temperature", "max_tokens", "any")
SCHEMA_MARKER = "follows this JSON schema:\n"


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    body: dict[str, Any]
    behaviour: str
    status: int
    authorization: bool
    at: float = field(default_factory=time.monotonic)
    answer_text: str | None = None  # what the server answered (content or tool arguments)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def text(self) -> str:
        """All message contents joined (what the model was told)."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)

    @property
    def method(self) -> str:
        """Which structured-output method the client used."""
        fmt = self.body.get("response_format") or {}
        if fmt.get("type") in ("json_schema", "json_object"):
            return "json_schema" if fmt["type"] == "json_schema" else "json_mode"
        return "function_calling" if self.body.get("tools") else "text"


# -- smart answers -------------------------------------------------------------------------------
def request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the client asked for: response_format, forced tool, or the prompt's Schema line."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return dict(fmt["json_schema"]["schema"])
    for tool in body.get("tools") or []:
        return dict(tool["function"]["parameters"])
    for msg in body.get("messages") or []:
        content = str(msg.get("content") or "")
        if SCHEMA_MARKER in content:
            return dict(json.loads(content.rsplit(SCHEMA_MARKER, 1)[1].strip().splitlines()[0]))
    return None


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return dict(schema.get("$defs", {})[ref.rsplit("/", 1)[1]])
    return node


def _enum(schema: dict[str, Any], array: dict[str, Any]) -> list[Any]:
    items = _resolve(schema, array.get("items", {}))
    if "enum" in items:
        return list(items["enum"])
    if "const" in items:
        return [items["const"]]
    return []


def mask_layers(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{layer: {"ops": [...], "max": k, "inputs": [...] | None}}`` from a mask schema."""
    out: dict[str, dict[str, Any]] = {}
    for name, prop in schema.get("properties", {}).items():
        if name == "rationale":
            continue
        node = _resolve(schema, prop)
        if node.get("type") == "object":
            ops_field = node["properties"]["ops"]
            out[name] = {
                "ops": _enum(schema, ops_field),
                "max": ops_field.get("maxItems"),
                "inputs": _enum(schema, node["properties"]["inputs"]),
            }
        else:
            out[name] = {"ops": _enum(schema, node), "max": node.get("maxItems"), "inputs": None}
    return out


def _preferred(op: str) -> int:
    """Where a model that read the data would put ``op``: 3x3 convolutions, then skips, then the rest."""
    return 0 if "conv_3x3" in op or op.startswith("conv3") else 1 if op.startswith("skip") else 2


def valid_mask(schema: dict[str, Any], shift: int = 0) -> dict[str, Any]:
    """A valid mask: ``maxItems`` ops of every layer other than ``none``, 3x3 convolutions and skips first
    (a region that keeps some of the best source cells), starting at the ``shift``-th."""
    answer: dict[str, Any] = {}
    for name, layer in mask_layers(schema).items():
        ops = sorted((op for op in layer["ops"] if op != "none"), key=_preferred) or layer["ops"][:1]
        k = shift % len(ops)
        ops = (ops[k:] + ops[:k])[: layer["max"] or 2]
        answer[name] = {"ops": ops, "inputs": layer["inputs"][:2]} if layer["inputs"] is not None else ops
    answer["rationale"] = "Convolutions everywhere, as the principles favour."
    return answer


def wants_mask(body: dict[str, Any]) -> bool:
    """Is the request asking for a mask (refiner) rather than principles (learner, adapter)?"""
    schema = request_schema(body)
    if schema is not None:
        return "principles" not in schema.get("properties", {})
    return "refined search space" in "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])


def _tried_regions(body: dict[str, Any]) -> int:
    """How many regions the request says were tried, plus repair rounds that refused a tried one."""
    text = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])
    listed = 0
    if "Regions already tried" in text:
        block = text.split("Regions already tried", 1)[1].split("\n## ", 1)[0]
        listed = sum(1 for line in block.splitlines() if line[:1].isdigit())
    return listed + text.count("already tried; propose")


def smart_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A valid answer for whichever schema the request asks for (a region not tried yet, for masks)."""
    if wants_mask(body):
        schema = request_schema(body)
        if schema is None:
            raise ValueError("a mask request without a schema")
        return valid_mask(schema, _tried_regions(body))
    answer = json.loads(json.dumps(PRINCIPLES))
    for layer in principle_layers(request_schema(body) or {}):  # one principle per layer: a complete set
        answer["principles"].append(
            {"statement": f"Keep {layer} as the best cells have it.", "evidence": "", "confidence": 0.6, "layer": layer}
        )
    return answer


def principle_layers(schema: dict[str, Any]) -> list[str]:
    """The layer names a principle schema allows (its ``layer`` enum), in order."""
    for node in [schema, *(schema.get("$defs") or {}).values()]:
        layer = (node.get("properties") or {}).get("layer")
        if isinstance(layer, dict):
            for option in layer.get("anyOf", [layer]):
                option = _resolve(schema, option)
                if "enum" in option:
                    return [str(v) for v in option["enum"]]
    return []


def styled(content: str, style: str) -> tuple[str, str | None]:
    """``content`` (a JSON answer) written in an answer style: (message content, reasoning_content)."""
    thinking = 'The top cells share {edge_0_3: skip_connect}; maybe {"layer": "all edges"} is too vague.'
    if style == "valid_fenced":
        return f"Here is my answer.\n```json\n{content}\n```\nI hope it helps.", None
    if style == "fence_plain":
        return f"```\n{content}\n```", None
    if style == "think_braces":
        return f'<think>\n{thinking}\nDraft: {{"principles": []}} is empty, no.\n</think>\n\n{content}', None
    if style == "thinking_tag":
        return f"<thinking>{thinking}</thinking>\n{content}\nDone.", None
    if style == "orphan_think":
        return f"{thinking}\n</think>\n{content}", None
    if style == "reasoning_content":
        return content, thinking
    if style == "reasoning_only":
        return "", f"{thinking}\nFinal answer:\n{content}"
    if style == "prose_braces_after":
        return f'{content}\nNote: I kept {{edge_0_1}} and {{"ops": "as before"}} unchanged.', None
    if style == "prose_braces_before":
        return f"Using the template {{analysis, principles}} you gave, my answer is: {content}", None
    if style == "wrapped":
        return json.dumps({"answer": json.loads(content)}), None
    raise ValueError(f"unknown answer style {style!r}")


def faulty_answer(body: dict[str, Any], fault: str) -> dict[str, Any]:
    """A JSON answer with the content fault ``fault`` (masks) or a schema violation (principles)."""
    if fault == "free_strings":
        free = {"statement": "Convolutions help everywhere.", "evidence": "", "confidence": 0.8}
        return {"analysis": "x", "principles": [{**free, "layer": "all edges", "favour": ["3x3 conv"], "avoid": []}]}
    if not wants_mask(body):
        if fault == "missing_layers":
            return {"analysis": "forgot the principles"}
        if fault == "empty_ops":
            return {"analysis": "", "principles": []}
        return {"analysis": "x", "principles": [{"statement": "ok", "confidence": 7}], "extra": 1}
    schema = request_schema(body) or {}
    answer = valid_mask(schema)
    layers = mask_layers(schema)
    first = next(iter(layers))
    cell = all(layer["inputs"] is None for layer in layers.values())

    def set_ops(name: str, ops: list[Any]) -> None:
        if layers[name]["inputs"] is None:
            answer[name] = ops
        else:
            answer[name] = {"ops": ops, "inputs": layers[name]["inputs"][:2]}

    if fault == "unknown_ops":
        set_ops(first, ["conv_7x7"])
    elif fault == "empty_ops":
        set_ops(first, [])
    elif fault == "too_many_ops":
        widest = max(layers, key=lambda n: len(layers[n]["ops"]))
        set_ops(widest, list(layers[widest]["ops"]) + ["conv_7x7"] * (1 + (layers[widest]["max"] or 0)))
    elif fault == "missing_layers":
        del answer[first]
    elif fault == "no_valid_arch" and cell and all("none" in layer["ops"] for layer in layers.values()):
        for name in layers:
            set_ops(name, ["none"])
    else:  # schema_fail (and no_valid_arch where "none" cannot cut every path)
        answer["unexpected"] = True
        set_ops(first, "not a list")  # type: ignore[arg-type]
    return answer


# -- the server ----------------------------------------------------------------------------------
def _error(status: int, message: str, kind: str, code: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _refusal(name: str) -> tuple[int, dict[str, Any]]:
    status, error = REFUSALS[name]
    return status, {"error": dict(error)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def setup(self) -> None:
        super().setup()
        self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        self.server.open_connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            data = {"object": "list", "data": [{"id": m, "object": "model"} for m in self.server.fake.models]}
            self._send(200, data)
        else:
            self._send(*_error(404, f"no route {self.path}", "invalid_request_error"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        self.server.fake.handle(self, body)

    def _send(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOpenAI
    open_connections: set[socket.socket]


class FakeOpenAI:
    """The fake server; use as a context manager or call :meth:`start` / :meth:`stop`.

    Args:
        mode: ``"full"`` (json_schema, json mode and tools), ``"json_mode_only"`` or ``"tools_only"``.
        refuse: feature -> refusal name (:data:`REFUSALS`); features: ``json_schema``, ``json_mode``,
            ``function_calling``, ``strict`` (a request asking for strict output), ``temperature`` and
            ``max_tokens`` (a request carrying them), ``any`` (every request: context length).
        answer: ``answer(body) -> dict | None`` replaces the smart answer (None: the smart one).
        fault_rate: share of unscripted requests that get a random fault from ``faults``.
        seed: seeds the fault RNG, so a chaos run is reproducible for a given request order.
        faults: the faults chaos mode draws from.
        models: model names the server knows; any other gets a 404 ``model_not_found``.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get a 401.
        slow_s: how long the ``slow`` fault waits before answering (set it past the client timeout).
        retry_after_s: the ``Retry-After`` value of ``rate_limit_retry_after``.
    """

    def __init__(
        self,
        mode: str = "full",
        fault_rate: float = 0.0,
        seed: int = 0,
        faults: tuple[str, ...] = CHAOS_FAULTS,
        models: tuple[str, ...] = ("fake",),
        api_key: str | None = None,
        slow_s: float = 3.0,
        retry_after_s: float = 1.0,
        refuse: dict[str, str] | None = None,
        answer: Any = None,
    ):
        if mode not in ("full", "json_mode_only", "tools_only"):
            raise ValueError(f"unknown mode {mode!r}")
        shorthand = {
            "full": {},
            "json_mode_only": {"json_schema": "generic_json_schema"},
            "tools_only": {"json_schema": "generic_response_format", "json_mode": "generic_response_format"},
        }[mode]
        self.refuse = {**shorthand, **(refuse or {})}
        bad = sorted(set(self.refuse) - set(REFUSABLE)) + sorted(set(self.refuse.values()) - set(REFUSALS))
        if bad:
            raise ValueError(f"unknown refusal feature(s) or name(s): {bad}")
        self.answer = answer
        unknown = sorted(set(faults) - set(BEHAVIOURS))
        if unknown:
            raise ValueError(f"unknown faults {unknown}")
        self.mode = mode
        self.fault_rate = fault_rate
        self.faults = faults
        self.models = models
        self.api_key = api_key
        self.slow_s = slow_s
        self.retry_after_s = retry_after_s
        self.requests: list[Recorded] = []
        self._rng = random.Random(seed)
        self._queue: list[str] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._count = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._server.open_connections = set()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop kept-alive connections too (a server that went away)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            for conn in list(self._server.open_connections):
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give the client (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ------------------------------------------------------------------------------
    def script(self, *behaviours: str) -> None:
        """Queue behaviours, one per coming request (after the queue: smart answers and chaos)."""
        unknown = sorted(set(behaviours) - set(BEHAVIOURS))
        if unknown:
            raise ValueError(f"unknown behaviours {unknown}")
        with self._lock:
            self._queue.extend(behaviours)

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def chat_requests(self) -> list[Recorded]:
        """The recorded chat-completion requests that reached the model (not rejected up front)."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- handling -------------------------------------------------------------------------------
    def _capability_error(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The refusal this request earns, if it uses a feature the server refuses."""
        fmt = body.get("response_format") or {}
        used = []
        if "any" in self.refuse:
            used.append("any")
        if "temperature" in body:
            used.append("temperature")
        if "max_completion_tokens" in body or "max_tokens" in body:
            used.append("max_tokens")
        strict = bool((fmt.get("json_schema") or {}).get("strict")) or any(
            t.get("function", {}).get("strict") for t in body.get("tools") or []
        )
        if strict:
            used.append("strict")
        if fmt.get("type") == "json_schema":
            used.append("json_schema")
        elif fmt.get("type") == "json_object":
            used.append("json_mode")
        if body.get("tools"):
            used.append("function_calling")
        for feature in used:
            if feature in self.refuse:
                return _refusal(self.refuse[feature])
        return None

    def handle(self, h: _Handler, body: dict[str, Any]) -> None:
        """Answer one request according to the script, the mode and the chaos settings."""
        with self._lock:
            self._count += 1
            auth = h.headers.get("Authorization", "")
            if not h.path.endswith("/chat/completions"):
                rejected: tuple[int, dict[str, Any]] | None = _error(404, f"no route {h.path}", "invalid_request_error")
                behaviour = "no_route"
            elif self.api_key is not None and auth != f"Bearer {self.api_key}":
                # Echo the key like a careless proxy would: the client must not repeat it anywhere.
                given = auth.removeprefix("Bearer ")
                rejected = _error(
                    401, f"Incorrect API key provided: {given}.", "invalid_request_error", "invalid_api_key"
                )
                behaviour = "bad_key"
            elif body.get("model") not in self.models:
                rejected = _error(
                    404, f"The model `{body.get('model')}` does not exist.", "invalid_request_error", "model_not_found"
                )
                behaviour = "unknown_model"
            else:
                rejected = self._capability_error(body)
                behaviour = "unsupported" if rejected else ""
            if not behaviour:
                if self._queue:
                    behaviour = self._queue.pop(0)
                elif self.fault_rate and self._rng.random() < self.fault_rate:
                    behaviour = self._rng.choice(self.faults)
                else:
                    behaviour = "valid"
            record = Recorded(h.path, body, behaviour, 200, bool(auth))
            self.requests.append(record)
        if rejected is not None:
            record.status = rejected[0]
            h._send(*rejected)
            return
        record.status = self._respond(h, body, behaviour, record)

    def _respond(self, h: _Handler, body: dict[str, Any], behaviour: str, record: Recorded) -> int:
        if behaviour == "unauthorized":
            h._send(*_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
            return 401
        if behaviour == "model_not_found":
            h._send(*_error(404, "The model does not exist.", "invalid_request_error", "model_not_found"))
            return 404
        if behaviour in ("rate_limit", "rate_limit_retry_after"):
            headers = {"Retry-After": f"{self.retry_after_s:g}"} if behaviour == "rate_limit_retry_after" else None
            status, data = _error(429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded")
            h._send(status, data, headers)
            return 429
        if behaviour.startswith("error_"):
            status = int(behaviour.split("_")[1])
            h._send(*_error(status, f"upstream failure {status}", "server_error"))
            return status
        if behaviour == "reset":
            h.close_connection = True
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            h.connection.close()
            return 0
        if behaviour == "slow":
            time.sleep(self.slow_s)
            behaviour = "valid"
        if behaviour == "non_json_body":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(page)))
            h.end_headers()
            h.wfile.write(page)
            return 200
        data = self._completion(body, behaviour)
        message = data["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        record.answer_text = calls[0]["function"]["arguments"] if calls else message.get("content")
        if behaviour == "truncated":
            payload = json.dumps(data).encode()
            h.close_connection = True
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload[: len(payload) // 2])
            h.wfile.flush()
            return 200
        try:
            h._send(200, data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the slow fault)
            return 0
        return 200

    def _completion(self, body: dict[str, Any], behaviour: str) -> dict[str, Any]:
        tools = body.get("tools") or []
        finish = "stop"
        tool_args: str | None = None
        reasoning: str | None = None
        if behaviour in ("valid", "truncated", "ignore_tools", *ANSWER_STYLES):
            custom = self.answer(body) if self.answer is not None else None
            content = json.dumps(custom if custom is not None else smart_answer(body))
            if behaviour in ANSWER_STYLES:
                content, reasoning = styled(content, behaviour)
        elif behaviour == "bad_tool_args":
            content = json.dumps(smart_answer(body))[:-5] + "'''"
        elif behaviour == "prose":
            content = "Sure! The best architectures use convolutions, so I would keep them everywhere."
        elif behaviour == "length_cut":
            content, finish = json.dumps(smart_answer(body))[:40], "length"
        else:
            content = json.dumps(faulty_answer(body, behaviour))
        if tools and behaviour not in ("ignore_tools", "prose", *ANSWER_STYLES):
            tool_args, content_out = content, None
            finish = "tool_calls" if finish == "stop" else finish
        else:
            content_out = content
        message: dict[str, Any] = {"role": "assistant", "content": content_out}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        if tool_args is not None:
            message["tool_calls"] = [
                {
                    "id": f"call_{self._count}",
                    "type": "function",
                    "function": {"name": tools[0]["function"]["name"], "arguments": tool_args},
                }
            ]
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or [])
        completion_tokens = max(1, (len(content) + len(reasoning or "")) // 4)
        return {
            "id": f"chatcmpl-fake-{self._count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
