"""Run settings: validated once at the CLI/API boundary, saved with every run, compared on resume.

Every number has a range, because a value that passes here is carried for hours: a seed beyond 64
bits crashed the checkpoint serialiser mid-run, a budget of 10^12 was accepted, a NaN learning rate
failed every trial one by one. The bounds below are argued where they are declared.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lapt.errors import UserError
from lapt.llm.redaction import REDACTED, redact_url
from lapt.spaces import SearchSpace, get_space
from lapt.tables.registry import evaluation_table, table_for

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


_SECRET_WORDS = ("key", "token", "secret", "password", "passwd")


def is_secret_option(name: str) -> bool:
    """True for an ``--llm-option`` whose name says it holds a credential (``api_key``, ``auth_token``,
    ``client_secret``, ``password``): its value is never recorded in a run directory.

    Matched on the words of the name, so ``max_tokens`` (a count, not a token) is not one.
    """
    return any(part.endswith(word) for part in re.split(r"[_\-.]", name.lower()) for word in _SECRET_WORDS)


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
        checked = check_llm_options(options)
        return {k: REDACTED if v is not None and is_secret_option(k) else v for k, v in checked.items()}

    @property
    def redacted_options(self) -> list[str]:
        """Options recorded as ``[redacted]`` (secrets): a resume must be given them again."""
        return sorted(k for k, v in self.options.items() if v == REDACTED and is_secret_option(k))

    @property
    def url_was_redacted(self) -> bool:
        """True when the recorded URL lost a password (a resume must be given the URL again)."""
        return self.base_url is not None and REDACTED in self.base_url


MAX_SEED = 2**63 - 1
"""Seeds are stored in every checkpoint (msgpack) and in SQLite, both signed 64-bit integers at most."""
MAX_TRAIN_SEED = 2**32 - 1
"""The training seed also seeds NumPy's global generator, which takes 32-bit seeds only."""
MAX_BUDGET = 100_000
"""A run keeps every trial in memory and in ``trials.jsonl`` (about 300 bytes each) and its trace grows
by a few KB per evaluation: 100,000 evaluations is already gigabytes of record. The paper's budgets are
50-200; the largest shipped table has 15,625 architectures; a larger budget is a typo."""
MAX_POPULATION = 100_000
"""An REA population beyond the budget cap can never fill."""
MAX_TOP_K = 100_000
"""Architectures shown to the learner; beyond this the prompt is larger than any model's context."""
MAX_BATCH = 1_024
"""Candidates evaluated per step: each is a thread of the evaluation tool node at once."""
MAX_WORKERS = 1_024
"""Parallel evaluations; the local executors are further held to the machine's cores."""
MAX_EVAL_TIMEOUT_S = 30 * 24 * 3600.0
"""A month: longer than any training of one architecture; a larger limit is a typo for none."""
MAX_OPS = 1_000
"""Ops allowed per layer in a refined space: more than any space declares."""
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d{1,3})$")
_BUILTIN_SPACES = ("nb201", "tnb101", "darts")


def resolve_space_ref(name: str) -> str:
    """The space a run uses, as a reference that means the same from any working directory.

    Built-in names stay as they are; a space file (``file:PATH`` or a name ending in ``.toml``) becomes
    ``file:`` and its absolute, symlink-free path, so that a resume from another folder neither fails
    nor, worse, loads another file of the same relative name.
    """
    if name.startswith("file:"):
        path = name[len("file:") :]
    elif name.endswith(".toml") and name not in _BUILTIN_SPACES:
        path = name
    else:
        return name
    return f"file:{Path(path).expanduser().resolve()}"


def absolute_path(path: str | None) -> str | None:
    """``path`` made absolute against the working directory of now (None stays None).

    Every path a run is given is resolved once, when its settings are made: user code may call
    ``os.chdir()`` in the middle of a run, and a relative path read after that would name another file.
    Symbolic links are kept (only ``..`` and the working directory are resolved).
    """
    if path is None:
        return None
    return os.path.abspath(os.path.expanduser(path))


class TrainSettings(BaseModel):
    """How every architecture of a ``--evaluator train`` run is trained (the worker's request fields).

    ``net`` overrides the size of the space's network; which keys a space's network builder accepts,
    and of which type, is declared by the builders (``lapt.tools.net_params``) and checked against the
    run's space before any work starts.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        default="mnist5k", min_length=1, max_length=4096, description="mnist5k, cifar10, cifar100 or npz:PATH"
    )
    data_dir: str | None = Field(
        default=None, min_length=1, max_length=4096, description="Folder of the CIFAR batches."
    )
    epochs: int = Field(default=1, ge=1, le=10_000, description="Training epochs (the paper's NB201 uses 200).")
    batch_size: int = Field(default=64, ge=1, le=65_536, description="Images per training step.")
    lr: float = Field(
        default=0.1, gt=0, le=100, allow_inf_nan=False, description="Peak learning rate (cosine schedule)."
    )
    weight_decay: float = Field(default=5e-4, ge=0, le=1, allow_inf_nan=False, description="L2 penalty.")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)
    seed: int = Field(default=0, ge=0, le=MAX_TRAIN_SEED, description="Training seed (the data split is fixed).")
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N.")
    net: dict[str, int | float | bool | str] = Field(default_factory=dict, description="Network size overrides.")
    max_train_images: int | None = Field(default=None, ge=1, le=100_000_000, description="Cap on training images.")
    in_process: bool = Field(default=True, description="Train in this process (False: a worker subprocess per trial).")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"unknown device {value!r} (use auto, cpu, cuda or cuda:N)")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: str | None) -> str | None:
        return absolute_path(value)

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if value.startswith("npz:") and len(value) > 4:
            return f"npz:{absolute_path(value[4:])}"
        return value


class RunSettings(BaseModel):
    """Everything that fixes what a run does. Secrets never live here."""

    model_config = ConfigDict(extra="forbid")

    space: str = Field(min_length=1, description="A built-in name, or file:ABSOLUTE_PATH of a space file.")
    sources: list[str] = Field(default_factory=list, description="Source tasks the learner may see.")
    target: str
    budget: int = Field(default=20, ge=1, le=MAX_BUDGET)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    strategy: Literal["rea", "random", "local"] = "rea"
    # None below means the space's search defaults (SearchSpace.search_defaults: NB201 5/2/5/2/5, TNB101
    # 10/5/10/3/15, a space file's [search]).
    population: int | None = Field(
        default=None, ge=1, le=MAX_POPULATION, description="REA population (default: the space's)."
    )
    tournament: int | None = Field(
        default=None, ge=1, le=MAX_POPULATION, description="REA tournament (default: the space's)."
    )
    adapt: bool = True
    escape: bool = Field(
        True,
        description="Let the search step outside the refined region with an adaptive probability, weigh ops by "
        "the target evidence and check a standing incumbent's neighbours (lapt.strategies.escape).",
    )
    adapt_every: int | None = Field(
        default=None, ge=1, le=MAX_BUDGET, description="Evaluations between adaptations (default: the space's)."
    )
    max_ops: int | None = Field(
        default=None, ge=1, le=MAX_OPS, description="Max ops per layer in a refined space (default: the space's)."
    )
    top_k: int = Field(default=50, ge=1, le=MAX_TOP_K, description="Source architectures shown to the learner.")
    top_target: int | None = Field(
        default=None, ge=1, le=MAX_TOP_K, description="Target architectures shown to the adapter (the space's)."
    )
    batch_size: int = Field(default=1, ge=1, le=MAX_BATCH)
    evaluator: str | None = Field(
        default=None,
        pattern=r"^(table|train|python(:[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)?)$",
        description="table, train, python:MODULE:FUNCTION, or python (the function the space file names); "
        "None: the space's table, else the evaluator its file names (see lapt.runs.evaluator_choice).",
    )
    evaluator_path: str | None = Field(default=None, description="Folder a python evaluator's module is imported from.")
    executor: Literal["local", "threads", "processes", "ray"] = "local"
    workers: int | None = Field(
        default=None, ge=1, le=MAX_WORKERS, description="Parallel evaluations (threads/processes: <= cores)."
    )
    ray_address: str | None = Field(
        default=None, description="An existing Ray cluster (default: a local one on 127.0.0.1)."
    )
    cpus_per_trial: float = Field(
        default=1.0, gt=0, le=1_024, allow_inf_nan=False, description="Ray CPUs per evaluation."
    )
    gpus_per_trial: float = Field(default=0.0, ge=0, le=64, allow_inf_nan=False, description="Ray GPUs per evaluation.")
    eval_timeout: float | None = Field(
        default=None,
        gt=0,
        le=MAX_EVAL_TIMEOUT_S,
        allow_inf_nan=False,
        description="Seconds one evaluation may run; past them it fails with that reason (None: no limit).",
    )
    table: str | None = None
    allow_same_task: bool = False
    reasoner: str = "offline"
    llm: LLMConfig | None = None
    llm_cache: str | None = Field(
        default=None, description="SQLite LLM response cache (default: <run dir>/llm_cache.sqlite)."
    )
    prompts_dir: str | None = None
    principles_from: str | None = None
    train: TrainSettings | None = Field(
        default=None, description="How architectures are trained (--evaluator train only)."
    )
    on_agent_failure: Literal["fallback", "stop", "continue"] = Field(
        default="fallback",
        description="When a model's learner or refiner gives nothing usable: use the offline miner's principles "
        "and the offline refiner's region (fallback), stop the run, or search without transfer (continue).",
    )

    @field_validator("space")
    @classmethod
    def _space(cls, value: str) -> str:
        return resolve_space_ref(value)

    @field_validator("prompts_dir", "llm_cache")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return absolute_path(value)

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for task in value:
            if task in seen:
                raise ValueError(f"source task {task!r} is given twice")
            seen.add(task)
        return value

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

    @model_validator(mode="after")
    def _options_of_their_mode(self) -> RunSettings:
        """Options that only mean something with another option are refused, not silently ignored."""
        if self.evaluator == "train" and self.train is None:
            self.train = TrainSettings()
        if self.evaluator != "train" and self.train is not None:
            raise ValueError("training settings are given but the evaluator is the table: use --evaluator train")
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError(f"--ray-address is given but the executor is {self.executor!r}: add --executor ray")
        for name in ("cpus_per_trial", "gpus_per_trial"):  # a non-default value is one somebody chose
            if getattr(self, name) != type(self).model_fields[name].default and self.executor != "ray":
                option = "--" + name.replace("_", "-")
                raise ValueError(f"{option} is given but the executor is {self.executor!r}: add --executor ray")
        if self.workers is not None and self.executor == "local":
            raise ValueError(
                "--workers is given but the local executor runs one evaluation at a time: "
                "add --executor threads, processes or ray"
            )
        return self

    def resolved(self, defaults: dict[str, Any]) -> RunSettings:
        """Fill the per-space defaults left as None."""
        updates = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        return self.model_copy(update=updates)


def space_defaults(space: SearchSpace) -> dict[str, Any]:
    """The settings a space owns (the paper's per space, or a space file's ``[search]``) as settings fields."""
    return space.search_defaults().as_settings()


def resolve_settings(**values: Any) -> tuple[RunSettings, SearchSpace]:
    """Validate settings, fill the per-space defaults and check every task name; UserError on any problem.

    The source tasks must be in the table the learner reads, the target in the table the run is
    evaluated with (for the table evaluator), before anything else happens.
    """
    if values.get("adapt") is False and values.get("adapt_every") is not None:
        raise UserError("--no-adapt contradicts --adapt-every: a run that never adapts has no adaptation interval")
    settings = parse_settings(**values)
    space = get_space(settings.space)
    settings = settings.resolved(space_defaults(space))
    if settings.evaluator_path is None or settings.evaluator is None:
        from lapt.runs.evaluator_choice import choose_evaluator

        evaluator, path = choose_evaluator(space, settings.evaluator)
        settings = settings.model_copy(update={"evaluator": evaluator, "evaluator_path": path})
    if settings.tournament and settings.population and settings.tournament > settings.population:
        raise UserError(
            f"tournament ({settings.tournament}) cannot exceed population ({settings.population} on {space.name})"
        )
    if settings.evaluator == "table":
        table = evaluation_table(space, settings.table)
        table.check_task(settings.target)
        for src in settings.sources:
            table.check_task(src)
    elif settings.sources:
        source_table = table_for(space)
        if source_table is None and settings.principles_from is not None:
            raise UserError(
                f"--source {', '.join(settings.sources)}: space {space.name} has no benchmark table to read source "
                "tasks from; with --principles leave --source out (the principles replace learning)"
            )
        if source_table is None:
            raise UserError(f"space {space.name} has no benchmark table to learn principles from: pass --principles")
        for src in settings.sources:
            source_table.check_task(src)
    if not settings.sources and settings.principles_from is None:
        raise UserError("give at least one --source task (or --principles to start from stored principles)")
    return settings, space


def parse_settings(**values: Any) -> RunSettings:
    """Validate settings, turning the first problem into a one-line UserError."""
    from pydantic import ValidationError

    try:
        return RunSettings(**values)
    except ValidationError as e:
        raise UserError(first_error(e)) from e


def first_error(e: Any, prefix: str = "") -> str:
    """``where: what`` for the first problem of a pydantic ValidationError, on one line."""
    err = e.errors()[0]
    where = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where + ': ' if where else ''}{msg}"
