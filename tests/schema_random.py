"""Answers drawn at random from the JSON schema each request sends: a correct server, a nonsense model.

A weak model's answer often satisfies the schema and means nothing: a principle that favours and avoids
the same op, a region of random ops. :class:`SchemaDraws` is the ``answer`` of a
:class:`~fake_openai.FakeOpenAI`: it reads the schema of the request (``response_format`` json_schema,
the first tool's parameters, or the schema quoted in the prompt for JSON mode and text) and answers
with values drawn from it, seeded, so every run of a test sees the same answers. The server's answer
styles (plain, fenced, think block, reasoning field) wrap it as real servers do.
"""

from __future__ import annotations

import random
from typing import Any

from fake_openai import FakeOpenAI, request_schema

STYLES = ("valid", "valid_fenced", "think_braces", "reasoning_content")
WORDS = ("conv", "skip", "pool", "edge", "best", "keep", "layer", "cell", "deep", "wide")


class SchemaDraws:
    """Draws one JSON value per request from the request's schema (``rng`` seeded once per server)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def answer(self, body: dict[str, Any]) -> Any:
        schema = request_schema(body)
        return None if schema is None else self.draw(schema, schema)

    def draw(self, root: dict[str, Any], node: dict[str, Any]) -> Any:
        rng = self.rng
        if "$ref" in node:
            return self.draw(root, root["$defs"][node["$ref"].rsplit("/", 1)[1]])
        for key in ("anyOf", "oneOf"):
            if key in node:
                return self.draw(root, rng.choice(node[key]))
        if "enum" in node:
            return rng.choice(node["enum"])
        if "const" in node:
            return node["const"]
        kind = node.get("type")
        if isinstance(kind, list):
            kind = rng.choice(kind)
        if kind == "object":
            props = node.get("properties", {})
            required = set(node.get("required", props))
            return {k: self.draw(root, v) for k, v in props.items() if k in required or rng.random() < 0.5}
        if kind == "array":
            low = int(node.get("minItems", 0))
            high = int(node.get("maxItems", low + 4))
            items = node.get("items", {})
            return [self.draw(root, items) for _ in range(rng.randint(low, max(low, high)))]
        if kind == "string":
            return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))
        if kind in ("number", "integer"):
            low = float(node.get("minimum", 0.0))
            high = float(node.get("maximum", low + 1.0))
            value = rng.uniform(low, high)
            return round(value) if kind == "integer" else value
        if kind == "boolean":
            return rng.random() < 0.5
        return None


def schema_random_server(seed: int, **kw: Any) -> FakeOpenAI:
    """A fake server answering every request from its schema, in one of :data:`STYLES` drawn per request."""
    return FakeOpenAI(answer=SchemaDraws(seed).answer, fault_rate=1.0, faults=STYLES, seed=seed, **kw)
