"""Which evaluator a run (or ``lapt eval``) uses: the option given, else what the space offers.

Values of ``--evaluator``:

* ``table``: look architectures up in the space's benchmark table;
* ``train``: train them with the built-in trainer (the built-in spaces' networks, or the network
  builder a space file names in ``[evaluator] network``);
* ``python:MODULE:FUNCTION``: call your function (:mod:`lapt.tools.user_evaluator`); MODULE is looked
  up next to the space file's own code, then in the current folder, then on ``sys.path``;
* ``python``: the function the space file names in ``[evaluator] function``.

Without the option: the table if the space has one, else the space file's function, else its network
builder. The choice is resolved once, before the run, into ``table``, ``train`` or
``python:MODULE:FUNCTION`` plus the folder the module is imported from, which is what the run records
(a resume imports the same module from the same folder, and refuses if its source changed).
"""

from __future__ import annotations

from pathlib import Path

from lapt.files.code_ref import CodeRef, module_folder
from lapt.errors import UserError
from lapt.spaces import SearchSpace

EVALUATORS = ("table", "train", "python", "python:MODULE:FUNCTION")


def choose_evaluator(space: SearchSpace, requested: str | None) -> tuple[str, str | None]:
    """(evaluator, folder its module is imported from) for a run on ``space``; UserError when it cannot work."""
    from lapt.spaces.user import UserSpace
    from lapt.tables.registry import table_for

    user = space if isinstance(space, UserSpace) else None
    if requested is None:
        if table_for(space) is not None or user is None:
            return "table", None  # a space without one is refused by the table evaluator, with the options
        requested = "python" if user.function is not None else "train" if user.network is not None else "table"
    if requested == "table":
        return "table", None
    if requested == "train":
        if user is not None:
            if user.network is None:
                raise UserError(
                    f"--evaluator train: space {user.name} names no network builder to train "
                    '([evaluator] network = "MODULE:FUNCTION" in its file)'
                )
            if not user.higher_is_better:
                raise UserError(
                    f"--evaluator train reports accuracy (higher is better), but space {user.name} declares a "
                    "lower-is-better metric ([metric] higher_is_better = false)"
                )
        return "train", None
    if requested == "python":
        if user is None or user.function is None:
            raise UserError(
                f"--evaluator python: space {space.name} names no function ([evaluator] function in a space file); "
                "give --evaluator python:MODULE:FUNCTION"
            )
        return f"python:{user.function.spec}", user.function.path
    if requested.startswith("python:"):
        ref = CodeRef.parse(requested.removeprefix("python:"), what="--evaluator python:")
        own = [p.path for p in (user.function, user.network) if p is not None and p.path] if user is not None else []
        return f"python:{ref.spec}", module_folder(ref.module, [*own, str(Path.cwd())], f"--evaluator {requested}")
    raise UserError(f"unknown evaluator {requested!r} (known: {', '.join(EVALUATORS)})")
