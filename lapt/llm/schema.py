"""The JSON schema a chat model is given, in the form OpenAI's strict structured outputs accept.

Why a form of its own: a Pydantic model's default JSON schema is written for validation, and several of
its habits break OpenAI's strict mode (``strict: true``) or cost tokens for nothing: optional fields
with defaults, ``minLength``, a ``$ref`` with a sibling ``description``, a ``title`` on every field.
:func:`llm_json_schema` renders a model the way strict mode wants it (every property required, no
defaults, no string-length or pattern keywords, bare ``$ref``), while the model itself still validates
answers as before (a missing optional field is still accepted from servers that cannot constrain
their output). :func:`strict_problems` checks any schema against those rules; every schema lapt sends
passes it, which a test asserts for every space.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

# Keywords strict mode refuses (string constraints) or that only describe a default.
_DROPPED = ("minLength", "maxLength", "pattern", "format", "default", "title")
# JSON Schema keywords whose values are schemas or maps of schemas (what _walk descends into).
_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


class _StrictSchema(GenerateJsonSchema):
    """Every field required, defaults left out: what strict structured outputs demand."""

    def field_is_required(self, field: Any, total: bool) -> bool:
        return True

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def _clean(node: Any) -> Any:
    """Drop refused keywords everywhere and the siblings of every ``$ref``."""
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        elif key in _DROPPED:
            continue
        else:
            out[key] = _clean(value)
    return out


def _shared_enums(schema: dict[str, Any]) -> dict[str, Any]:
    """Enums used more than once (the op list of every layer) moved to ``$defs`` and referenced: a mask
    schema repeats the same op list on every layer, and the schema is sent with every call."""
    counts: dict[str, int] = {}

    def key(node: Any) -> str | None:
        if isinstance(node, dict) and set(node) <= {"enum", "type"} and "enum" in node:
            return json.dumps(node, sort_keys=True)
        return None

    def count(node: Any) -> None:
        if isinstance(node, dict):
            k = key(node)
            if k is not None:
                counts[k] = counts.get(k, 0) + 1
            for value in node.values():
                count(value)
        elif isinstance(node, list):
            for value in node:
                count(value)

    count(schema)
    names = {k: f"Choice{i + 1}" for i, k in enumerate(k for k, n in counts.items() if n > 1)}
    if not names:
        return schema

    def replace(node: Any) -> Any:
        if isinstance(node, dict):
            k = key(node)
            if k in names:
                return {"$ref": f"#/$defs/{names[k]}"}
            return {name: replace(value) for name, value in node.items()}
        if isinstance(node, list):
            return [replace(value) for value in node]
        return node

    out = replace(schema)
    out["$defs"] = {**out.get("$defs", {}), **{name: json.loads(k) for k, name in names.items()}}
    return dict(out)


@functools.lru_cache(maxsize=256)
def _schema_text(model: type[BaseModel]) -> str:
    schema = _shared_enums(_clean(model.model_json_schema(schema_generator=_StrictSchema)))
    return json.dumps(schema, separators=(",", ":"))


def llm_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The strict-mode JSON schema of ``model`` (a fresh copy: callers may change it)."""
    return dict(json.loads(_schema_text(model)))


def llm_json_schema_text(model: type[BaseModel]) -> str:
    """:func:`llm_json_schema` as compact JSON text (what prompts and token counts use)."""
    return _schema_text(model)


def strict_problems(schema: dict[str, Any]) -> list[str]:
    """Why ``schema`` would be refused by OpenAI's strict structured outputs (empty when it is fine).

    The rules checked: the root is an object; every object lists all its properties as required and
    sets ``additionalProperties: false``; no ``default``, ``minLength``, ``maxLength``, ``pattern`` or
    ``format``; a ``$ref`` stands alone; every ``$ref`` points into ``$defs``.
    """
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append("(root): the root must be an object, not " + str(schema.get("type") or "a combination"))
    defs = schema.get("$defs") or {}

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            extra = sorted(set(node) - {"$ref"})
            if extra:
                problems.append(f"{where}: $ref with sibling keyword(s) {', '.join(extra)}")
            ref = str(node["$ref"])
            if not ref.startswith("#/$defs/") or ref.rsplit("/", 1)[1] not in defs:
                problems.append(f"{where}: $ref {ref} does not point into $defs")
            return
        for key in ("default", "minLength", "maxLength", "pattern", "format"):
            if key in node:
                problems.append(f"{where}: keyword {key} is not allowed")
        types = node.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            props = node.get("properties")
            if not isinstance(props, dict):
                problems.append(f"{where}: an object needs its properties listed")
                props = {}
            if node.get("additionalProperties") is not False:
                problems.append(f"{where}: additionalProperties must be false")
            missing = sorted(set(props) - set(node.get("required") or []))
            if missing:
                problems.append(f"{where}: properties not required: {', '.join(missing)}")
        for key in _SUBSCHEMA:
            if isinstance(node.get(key), dict):
                walk(node[key], f"{where}.{key}")
        for key in _SUBSCHEMA_LISTS:
            for i, sub in enumerate(node.get(key) or []):
                walk(sub, f"{where}.{key}[{i}]")
        for key in _SUBSCHEMA_MAPS:
            for name, sub in (node.get(key) or {}).items():
                walk(sub, f"{where}.{key}.{name}")

    walk(schema, "(root)")
    return problems
