"""Prompt templates are Markdown files rendered with strict variables.

Templates use ``${name}`` placeholders (``string.Template``), which leaves the JSON braces in prompts
alone. Each template declares no variables itself: the allowed set per template is fixed here, so a user
override that mentions an unknown variable, or a render that misses one, fails before any LLM call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from lapt.errors import UserError

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"

VARIABLES: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "learner": frozenset(
        {
            "source_tasks",
            "space_description",
            "layer_order",
            "op_legend",
            "top_k",
            "top_architectures",
            "layer_statistics",
            "answer_format",
        }
    ),
    "refiner": frozenset(
        {
            "target_task",
            "max_ops",
            "space_summary",
            "principles",
            "context",
            "avoid_regions",
            "inputs_rule",
            "answer_format",
        }
    ),
    "adapter_improved": frozenset(
        {
            "target_task",
            "space_summary",
            "principles",
            "layer_order",
            "current_region",
            "op_legend",
            "top_target",
            "answer_format",
        }
    ),
    "adapter_stalled": frozenset(
        {
            "target_task",
            "space_summary",
            "layer_order",
            "op_legend",
            "tried_regions",
            "best_so_far",
            "original_principles",
            "answer_format",
        }
    ),
}
SPACE_VARIABLES = frozenset({"space_size", "space_code", "space_title"})


def _check(name: str, text: str, allowed: frozenset[str], origin: Path) -> Template:
    template = Template(text)
    if not template.is_valid():
        raise UserError(f"prompt {origin}: malformed placeholder (use ${{name}}; write $$ for a literal $)")
    unknown = sorted(set(template.get_identifiers()) - allowed)
    if unknown:
        raise UserError(
            f"prompt {origin}: unknown variable(s) {', '.join(unknown)} "
            f"(allowed in {name}: {', '.join(sorted(allowed)) or 'none'})"
        )
    return template


@dataclass
class PromptSet:
    """The templates of one run, with the sha256 of each file actually used."""

    templates: dict[str, Template]
    space_templates: dict[str, Template]
    hashes: dict[str, str] = field(default_factory=dict)

    def render(self, name: str, **values: object) -> str:
        """Fill template ``name``; every declared variable must be given and nothing else."""
        allowed = VARIABLES[name]
        missing = sorted(allowed - set(values))
        extra = sorted(set(values) - allowed)
        if missing or extra:
            raise ValueError(f"prompt {name}: missing {missing}, unexpected {extra}")
        used = set(self.templates[name].get_identifiers())
        return self.templates[name].substitute({k: str(v) for k, v in values.items() if k in used})

    def space_description(self, space_name: str, **values: object) -> str:
        """The description of a space, falling back to the generic template for user spaces."""
        template = self.space_templates.get(space_name) or self.space_templates["generic"]
        return template.substitute({k: str(v) for k, v in values.items()})


def load_prompts(override_dir: Path | None = None) -> PromptSet:
    """Load the shipped prompts, replacing any subset with files of the same name from ``override_dir``.

    Raises:
        UserError: the override folder is missing, holds a file that matches no prompt, or a template
            uses a variable that its prompt does not provide.
    """
    if override_dir is not None and not override_dir.is_dir():
        raise UserError(f"--prompts {override_dir}: not a directory")
    templates: dict[str, Template] = {}
    space_templates: dict[str, Template] = {}
    hashes: dict[str, str] = {}

    def pick(rel: str) -> Path:
        if override_dir is not None and (override_dir / rel).is_file():
            return override_dir / rel
        return PROMPT_DIR / rel

    if override_dir is not None:
        known = {f"{n}.md" for n in VARIABLES} | {f"spaces/{p.name}" for p in (PROMPT_DIR / "spaces").glob("*.md")}
        for path in sorted(override_dir.rglob("*.md")):
            rel = path.relative_to(override_dir).as_posix()
            if rel not in known and not rel.startswith("spaces/"):
                raise UserError(f"--prompts: {rel} matches no prompt (known: {', '.join(sorted(known))})")
    for name, allowed in VARIABLES.items():
        path = pick(f"{name}.md")
        text = path.read_text()
        templates[name] = _check(name, text, allowed, path)
        hashes[f"{name}.md"] = hashlib.sha256(text.encode()).hexdigest()
    space_paths = {p.name for p in (PROMPT_DIR / "spaces").glob("*.md")}
    if override_dir is not None and (override_dir / "spaces").is_dir():
        space_paths |= {p.name for p in (override_dir / "spaces").glob("*.md")}
    for fname in sorted(space_paths):
        path = pick(f"spaces/{fname}")
        text = path.read_text()
        space_templates[fname[:-3]] = _check(f"spaces/{fname}", text, SPACE_VARIABLES, path)
        hashes[f"spaces/{fname}"] = hashlib.sha256(text.encode()).hexdigest()
    return PromptSet(templates=templates, space_templates=space_templates, hashes=hashes)
