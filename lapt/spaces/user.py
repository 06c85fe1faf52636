"""User-defined search spaces, declared in a TOML file (format: ``docs/user_spaces.md``).

A file names the layers and the candidate ops of each (every op with a one-line description, because
the description is what an LLM reads), how layers combine (``kind = "cell"``: edges ``i->j`` of a DAG
whose nodes sum their in-edges, as in NAS-Bench-201; ``kind = "chain"``: layers applied one after
another), the tasks, and optionally: a benchmark table (a CSV, see :mod:`lapt.spaces.user_csv`) with
its metric columns and direction (``[metric]``), which combinations are architectures (``[validity]``,
see :mod:`lapt.spaces.user_validity`), the search settings (``[search]``) and the space's own evaluator
code (``[evaluator]``: a function returning metrics, or a network builder the built-in trainer trains).

The file is validated twice: Pydantic checks its shape (:mod:`lapt.spaces.user_file`) and
:func:`load_user_space` checks what a schema cannot (edges form a connected DAG, ops are declared, the
arch-string format can encode every op, rules name real layers, the evaluator's module exists). Every
failure is one :class:`~lapt.errors.UserError` line that names the file. The declared table is read and
verified while loading, so a broken CSV is reported before any search starts, and its sha256 is kept on
the space for provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lapt.errors import UserError
from lapt.files.code_ref import CodeRef
from lapt.spaces.base import Genotype, LayerSpec, SearchDefaults
from lapt.spaces.builtin import builtin_space_names
from lapt.spaces.cell import CellSpace
from lapt.spaces.user_csv import MetricColumns, TableData, read_table_csv
from lapt.spaces.user_file import SpaceFile, read_space_file
from lapt.spaces.user_validity import build_rules
from lapt.spaces.validity import TableValidity

_SPACE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TASK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_EDGE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*$")
_RESERVED_LAYER_NAMES = ("rationale",)  # a field of every mask model
_Fail = Callable[[str], UserError]


# -- the space --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpInfo:
    """What the code description says about an op: a one-line description and, optionally, its module."""

    description: str
    module: str | None = None


@dataclass(frozen=True)
class ArchFormat:
    """How genotypes are written: ops (or their one-char symbols) in layer order, joined by a separator."""

    format: Literal["ops_joined", "digits"]
    separator: str
    prefix: str = ""
    suffix: str = ""
    symbols: Mapping[str, str] | None = None  # op -> symbol, for ``digits``
    omit_absent: bool = False  # write strings without their left-out optional layers (the benchmark's form)


class UserSpace(CellSpace):
    """A space read from a TOML file: a fixed cell or a chain, one op per layer.

    Attributes:
        kind: ``"cell"`` or ``"chain"``.
        edges: for cells, the ``(i, j)`` node pair of each layer; empty for chains.
        metric: the table's metric columns and direction (``higher_is_better`` follows it).
        function: the space's evaluator function (``[evaluator] function``), or None.
        network: the space's network builder (``[evaluator] network``), or None.
        source: the resolved path of the TOML file.
        spec_sha256: sha256 of the TOML file's bytes (provenance).
        table_data: the verified benchmark table, or None when the file declares none.
    """

    def __init__(
        self,
        *,
        name: str,
        title: str,
        kind: Literal["cell", "chain"],
        layers: tuple[LayerSpec, ...],
        op_info: Mapping[str, OpInfo],
        arch: ArchFormat,
        defaults: SearchDefaults,
        metric: MetricColumns,
        tasks: Sequence[str] = (),
        function: CodeRef | None = None,
        network: CodeRef | None = None,
        edges: Sequence[tuple[int, int]] = (),
        notes: str = "",
        source: Path | None = None,
        spec_sha256: str = "",
    ):
        super().__init__(layers, edges)
        self.name = name
        self.title = title or name
        self.kind = kind
        self.tasks = tuple(tasks)
        self.defaults = defaults
        self.metric = metric
        self.higher_is_better = metric.higher_is_better
        self.function = function
        self.network = network
        self.notes = notes
        self.source = source
        self.spec_sha256 = spec_sha256
        self.table_data: TableData | None = None
        self._op_info = dict(op_info)
        self._arch = arch
        self._from_symbol = {s: op for op, s in (arch.symbols or {}).items()}

    @property
    def table_only(self) -> bool:
        """True when the table's architectures are the only candidates."""
        return isinstance(self.validity, TableValidity)

    @property
    def ref(self) -> str:
        """A string :func:`lapt.spaces.get_space` accepts to load this space again (``file:PATH``)."""
        return f"file:{self.source}" if self.source else self.name

    @property
    def arch_format(self) -> ArchFormat:
        """How genotypes are written as strings."""
        return self._arch

    def op_info(self, op: str) -> OpInfo:
        """The declared description of ``op``."""
        return self._op_info[op]

    # -- codec -------------------------------------------------------------------------------------
    def to_str(self, genotype: Genotype) -> str:
        fmt = self._arch
        if fmt.omit_absent:
            genotype = genotype[: len(genotype) - self._trailing_absent(genotype)]
        parts = [fmt.symbols[op] for op in genotype] if fmt.symbols is not None else [str(op) for op in genotype]
        return fmt.prefix + fmt.separator.join(parts) + fmt.suffix

    def _trailing_absent(self, genotype: Genotype) -> int:
        """How many layers at the end of ``genotype`` are optional layers left out (holding the absent op)."""
        validity = self.validity
        if validity is None or not validity.optional:
            return 0
        k = 0
        while k < len(genotype) and (len(genotype) - 1 - k) in validity.optional and (
            genotype[len(genotype) - 1 - k] == validity.absent
        ):
            k += 1
        return k

    def _padded(self, parts: list[str]) -> list[str]:
        """A short string's ops with its left-out optional layers written back as the absent op.

        A benchmark names a 5-module network without a symbol for its missing sixth module; with
        optional layers, the ops a string lacks can only be those layers, left out from the end.
        """
        validity = self.validity
        missing = len(self.layers) - len(parts)
        if validity is None or validity.absent is None or missing <= 0 or missing > len(validity.optional):
            return parts
        absent = validity.absent
        fill = self._arch.symbols[absent] if self._arch.symbols is not None else absent
        return [*parts, *([fill] * missing)]

    def from_str(self, arch: str) -> Genotype:
        fmt = self._arch
        text = arch.strip()
        if not text.startswith(fmt.prefix):
            raise UserError(f"{self.name}: malformed arch string {arch!r}: must start with {fmt.prefix!r}")
        if not text.endswith(fmt.suffix) or len(text) < len(fmt.prefix) + len(fmt.suffix):
            raise UserError(f"{self.name}: malformed arch string {arch!r}: must end with {fmt.suffix!r}")
        text = text[len(fmt.prefix) : len(text) - len(fmt.suffix)]
        parts = self._padded(text.split(fmt.separator) if fmt.separator else list(text))
        n = len(self.layers)
        if len(parts) != n:
            how = f"joined by {fmt.separator!r}" if fmt.separator else "written as one symbol each"
            optional = len(self.validity.optional) if self.validity is not None else 0
            expected = f"{n - optional} to {n}" if optional else f"{n}"
            raise UserError(
                f"{self.name}: malformed arch string {arch!r}: expected {expected} ops {how}, got {len(parts)}"
            )
        if fmt.symbols is not None:
            unknown = [p for p in parts if p not in self._from_symbol]
            if unknown:
                raise UserError(
                    f"{self.name}: malformed arch string {arch!r}: unknown symbol {unknown[0]!r} "
                    f"(symbols: {', '.join(f'{s}={op}' for s, op in self._from_symbol.items())})"
                )
            parts = [self._from_symbol[p] for p in parts]
        return self.validate_genotype(parts)

    # -- description for agents ---------------------------------------------------------------------
    def describe_code(self) -> str:
        lines = [f"# {self.title} (user-defined {self.kind} space '{self.name}')."]
        if self.kind == "cell":
            out = max(j for _, j in self.edges)
            lines += [
                f"# {out + 1} nodes; node 0 is the cell input, node {out} the cell output.",
                "# Every edge i->j (i<j) applies exactly one op; a node sums its incoming edges.",
            ]
        else:
            lines.append(f"# {len(self.layers)} layers applied one after another; each layer applies exactly one op.")
        lines += self._op_table()
        lines.append("")
        lines.append("# Candidate ops of each layer (a genotype picks one per layer, in this order):")
        for layer in self.layers:
            lines.append(f"#   {layer.name} ({layer.description}): {', '.join(layer.ops)}")
        lines += self._validity_lines()
        lines.append(self._metric_line())
        lines.append("")
        lines += self._cell_class() if self.kind == "cell" else self._chain_class()
        if self.notes:
            lines.append("")
            lines += [f"# {line}".rstrip() for line in self.notes.strip().splitlines()]
        return "\n".join(lines) + "\n"

    def _validity_lines(self) -> list[str]:
        """What the rules and the table say about which combinations are architectures."""
        from lapt.spaces.validity import RuleValidity

        lines = []
        validity = self.validity
        if validity is not None and validity.optional:
            names = [self.layers[i].name for i in sorted(validity.optional)]
            fixed = len(self.layers) - len(names)
            lines.append(
                f"# Optional layers {', '.join(names)}: {validity.absent!r} leaves a layer out, and once one is left "
                f"out every later one is too (networks have {fixed} to {len(self.layers)} layers)."
            )
        rules = validity if isinstance(validity, RuleValidity) else None
        for forbid in (rules.forbids if rules is not None else ()):
            if "forbid[" in forbid.reason:
                lines.append(f"# Not an architecture: {forbid.reason.split(' is forbidden')[0]}.")
        for rule in rules.count_rules if rules is not None else ():
            lines.append(f"# Every architecture: {rule.text}.")
        if self.table_only and self.table_data is not None:
            lines.append(f"# Only the {self.table_data.rows:,} architectures of the benchmark table are candidates.")
        return lines

    def _metric_line(self) -> str:
        name = self.metric.name or "the benchmark's metric"
        if self.higher_is_better:
            return f"# Metric: {name}; higher is better."
        return (
            f"# Metric: {name}; lower is better. Scores shown to you are negated, so that higher is "
            "better everywhere."
        )

    def _op_table(self) -> list[str]:
        entries = []
        for op in self.ops:
            info = self._op_info[op]
            module = info.module or f"{''.join(w.capitalize() for w in op.split('_'))}Op(C)"
            entries.append((f"{json.dumps(op)}:", f"lambda C: {module},", info.description))
        w_key = max(len(k) for k, _, _ in entries)
        w_mod = max(len(m) for _, m, _ in entries)
        body = [f"    {k:<{w_key}} {m:<{w_mod}}  # {d}" for k, m, d in entries]
        return ["OPS = {", *body, "}"]

    def _genotype_comment(self) -> str:
        first, last = self.layers[0].name, self.layers[-1].name
        if len(self.layers) == 1:
            return f'{{"{first}": op}}'
        return f'{{"{first}": op, ..., "{last}": op}}'

    def _cell_class(self) -> list[str]:
        lines = [
            "class Cell(nn.Module):",
            f"    def __init__(self, C, genotype):  # genotype: {self._genotype_comment()}",
            "        self.edge = {name: OPS[op](C) for name, op in genotype.items()}",
            "",
            "    def forward(self, x0):",
        ]
        out = max(j for _, j in self.edges)
        for j in range(1, out + 1):
            terms = [
                f'self.edge["{layer.name}"](x{i})'
                for layer, (i, jj) in zip(self.layers, self.edges, strict=True)
                if jj == j
            ]
            lines.append(f"        x{j} = {' + '.join(terms)}")
        lines.append(f"        return x{out}")
        return lines

    def _chain_class(self) -> list[str]:
        lines = [
            "class Net(nn.Module):",
            f"    def __init__(self, C, genotype):  # genotype: {self._genotype_comment()}",
            "        self.layer = {name: OPS[op](C) for name, op in genotype.items()}",
            "",
            "    def forward(self, x):",
        ]
        lines += [f'        x = self.layer["{layer.name}"](x)' for layer in self.layers]
        lines.append("        return x")
        return lines


# -- loading ----------------------------------------------------------------------------------------
def load_user_space(path: str | Path, read_table: bool = True) -> UserSpace:
    """Read, validate and build the space a TOML file declares (and verify its table, if any).

    ``read_table=False`` leaves the table out (for a script that measures the architectures to write it).

    Raises:
        UserError: one line naming the file and the first problem found.
    """
    path = Path(path)
    file = path.name
    spec, raw = read_space_file(path)

    def fail(msg: str) -> UserError:
        return UserError(f"{file}: {msg}")

    space = _build(spec, fail, path.resolve(), hashlib.sha256(raw).hexdigest())
    space.validity = build_rules(spec.validity, spec.kind, space.layers, fail)
    if spec.arch.omit_absent and not spec.validity.optional:
        raise fail("[arch] omit_absent leaves out absent optional layers: [validity] declares none (optional = [...])")
    if space.validity is not None and space.size() == 0:
        raise fail("[validity] leaves no valid architecture: every op combination is forbidden")
    dead = space.region_problem(space.full_mask())  # what every refined region is held to, the space first
    if dead is not None:
        raise fail(f"the space has no working architecture: {dead.split(': ', 1)[-1]}")
    if spec.validity.table_only and spec.table is None:
        raise fail("[validity] table_only needs a [table]: the table's architectures are the candidates")
    if spec.table is not None and read_table:
        table_path = _table_path(path, spec.table.file, fail)
        space.table_data = read_table_csv(
            space,
            table_path,
            arch_column=spec.table.arch_column,
            metric=space.metric,
            expected_sha256=spec.table.sha256,
            fidelity=spec.table.fidelity,
            declared_in=file,
        )
        if spec.validity.table_only:
            space.validity = TableValidity(space, space.table_data.index, space.validity)
    return space


def _table_path(space_file: Path, given: str, fail: _Fail) -> Path:
    """The table's path: inside the space file's folder (a sub-folder, or a link placed there, is fine).

    A shared space file must not make lapt read whatever its author names (``/etc/passwd``,
    ``../../.ssh/id_rsa``) and print a piece of it in an error; the folder is what the user handed over.
    """
    folder = Path(os.path.abspath(space_file.parent))
    lexical = Path(os.path.normpath(folder / given))
    if not lexical.is_relative_to(folder):
        raise fail(
            f"[table] file {given!r} is outside the folder of {space_file.name}: keep the table next to the space "
            "file or in a folder below it"
        )
    return lexical.resolve()


def _build(spec: SpaceFile, fail: _Fail, source: Path, sha: str) -> UserSpace:
    """Check what the schema cannot and assemble the :class:`UserSpace` (validity and table come after)."""
    if not _SPACE_NAME.match(spec.name):
        raise fail(f"name {spec.name!r} must be lower-case letters, digits, '_' or '-', starting with a letter")
    if spec.name in builtin_space_names():
        raise fail(f"name {spec.name!r} is a built-in space; choose another name")
    _check_tasks(spec.tasks, fail)
    ops = _check_ops(spec, fail)
    layers, edges = _check_layers(spec, fail)
    arch = _check_arch(spec, layers, fail)
    search = spec.search
    if search.tournament > search.population:
        raise fail(f"[search] tournament ({search.tournament}) cannot exceed population ({search.population})")
    function, network = _check_evaluator(spec, source.parent, fail)
    return UserSpace(
        name=spec.name,
        title=spec.title,
        kind=spec.kind,
        layers=layers,
        op_info=ops,
        arch=arch,
        tasks=spec.tasks,
        defaults=SearchDefaults(**search.model_dump()),
        metric=_check_metric(spec, fail),
        function=function,
        network=network,
        edges=edges,
        notes=spec.notes,
        source=source,
        spec_sha256=sha,
    )


def _check_metric(spec: SpaceFile, fail: _Fail) -> MetricColumns:
    entry = spec.metric
    if "\n" in entry.name:
        raise fail("[metric] name must be one line")
    if not entry.validation and not entry.test:
        raise fail("[metric] names no column: give validation, test or both")
    for key, pattern in (("validation", entry.validation), ("test", entry.test)):
        if pattern and "{task}" not in pattern and len(spec.tasks) != 1:
            raise fail(f"[metric] {key} = {pattern!r} must contain {{task}} (the space has {len(spec.tasks)} tasks)")
        if pattern.replace("{task}", "").count("{") or pattern.replace("{task}", "").count("}"):
            raise fail(f"[metric] {key} = {pattern!r}: the only placeholder is {{task}}")
    if entry.validation and entry.validation == entry.test:
        raise fail(f"[metric] validation and test name the same column {entry.validation!r}")
    return MetricColumns(
        name=entry.name.strip(),
        higher_is_better=entry.higher_is_better,
        validation=entry.validation,
        test=entry.test,
    )


def _check_evaluator(spec: SpaceFile, folder: Path, fail: _Fail) -> tuple[CodeRef | None, CodeRef | None]:
    entry = spec.evaluator
    if entry is None:
        return None, None
    if entry.function is None and entry.network is None:
        raise fail("[evaluator] names no code: give function = \"MODULE:FUNCTION\", network = ..., or both")
    where = (folder / entry.path).resolve()
    if not where.is_dir():
        raise fail(f"[evaluator] path {entry.path!r} is not a folder (it is relative to the space file)")
    refs: list[CodeRef | None] = []
    for key, text in (("function", entry.function), ("network", entry.network)):
        if text is None:
            refs.append(None)
            continue
        try:
            ref = CodeRef.parse(text, where, what=f"[evaluator] {key}")
            ref.files()  # the module must exist now, not at the first evaluation
        except UserError as e:
            raise fail(str(e)) from e
        refs.append(ref)
    return refs[0], refs[1]


def _check_tasks(tasks: Sequence[str], fail: _Fail) -> None:
    seen: set[str] = set()
    for task in tasks:
        if not _TASK.match(task):
            raise fail(f"task name {task!r} must be letters, digits, '_', '.', '+' or '-'")
        if task.endswith("_test"):
            raise fail(f"task name {task!r} must not end in '_test' (that suffix names test columns)")
        if task in seen:
            raise fail(f"task {task!r} is listed twice")
        seen.add(task)


def _check_ops(spec: SpaceFile, fail: _Fail) -> dict[str, OpInfo]:
    out: dict[str, OpInfo] = {}
    for op, entry in spec.ops.items():
        if not _IDENT.match(op):
            raise fail(
                f"op name {op!r} must be an ASCII identifier (ASCII letters, digits, '_'; not starting with a digit)"
            )
        for what, text in (("description", entry.description), ("module", entry.module or "")):
            if "\n" in text:
                raise fail(f"the {what} of op {op!r} must be one line")
        out[op] = OpInfo(description=entry.description.strip(), module=entry.module)
    return out


def _check_layers(spec: SpaceFile, fail: _Fail) -> tuple[tuple[LayerSpec, ...], tuple[tuple[int, int], ...]]:
    layers: list[LayerSpec] = []
    edges: list[tuple[int, int]] = []
    for k, entry in enumerate(spec.layers):
        where = f"layers[{k}]"
        unknown = [op for op in entry.ops if op not in spec.ops]
        if unknown:
            raise fail(f"{where}: op {unknown[0]!r} is not declared in [ops] (declared: {', '.join(spec.ops)})")
        if len(set(entry.ops)) != len(entry.ops):
            raise fail(f"{where}: an op is listed twice in {entry.ops}")
        if spec.kind == "cell":
            if entry.name is not None:
                raise fail(f"{where}: cell layers are named by their edge; remove 'name'")
            if entry.edge is None:
                raise fail(f"{where}: missing field 'edge' (a cell layer is an edge such as \"0->1\")")
            m = _EDGE.match(entry.edge)
            if not m:
                raise fail(f'{where}: bad edge {entry.edge!r}: write it as "i->j" with node numbers')
            i, j = int(m.group(1)), int(m.group(2))
            if i >= j:
                raise fail(f"{where}: bad edge {entry.edge!r}: edges go from a lower to a higher node (i<j)")
            if (i, j) in edges:
                raise fail(f"{where}: edge {entry.edge!r} is declared twice")
            edges.append((i, j))
            name = f"edge_{i}_{j}"
            description = entry.description or f"edge from node {i} to node {j}"
        else:
            if entry.edge is not None:
                raise fail(f"{where}: chain layers have no 'edge' (use kind = \"cell\" for a DAG)")
            name = entry.name if entry.name is not None else f"layer_{k + 1}"
            if not _IDENT.match(name) or name in _RESERVED_LAYER_NAMES or name.startswith("edge_"):
                raise fail(f"{where}: layer name {name!r} must be an ASCII identifier, not 'rationale' nor 'edge_*'")
            if any(layer.name == name for layer in layers):
                raise fail(f"{where}: layer name {name!r} is used twice")
            description = entry.description or f"layer {k + 1} of the chain"
        layers.append(LayerSpec(name=name, ops=tuple(entry.ops), description=description))
    if edges:
        _check_dag(edges, fail)
    return tuple(layers), tuple(edges)


def _check_dag(edges: Sequence[tuple[int, int]], fail: _Fail) -> None:
    """Nodes 0..N: every node but 0 has an in-edge, every node but N an out-edge (nothing dangles)."""
    out = max(j for _, j in edges)
    targets = {j for _, j in edges}
    sources = {i for i, _ in edges}
    for node in range(1, out + 1):
        if node not in targets:
            raise fail(f"bad edges: node {node} has no incoming edge (nodes must be numbered 0..{out} with no gaps)")
    for node in range(out):
        if node not in sources:
            raise fail(f"bad edges: node {node} has no outgoing edge, so it never reaches the output node {out}")


def _check_arch(spec: SpaceFile, layers: Sequence[LayerSpec], fail: _Fail) -> ArchFormat:
    entry = spec.arch
    used = list(dict.fromkeys(op for layer in layers for op in layer.ops))
    if entry.format == "ops_joined":
        sep = "-" if entry.separator is None else entry.separator
        if not sep:
            raise fail("[arch] ops_joined needs a non-empty separator")
        clash = [op for op in used if sep in op]
        if clash:
            raise fail(f"[arch] separator {sep!r} occurs in op name {clash[0]!r}; choose another separator")
        return ArchFormat(
            format="ops_joined", separator=sep, prefix=entry.prefix, suffix=entry.suffix, omit_absent=entry.omit_absent
        )
    sep = entry.separator or ""
    symbols: dict[str, str] = {}
    for op in used:
        symbol = spec.ops[op].symbol
        if symbol is None:
            raise fail(f"[arch] format 'digits' needs a symbol for op {op!r} (ops.{op}.symbol)")
        if sep and symbol in sep:
            raise fail(f"[arch] symbol {symbol!r} of op {op!r} occurs in the separator {sep!r}")
        other = next((o for o, s in symbols.items() if s == symbol), None)
        if other is not None:
            raise fail(f"[arch] ops {other!r} and {op!r} share the symbol {symbol!r}")
        symbols[op] = symbol
    return ArchFormat(
        format="digits",
        separator=sep,
        prefix=entry.prefix,
        suffix=entry.suffix,
        symbols=symbols,
        omit_absent=entry.omit_absent,
    )
