"""The bench directory's data files: ``results.csv`` and ``curves.json``, written and read back.

``results.csv`` has one row per (method, pair, seed) and everything the summary tables need;
``curves.json`` holds the configuration and what the plots need (best-so-far curves, mask statistics,
reference values, oracle regions). Both are read through Pydantic models so that ``lapt report`` fails
with one clear line on a damaged or foreign file. Floats are written with ``repr`` so that reading
them back gives the same numbers and a regenerated report is identical.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lapt.errors import UserError
from lapt.experiments.failures import FAILURE_COLUMNS
from lapt.experiments.plan import BenchConfig, MethodName
from lapt.files.inputs import MB, read_input_text
from lapt.runs.directory import atomic_write

MAX_DATA_FILE_BYTES = 256 * MB
"""A bench of a thousand seeds on every pair and method writes a few MB; far more is not a bench file."""
RESULTS = "results.csv"
CURVES = "curves.json"
SUMMARY = "summary.md"
BENCH = "bench.json"  # the settings of a bench, written when it starts (lapt.experiments.journal)
JOURNAL = "journal.jsonl"  # one line per finished run, written as it ends
CURVES_PNG = "curves.png"
MASKS_PNG = "masks.png"

COLUMNS = (
    "space",
    "method",
    "pair",
    "sources",
    "target",
    "seed",
    "budget",
    "evaluations",
    "ended",
    "metric",
    "paper_evals",
    "paper_reached",
    "paper_metric",
    "best_val",
    "best_arch",
    "reached_top",
    "reached_optimum",
    "region_size",
    "adaptations",
    "llm_calls",
    "input_tokens",
    "output_tokens",
    "failed_decisions",
    "degraded",
)
# Columns a reader accepts as missing (benches written before they existed; the row's default applies).
OPTIONAL_COLUMNS = ("outside_share", "evals_to_top", *FAILURE_COLUMNS, "principle_changes")
FINAL_PREFIX = "final_at_"


class ResultRow(BaseModel):
    """One line of ``results.csv``: one method on one pair with one seed.

    ``paper_*`` follow the paper's protocol (evaluations until the optimum by validation, else the
    top-0.1 % threshold, else the budget, and the reported metric of the incumbent then); ``finals``
    maps a budget to the reported metric of the incumbent after that many evaluations.
    """

    model_config = ConfigDict(extra="forbid")

    space: str
    method: MethodName
    pair: str
    sources: str
    target: str
    seed: int
    budget: int = Field(ge=1)
    evaluations: int = Field(ge=0)
    ended: str
    metric: Literal["test", "val"]
    paper_evals: int = Field(ge=0)
    paper_reached: Literal["optimum", "top0.1%", "budget"]
    paper_metric: float | None
    best_val: float | None
    best_arch: str | None
    reached_top: bool
    reached_optimum: bool
    evals_to_top: int | None = Field(
        default=None, ge=1, description="Evaluations until the incumbent first reached a top-0.1 % cell (None: never)."
    )
    region_size: int = Field(ge=0)
    adaptations: int = Field(ge=0)
    llm_calls: int = Field(ge=0)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    failed_decisions: int = Field(default=0, ge=0, description="Agent decisions without a valid answer.")
    degraded: bool = Field(default=False, description="An agent failed the run (its summary's 'degraded').")
    outside_share: float | None = Field(
        default=None, ge=0.0, le=1.0, description="LAPT runs: share of evaluations outside the refined region."
    )
    failed_missing: int | None = Field(
        default=None, ge=0, description="Evaluations of architectures the table has no value for (None: not counted)."
    )
    failed_invalid: int | None = Field(
        default=None, ge=0, description="Evaluations of architectures the space's rules refuse (None: not counted)."
    )
    failed_error: int | None = Field(
        default=None, ge=0, description="Other failed evaluations: evaluator errors (None: not counted)."
    )
    principle_changes: int | None = Field(
        default=None, ge=0, description="LAPT runs: ops and principles the part-by-part judgement dropped."
    )
    finals: dict[int, float | None]


class MaskStats(BaseModel):
    """For one LAPT method and pair: evaluations made under a mask allowing each (layer, op)."""

    model_config = ConfigDict(extra="forbid")

    layers: list[str]
    ops: list[str]
    counts: list[list[int]]
    evaluations: int = Field(ge=0)


class Reference(BaseModel):
    """The target's reference values: thresholds (validation) and the best cell's reported metric, all in
    the metric's own units (the optimum is the lowest value of a lower-is-better metric)."""

    model_config = ConfigDict(extra="forbid")

    optimum_val: float
    top_val: float
    optimum_metric: float | None
    best_arch: str


class OracleInfo(BaseModel):
    """The oracle region of a pair's target (see :mod:`lapt.experiments.oracle`)."""

    model_config = ConfigDict(extra="forbid")

    ops: dict[str, list[str]] = Field(description="layer -> allowed ops, in layer order")
    size: int
    mean_val: float


class CurvesFile(BaseModel):
    """``curves.json``: the configuration and everything the plots and the report header need."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    config: BenchConfig
    metric: Literal["test", "val"] = Field(description="the split reported: test where published, else val")
    selection: Literal["val", "test"] = Field("val", description="the split selection uses (test: no validation)")
    higher_is_better: bool = True
    wall_s: float
    workers: int
    continued_runs: int = Field(
        0, ge=0, description="runs read from the journal of an interrupted bench (wall_s is of the others only)"
    )
    references: dict[str, Reference]
    oracle: dict[str, OracleInfo]
    curves: dict[str, dict[str, list[list[float | None]]]] = Field(
        description="method -> pair label -> one best-so-far curve per seed (in config.seeds order)"
    )
    masks: dict[str, dict[str, MaskStats]] = Field(description="LAPT method -> pair label -> mask statistics")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_results(path: Path, rows: list[dict[str, Any]], budgets: list[int]) -> None:
    """Write ``results.csv`` (rows as produced by :func:`lapt.experiments.methods.run_job`)."""
    header = [*COLUMNS, *OPTIONAL_COLUMNS, *(f"{FINAL_PREFIX}{b}" for b in budgets)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(col)) for col in header])
    atomic_write(path, buf.getvalue())


def read_results(path: Path) -> list[ResultRow]:
    """Read ``results.csv`` back; UserError naming the first bad line."""
    if not path.exists():
        raise UserError(f"{path} not found: is this a bench directory?")
    text = read_input_text(path, "results file", MAX_DATA_FILE_BYTES)
    try:
        return _parse_results(path, text)
    except csv.Error as e:  # a NUL byte, an unterminated quote: not a CSV lapt wrote
        raise UserError(f"{path}: not a results table ({e})") from e


def _parse_results(path: Path, text: str) -> list[ResultRow]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    finals = [c for c in header if c.startswith(FINAL_PREFIX)]
    optional = [c for c in OPTIONAL_COLUMNS if c in header]
    unknown = [c for c in header if c not in COLUMNS and c not in finals and c not in OPTIONAL_COLUMNS]
    if unknown:
        raise UserError(f"{path}: unknown column(s) {', '.join(unknown)}")
    rows = []
    seen: dict[tuple[str, str, int], int] = {}
    for line, raw in enumerate(reader, start=2):
        data: dict[str, Any] = {c: (raw[c] if raw[c] != "" else None) for c in [*COLUMNS, *optional]}
        data["sources"] = raw["sources"]  # empty for a baselines-only bench on a single-task space
        try:
            data["finals"] = {int(c[len(FINAL_PREFIX) :]): raw[c] or None for c in finals}
            row = ResultRow.model_validate(data)
        except (ValidationError, ValueError) as e:
            first = e.errors()[0] if isinstance(e, ValidationError) else {"loc": (), "msg": str(e)}
            where = ".".join(str(p) for p in first["loc"]) or "row"
            raise UserError(f"{path}:{line}: invalid {where}: {first['msg']}") from e
        # A bench runs each (method, pair, seed) once: a second row would count one run twice in every mean,
        # std and t (a file concatenated with itself would report 3 seeds over twice the rows).
        key = (row.method, row.pair, row.seed)
        if key in seen:
            raise UserError(
                f"{path}:{line}: duplicate row ({row.method}, {row.pair}, seed {row.seed}), first on line {seen[key]}"
            )
        seen[key] = line
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no results")
    return rows


def write_curves(path: Path, curves: CurvesFile) -> None:
    """Write ``curves.json``."""
    atomic_write(path, json.dumps(curves.model_dump(mode="json"), indent=1) + "\n")


def read_curves(path: Path) -> CurvesFile:
    """Read ``curves.json`` back; UserError on a missing or invalid file."""
    if not path.exists():
        raise UserError(f"{path} not found: is this a bench directory?")
    from lapt.files.json_input import JSONTooDeep, load_json

    try:
        data = load_json(read_input_text(path, "curves file", MAX_DATA_FILE_BYTES))
    except JSONTooDeep as e:
        raise UserError(f"{path} is not a curves file: the JSON is {e}") from e
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from e
    try:
        return CurvesFile.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise UserError(f"{path}: invalid {where}: {first['msg']}") from e
