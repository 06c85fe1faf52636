"""User code a run depends on (an evaluator function, a network builder), named as ``MODULE:FUNCTION``.

A :class:`CodeRef` says where the code is without running it: the module is looked up with importlib's
finders (nothing is imported here, so no user code runs in the domain layer), and the sha256 of its
source files goes into the run identity, so that a run is never resumed with code that would score
architectures differently. The code itself is imported only where it runs
(:func:`lapt.tools.train.user_code.import_callable`, in this process and in every worker), by name:
code never travels between processes, and nothing is evaluated as text.

Which files the hash covers: for a module inside a package, every ``.py`` file of its top-level package
(recursively); for a top-level module, every ``.py`` file next to it (the usual layout of a folder of
user code, where the evaluator imports its network family from a sibling module).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from lapt.errors import UserError

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
CODE_REF = re.compile(rf"^({_DOTTED}):({_DOTTED})$")


@dataclass(frozen=True)
class CodeRef:
    """A function in a module, and the folder the module is imported from.

    Attributes:
        module: dotted module name.
        function: attribute path of the callable inside the module (dotted for a class attribute).
        path: absolute folder put on ``sys.path`` (after the standard library) before importing; None to use
            ``sys.path`` as is.
    """

    module: str
    function: str
    path: str | None = None

    @classmethod
    def parse(cls, text: str, path: str | Path | None = None, what: str = "code reference") -> CodeRef:
        """``MODULE:FUNCTION`` (both dotted Python names); UserError naming ``what`` otherwise."""
        m = CODE_REF.match(text.strip())
        if not m:
            raise UserError(f"{what} {text!r}: expected MODULE:FUNCTION (Python names, e.g. my_family:evaluate)")
        top = m.group(1).split(".")[0]
        if top in sys.stdlib_module_names:
            # Python would import the standard module, never the file of that name next to the space file.
            raise UserError(f"{what} {text!r}: {top!r} is the name of a standard-library module; rename your file")
        return cls(m.group(1), m.group(2), None if path is None else str(Path(path).resolve()))

    @property
    def spec(self) -> str:
        """``MODULE:FUNCTION``."""
        return f"{self.module}:{self.function}"

    def _find(self) -> importlib.machinery.ModuleSpec | None:
        return _find_top(self.module, [self.path] if self.path is not None else [])

    def files(self) -> list[Path]:
        """The source files the hash covers (see the module docstring); UserError if the module is not found."""
        spec = self._find()
        where = f" in {self.path} or" if self.path else ""
        if spec is None:
            raise UserError(f"{self.spec}: no module {self.module.split('.')[0]!r}{where} on the Python path")
        if spec.submodule_search_locations:  # a package: all of it
            roots = [Path(p) for p in spec.submodule_search_locations]
            files = {f for root in roots for f in root.rglob("*.py") if "__pycache__" not in f.parts}
        elif spec.origin and Path(spec.origin).is_file():
            origin = Path(spec.origin)
            files = set(origin.parent.glob("*.py")) | {origin}
        else:
            raise UserError(f"{self.spec}: module {self.module!r} has no source file to record")
        return sorted(files)

    def sha256(self) -> str:
        """sha256 over the covered files (relative names and bytes)."""
        files = self.files()
        common = _common_parent(files)
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.relative_to(common).as_posix().encode() + b"\0")
            digest.update(f.read_bytes() + b"\0")
        return digest.hexdigest()

    def identity(self) -> dict[str, str | None]:
        """What a run records about this code: the reference, its folder and the hash of its source."""
        return {"ref": self.spec, "path": self.path, "sha256": self.sha256()}


def _find_top(module: str, folders: list[str]) -> importlib.machinery.ModuleSpec | None:
    """Where ``module``'s top-level package or file is: in the first of ``folders`` holding it, else on
    ``sys.path``; None if nowhere. Nothing is imported (finders only read the file system)."""
    top = module.split(".")[0]
    for folder in folders:
        found = importlib.machinery.PathFinder.find_spec(top, [folder])
        if found is not None:
            return found
    try:
        return importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None


def module_folder(module: str, folders: list[str], what: str) -> str | None:
    """The first of ``folders`` holding ``module``, or None when it is found on ``sys.path`` instead.

    Raises:
        UserError: the module is nowhere (``what`` names the option or key in the message).
    """
    top = module.split(".")[0]
    for folder in folders:
        if importlib.machinery.PathFinder.find_spec(top, [folder]) is not None:
            return folder
    if _find_top(module, []) is None:
        where = ", ".join(dict.fromkeys(folders))
        raise UserError(f"{what}: no module {top!r} in {where or '-'} or on the Python path")
    return None


def _common_parent(files: list[Path]) -> Path:
    """The deepest folder holding every file (so the hash does not depend on where the folder lives)."""
    common = files[0].parent
    while not all(f.is_relative_to(common) for f in files):
        common = common.parent
    return common
