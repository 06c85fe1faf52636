"""Run settings: validated once at the CLI/API boundary, saved with every run, compared on resume."""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lapt.errors import UserError
from lapt.redaction import REDACTED, redact_url

JsonScalar = str | int | float | bool | None
# Request fields lapt sets itself on every call: an --llm-option may not replace them.
RESERVED_OPTIONS = frozenset(
    {"model", "messages", "response_format", "tools", "tool_choice", "functions", "function_call", "stream", "n"}
)
# Options with a known meaning, checked here; any other key is sent as an extra field of the request body.
_NUMBER_OPTIONS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
_INT_OPTIONS = {"max_tokens": 1, "seed": None}
_OPTION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def check_base_url(url: str, origin: str = "--llm-base-url") -> str:
    """``url`` if it is an http(s) URL with a host; UserError (naming ``origin``) otherwise.

    Checked before any work so that a typo fails in one line instead of as a connection error after the
    run has started. The message shows the URL without its password.
    """
    shown = redact_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or " " in url:
        raise UserError(
            f"{origin} {shown!r}: expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1"
        )
    return url


def parse_llm_option(text: str) -> tuple[str, JsonScalar]:
    """``KEY=VALUE`` of ``--llm-option``: VALUE is read as a JSON scalar when it is one, else as a string.

    ``max_completion_tokens`` is accepted as another name of ``max_tokens``. ``null`` removes an option
    lapt would otherwise send (``temperature=null``: the server's default temperature).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--llm-option {text!r}: expected KEY=VALUE (e.g. temperature=0.2, reasoning_effort=low)")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, (list, dict)):
        raise UserError(f"--llm-option {key}: the value must be a number, a string, true, false or null")
    key = "max_tokens" if key == "max_completion_tokens" else key
    return key, value


def check_llm_options(options: dict[str, Any]) -> dict[str, JsonScalar]:
    """The options, checked: known names get their types and ranges, reserved names are refused."""
    out: dict[str, JsonScalar] = {}
    for key, value in options.items():
        if not _OPTION_KEY.match(key):
            raise ValueError(f"option {key!r}: not a valid field name")
        if key in RESERVED_OPTIONS:
            raise ValueError(f"option {key!r}: lapt sets this field itself")
        if isinstance(value, (list, dict)):
            raise ValueError(f"option {key!r}: the value must be a JSON scalar")
        if value is not None and key in _NUMBER_OPTIONS:
            low, high = _NUMBER_OPTIONS[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"option {key}: expected a number in [{low:g}, {high:g}] or null, got {value!r}")
        if value is not None and key in _INT_OPTIONS:
            low_int = _INT_OPTIONS[key]
            if isinstance(value, bool) or not isinstance(value, int) or (low_int is not None and value < low_int):
                floor = f" >= {low_int}" if low_int is not None else ""
                raise ValueError(f"option {key}: expected an integer{floor} or null, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"option {key}: {value!r} is not a finite number")
        out[key] = value
    return out


class LLMConfig(BaseModel):
    """The LLM settings a run records in ``config.json`` and compares on resume. Never the API key.

    ``base_url`` is stored with any password of its user info replaced by ``[redacted]``; a resumed
    run whose URL held one asks for the URL again. ``options`` are the ``--llm-option KEY=VALUE``
    pairs: ``temperature``, ``max_tokens``, ``top_p``, ``seed``, ``reasoning_effort`` and any other field
    the server understands (sent in the request body as given).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, description="The model name the server knows.")
    base_url: str | None = Field(None, description="The server's URL (password redacted); None: the OpenAI API.")
    timeout_s: float = Field(60.0, gt=0, allow_inf_nan=False, description="Per HTTP attempt.")
    max_attempts: int = Field(4, ge=1, description="HTTP attempts per call on transient faults.")
    max_repairs: int = Field(2, ge=0, description="Rounds of 'your answer is invalid because ...'.")
    options: dict[str, JsonScalar] = Field(default_factory=dict, description="Request options (--llm-option).")

    @field_validator("base_url")
    @classmethod
    def _redacted_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            check_base_url(url.replace(REDACTED, "x"), "base_url")  # a recorded URL is already redacted
        except UserError as e:
            raise ValueError(str(e)) from None
        return redact_url(url)

    @field_validator("options")
    @classmethod
    def _known_options(cls, options: dict[str, Any]) -> dict[str, JsonScalar]:
        return check_llm_options(options)

    @property
    def url_was_redacted(self) -> bool:
        """True when the recorded URL lost a password (a resume must be given the URL again)."""
        return self.base_url is not None and REDACTED in self.base_url


class RunSettings(BaseModel):
    """Everything that fixes what a run does. Secrets never live here."""

    model_config = ConfigDict(extra="forbid")

    space: str
    sources: list[str] = Field(default_factory=list, description="Source tasks the learner may see.")
    target: str
    budget: int = Field(20, ge=1)
    seed: int = 0
    strategy: Literal["rea", "random", "local"] = "rea"
    population: int | None = Field(None, ge=1, description="REA population (default: 5 on NB201, 10 on TNB101).")
    tournament: int | None = Field(None, ge=1, description="REA tournament (default: 2 on NB201, 5 on TNB101).")
    adapt: bool = True
    adapt_every: int | None = Field(None, ge=1, description="Evaluations between adaptations (5 NB201, 10 TNB101).")
    max_ops: int | None = Field(None, ge=1, description="Max ops per layer in a refined space (2 NB201, 3 TNB101).")
    top_k: int = Field(50, ge=1, description="Source architectures shown to the learner.")
    top_target: int | None = Field(None, ge=1, description="Target architectures shown to the adapter.")
    batch_size: int = Field(1, ge=1)
    evaluator: Literal["table", "train"] = "table"
    executor: Literal["local", "threads", "processes", "ray"] = "local"
    workers: int | None = Field(None, ge=1, description="Parallel evaluations (threads/processes: <= cores).")
    ray_address: str | None = Field(None, description="An existing Ray cluster (default: a local one on 127.0.0.1).")
    cpus_per_trial: float = Field(1.0, gt=0, description="Ray CPUs reserved per evaluation.")
    gpus_per_trial: float = Field(0.0, ge=0, description="Ray GPUs reserved per evaluation.")
    table: str | None = None
    allow_same_task: bool = False
    reasoner: str = "offline"
    llm: LLMConfig | None = None
    llm_cache: str | None = Field(None, description="SQLite LLM response cache (default: <run dir>/llm_cache.sqlite).")
    prompts_dir: str | None = None
    principles_from: str | None = None
    train: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _no_leakage(self) -> RunSettings:
        if not self.allow_same_task and self.target in self.sources:
            raise ValueError(
                f"source and target are both {self.target!r}: the learner would see the target's data "
                "(pass --allow-same-task to do it on purpose)"
            )
        if self.population is not None and self.tournament is not None and self.tournament > self.population:
            raise ValueError(f"tournament ({self.tournament}) cannot exceed population ({self.population})")
        return self

    def resolved(self, defaults: dict[str, Any]) -> RunSettings:
        """Fill the per-space defaults left as None."""
        updates = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        return self.model_copy(update=updates)


def space_defaults(space_name: str, adapt_every: int, max_ops: int) -> dict[str, Any]:
    """The paper's settings per space: REA 5/2 and top-5 on NB201, 10/5 and top-15 on TNB101."""
    if space_name == "tnb101":
        return {"population": 10, "tournament": 5, "adapt_every": adapt_every, "max_ops": max_ops, "top_target": 15}
    return {"population": 5, "tournament": 2, "adapt_every": adapt_every, "max_ops": max_ops, "top_target": 5}


def parse_settings(**values: Any) -> RunSettings:
    """Validate settings, turning the first problem into a one-line UserError."""
    from pydantic import ValidationError

    try:
        return RunSettings(**values)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise UserError(f"{where + ': ' if where else ''}{msg}") from e
