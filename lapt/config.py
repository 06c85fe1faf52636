"""Run settings: validated once at the CLI/API boundary, saved with every run, compared on resume."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lapt.errors import UserError
from lapt.spaces import SearchSpace, get_space
from lapt.tables import evaluation_table, table_for


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
    llm: dict[str, Any] | None = None
    llm_cache: str | None = Field(None, description="SQLite LLM response cache (default: <run dir>/llm_cache.sqlite).")
    prompts_dir: str | None = None
    principles_from: str | None = None
    train: dict[str, Any] | None = None
    on_agent_failure: Literal["stop", "continue"] = Field(
        "stop", description="When the learner gives no principles: stop the run, or search without transfer."
    )

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


def resolve_settings(**values: Any) -> tuple[RunSettings, SearchSpace]:
    """Validate settings, fill the per-space defaults and check every task name; UserError on any problem.

    The source tasks must be in the table the learner reads, the target in the table the run is
    evaluated with (for the table evaluator), before anything else happens.
    """
    if values.get("adapt") is False and values.get("adapt_every") is not None:
        raise UserError("--no-adapt contradicts --adapt-every: a run that never adapts has no adaptation interval")
    settings = parse_settings(**values)
    space = get_space(settings.space)
    settings = settings.resolved(space_defaults(space.name, space.adapt_every, space.default_max_ops))
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
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise UserError(f"{where + ': ' if where else ''}{msg}") from e
