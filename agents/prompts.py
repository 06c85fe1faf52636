"""Prompt templates are Markdown files rendered with strict variables.

Templates use ``${name}`` placeholders (``string.Template``), which leaves the JSON braces in prompts
alone. Each template declares no variables itself: the allowed set per template is fixed here, so a user
override that mentions an unknown variable, or a render that misses one, fails before any LLM call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from lapt.errors import UserError
from lapt.files.inputs import MB, read_input_text

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
MAX_PROMPT_BYTES = 1 * MB
"""A prompt of a megabyte is about 250,000 tokens: more than any model's context."""

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
            "target_evidence",
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
            "target_evidence",
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


def _override_files(override_dir: Path) -> dict[str, Path]:
    """The prompt files of an override folder, by name relative to it; UserError for anything else.

    Every entry must be a prompt lapt reads: ``<prompt>.md`` for the prompts of :data:`VARIABLES`, and
    ``spaces/<space>.md`` for space descriptions. Anything else was meant to change a prompt and would
    silently change nothing (``learner.txt``, ``Learner.MD``, a folder called ``learner.md``, a link to
    a file that is gone), so it is refused, naming the entry and what is expected. Hidden entries
    (``.git``, an editor's ``.learner.md.swp``) are not prompts and are skipped.
    """
    if not override_dir.is_dir():
        raise UserError(f"--prompts {override_dir}: not a directory")
    top = {f"{n}.md" for n in VARIABLES}
    expected = f"{', '.join(sorted(top))} or spaces/<space>.md"
    found: dict[str, Path] = {}

    def refuse(rel: str, why: str) -> UserError:
        hint = next((k for k in top if k.lower() == rel.lower() or k.lower() == f"{Path(rel).stem.lower()}.md"), None)
        did_you_mean = f"; did you mean {hint}?" if hint else ""
        return UserError(f"--prompts {override_dir}: {rel} {why} (expected {expected}){did_you_mean}")

    for entry in sorted(override_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.name == "spaces" and entry.is_dir() and not entry.is_symlink():
            for sub in sorted(entry.iterdir()):
                if sub.name.startswith("."):
                    continue
                rel = f"spaces/{sub.name}"
                if not sub.name.endswith(".md") or len(sub.name) <= 3:
                    raise refuse(rel, "matches no prompt")
                found[rel] = _prompt_file(sub, rel, refuse)
            continue
        if entry.name not in top:
            raise refuse(entry.name, "matches no prompt")
        found[entry.name] = _prompt_file(entry, entry.name, refuse)
    return found


def _prompt_file(path: Path, rel: str, refuse: Callable[[str, str], UserError]) -> Path:
    if path.is_symlink() and not path.exists():
        raise refuse(rel, "is a symbolic link to nothing")
    if path.is_dir():
        raise refuse(rel, "is a directory, not a UTF-8 text file")
    return path


def _read(path: Path) -> str:
    return read_input_text(path, "prompt", MAX_PROMPT_BYTES)


def load_prompts(override_dir: Path | None = None) -> PromptSet:
    """Load the shipped prompts, replacing any subset with files of the same name from ``override_dir``.

    Raises:
        UserError: the override folder is missing, holds an entry that is not a prompt file (see
            :func:`_override_files`), a file that is not UTF-8 text or is too large, or a template that
            uses a variable its prompt does not provide.
    """
    overrides = _override_files(override_dir) if override_dir is not None else {}
    templates: dict[str, Template] = {}
    space_templates: dict[str, Template] = {}
    hashes: dict[str, str] = {}

    def pick(rel: str) -> Path:
        return overrides.get(rel) or PROMPT_DIR / rel

    for name, allowed in VARIABLES.items():
        path = pick(f"{name}.md")
        text = _read(path)
        templates[name] = _check(name, text, allowed, path)
        hashes[f"{name}.md"] = hashlib.sha256(text.encode()).hexdigest()
    space_paths = {p.name for p in (PROMPT_DIR / "spaces").glob("*.md")}
    space_paths |= {rel.removeprefix("spaces/") for rel in overrides if rel.startswith("spaces/")}
    for fname in sorted(space_paths):
        path = pick(f"spaces/{fname}")
        text = _read(path)
        space_templates[fname[:-3]] = _check(f"spaces/{fname}", text, SPACE_VARIABLES, path)
        hashes[f"spaces/{fname}"] = hashlib.sha256(text.encode()).hexdigest()
    return PromptSet(templates=templates, space_templates=space_templates, hashes=hashes)
