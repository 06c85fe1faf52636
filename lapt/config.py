"""Run settings: validated once at the CLI/API boundary, saved with every run, compared on resume."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lapt.errors import UserError
from lapt.spaces import SearchSpace


class RunSettings(BaseModel):
    """Everything that fixes what a run does. Secrets never live here."""

    model_config = ConfigDict(extra="forbid")

    space: str
    sources: list[str] = Field(default_factory=list, description="Source tasks the learner may see.")
    target: str
    budget: int = Field(20, ge=1)
    seed: int = 0
    strategy: Literal["rea", "random", "local"] = "rea"
    # None below means the space's search defaults (SearchSpace.search_defaults: NB201 5/2/5/2/5, TNB101
    # 10/5/10/3/15, a space file's [search]).
    population: int | None = Field(None, ge=1, description="REA population (default: the space's).")
    tournament: int | None = Field(None, ge=1, description="REA tournament (default: the space's).")
    adapt: bool = True
    adapt_every: int | None = Field(None, ge=1, description="Evaluations between adaptations (default: the space's).")
    max_ops: int | None = Field(None, ge=1, description="Max ops per layer in a refined space (default: the space's).")
    top_k: int = Field(50, ge=1, description="Source architectures shown to the learner.")
    top_target: int | None = Field(None, ge=1, description="Target architectures shown to the adapter (the space's).")
    batch_size: int = Field(1, ge=1)
    evaluator: str | None = Field(
        None,
        pattern=r"^(table|train|python(:[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)?)$",
        description="table, train, python:MODULE:FUNCTION, or python (the function the space file names); "
        "None: the space's table, else the evaluator its file names (see lapt.evaluator_choice).",
    )
    evaluator_path: str | None = Field(None, description="Folder a python evaluator's module is imported from.")
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


def space_defaults(space: SearchSpace) -> dict[str, Any]:
    """The settings a space owns (the paper's per space, or a space file's ``[search]``) as settings fields."""
    return space.search_defaults().as_settings()


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
