"""The TOML space file as Pydantic sees it: sections, keys, types and defaults (format: ``docs/user_spaces.md``).

Only the shape is checked here (unknown keys, missing fields, types, ranges); what a schema cannot say
(edges form a DAG, ops are declared, rules name real layers) is checked by :mod:`lapt.spaces.user`.
Every failure becomes one line naming the file and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lapt.errors import UserError
from lapt.files.inputs import MB, read_input


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OpEntry(_Strict):
    """An ``[ops]`` entry; ``name = "description"`` is short for ``name = { description = ... }``."""

    description: str = Field(min_length=1)
    symbol: str | None = Field(default=None, min_length=1, max_length=1)
    module: str | None = Field(default=None, min_length=1)


class LayerEntry(_Strict):
    """A ``[[layers]]`` entry: ``edge`` for cells, an optional ``name`` for chains."""

    ops: list[str] = Field(min_length=1)
    edge: str | None = None
    name: str | None = None
    description: str = ""


class ArchEntry(_Strict):
    """The ``[arch]`` section: how a genotype is written as a string."""

    format: Literal["ops_joined", "digits"] = "ops_joined"
    separator: str | None = None
    prefix: str = ""
    suffix: str = ""
    omit_absent: bool = False


class TableEntry(_Strict):
    """The ``[table]`` section: where the benchmark CSV is and what it should hash to."""

    file: str = Field(min_length=1)
    arch_column: str = Field(default="arch", min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    fidelity: str = ""


class MetricEntry(_Strict):
    """The ``[metric]`` section: which CSV columns hold validation and test, and the metric's direction."""

    name: str = ""
    higher_is_better: bool = True
    validation: str = "{task}"
    test: str = "{task}_test"


class SearchEntry(_Strict):
    """The ``[search]`` section: the search settings a run on this space uses unless it sets its own."""

    population: int = Field(default=5, ge=1)
    tournament: int = Field(default=2, ge=1)
    adapt_every: int = Field(default=5, ge=1)
    max_ops: int = Field(default=2, ge=1)
    top_target: int = Field(default=5, ge=1)


class CountEntry(_Strict):
    """One ``[validity] count`` rule: between ``min`` and ``max`` of ``layers`` (default all) use one of ``ops``."""

    ops: list[str] = Field(min_length=1)
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)
    layers: list[str] | None = Field(default=None, min_length=1)


class ValidityEntry(_Strict):
    """The ``[validity]`` section: which op combinations are architectures.

    ``forbid`` is not capped here: :mod:`lapt.spaces.user_validity` refuses more than
    :data:`~lapt.spaces.user_validity.MAX_FORBID` entries with a message that points to count rules.
    """

    table_only: bool = False
    optional: list[str] = Field(default_factory=list)
    absent: str = Field(default="none", min_length=1)
    forbid: list[dict[str, str | list[str]]] = Field(default_factory=list)
    count: list[CountEntry] = Field(default_factory=list, max_length=16)


class EvaluatorEntry(_Strict):
    """The ``[evaluator]`` section: the space's own code (``MODULE:FUNCTION``), imported from ``path``."""

    function: str | None = Field(default=None, min_length=1)
    network: str | None = Field(default=None, min_length=1)
    path: str = Field(default=".", min_length=1)


class SpaceFile(_Strict):
    """The whole TOML file."""

    name: str
    title: str = ""
    kind: Literal["cell", "chain"]
    tasks: list[str] = Field(default_factory=list)
    notes: str = ""
    ops: dict[str, OpEntry] = Field(min_length=1)
    layers: list[LayerEntry] = Field(min_length=1)
    arch: ArchEntry = Field(default_factory=ArchEntry)
    table: TableEntry | None = None
    metric: MetricEntry = Field(default_factory=MetricEntry)
    search: SearchEntry = Field(default_factory=SearchEntry)
    validity: ValidityEntry = Field(default_factory=ValidityEntry)
    evaluator: EvaluatorEntry | None = None

    @field_validator("ops", mode="before")
    @classmethod
    def _expand_short_ops(cls, value: Any) -> Any:
        """Let ``conv = "3x3 conv"`` stand for ``conv = { description = "3x3 conv" }``."""
        if isinstance(value, dict):
            return {k: {"description": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "ops": OpEntry,
    "layers": LayerEntry,
    "arch": ArchEntry,
    "table": TableEntry,
    "metric": MetricEntry,
    "search": SearchEntry,
    "validity": ValidityEntry,
    "evaluator": EvaluatorEntry,
}


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_message(file: str, error: ValidationError) -> str:
    """One line for the first schema problem, naming the key and (for unknown keys) the known ones."""
    err = error.errors()[0]
    loc = tuple(err["loc"])
    where = _format_loc(loc)
    if err["type"] == "extra_forbidden":
        model: type[BaseModel] = SpaceFile
        if len(loc) > 1 and isinstance(loc[0], str) and loc[0] in _SECTION_MODELS:
            model = _SECTION_MODELS[loc[0]]
        hint = ""
        if len(loc) == 1 and loc[0] in SearchEntry.model_fields:
            hint = f"; {loc[0]} belongs in the [search] section"
        return f"{file}: unknown key {where!r} (known here: {', '.join(model.model_fields)}){hint}"
    if err["type"] == "missing":
        return f"{file}: missing field {where!r}"
    return f"{file}: {where}: {err['msg']}"


MAX_SPACE_FILE_BYTES = 1 * MB
"""A space file lists ops and layers with one-line descriptions: kilobytes. A megabyte is a mistake."""


def read_space_file(path: Path) -> tuple[SpaceFile, bytes]:
    """Read and shape-check a space file; returns the model and the file's bytes (for its sha256).

    Raises:
        UserError: one line naming the file and the first problem.
    """
    file = path.name
    raw = read_input(path, "space file", MAX_SPACE_FILE_BYTES)
    try:
        # utf-8-sig: editors on Windows start UTF-8 files with a byte-order mark, which TOML forbids
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise UserError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{file}: invalid TOML: {e}") from e
    try:
        return SpaceFile.model_validate(data), raw
    except ValidationError as e:
        raise UserError(_schema_message(file, e)) from e
