"""``summary.md`` and the plots, computed only from ``results.csv`` and ``curves.json``.

The bench calls :func:`write_report` after writing its data files and ``lapt report DIR`` calls it
again, so a report can be regenerated (or restyled) without rerunning anything, and the two always
agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from lapt.errors import UserError, environment_failure
from lapt.experiments.files import BENCH, CURVES, RESULTS, SUMMARY, CurvesFile, ResultRow, read_curves, read_results
from lapt.experiments.plan import LABELS, BenchConfig, space_label
from lapt.experiments.who_won import who_won_markdown
from lapt.files.outputs import check_writable_dir
from lapt.runs.directory import atomic_write
from lapt.search.metrics import mean_std


def _fmt(values: Sequence[float | None], digits: int) -> str:
    mean, std, n = mean_std(values)
    return "n/a" if n == 0 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _digits(curves: CurvesFile) -> int:
    """Accuracies read well with 2 decimals; TNB101's losses and SSIM-like metrics need 4."""
    refs = [abs(r.optimum_val) for r in curves.references.values()]
    return 2 if refs and min(refs) >= 5 else 4


def _metric_name(curves: CurvesFile) -> str:
    """What the tables report: NB201's test accuracy, another benchmark's test or validation metric."""
    if curves.metric == "val":
        return "validation metric"
    return "test accuracy" if curves.config.space == "nb201" else "test metric"


def _selection_text(curves: CurvesFile, metric: str) -> str:
    """Which split selects and which is reported, and which way is better."""
    if curves.selection == "test":
        text = (
            f"Selection uses the test metric (the benchmark publishes no validation metric); the tables report the "
            f"**{metric}** of the selected architecture."
        )
    elif curves.metric == "test":
        text = f"Selection is always by validation; the tables report the **{metric}** of the selected architecture."
    else:
        text = (
            f"Selection is always by validation; the tables report the **{metric}** of the selected architecture "
            "(the benchmark publishes no test column, so the validation metric is reported)."
        )
    if not curves.higher_is_better:
        text += " **Lower is better**: the optimum is the lowest value, and means are of the metric itself."
    elif curves.config.space == "tnb101":
        text += " room_layout is a negative loss: higher is better."
    return text


def _same_task_note(cfg: BenchConfig) -> list[str]:
    """A bench with ``--allow-same-task`` pairs says, before any table, that they are not transfers."""
    same = [p.label for p in cfg.pairs if p.target in p.sources]
    if not same:
        return []
    return [
        f"**Learned on the target itself** (`--allow-same-task`): {', '.join(same)}. LAPT's principles come from "
        "the target's own table, so these rows measure search with principles from the target, not transfer.",
        "",
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def _final_cell(budget: int, digits: int) -> Callable[[list[ResultRow]], str]:
    def cell(rs: list[ResultRow]) -> str:
        return _fmt([r.finals.get(budget) for r in rs], digits)

    return cell


def _success_cell(rs: list[ResultRow]) -> str:
    cell = f"{sum(r.reached_top for r in rs) / len(rs):.2f} (opt {sum(r.reached_optimum for r in rs) / len(rs):.2f})"
    firsts = [r.evals_to_top for r in rs if r.evals_to_top is not None]
    return f"{cell}; top after {sum(firsts) / len(firsts):.1f}" if firsts else cell


def _failures_cell(rs: list[ResultRow]) -> str:
    """Failed evaluations of a method on a pair, over its seeds, by cause ("not counted": an older bench)."""
    counted = [r for r in rs if r.failed_missing is not None]
    if not counted:
        return "not counted"
    missing = sum(r.failed_missing or 0 for r in counted)
    invalid = sum(r.failed_invalid or 0 for r in counted)
    error = sum(r.failed_error or 0 for r in counted)
    evaluations = sum(r.evaluations for r in counted)
    cell = f"{missing + invalid + error} of {evaluations}"
    if missing + invalid + error:
        cell += f" ({missing} not in table, {invalid} refused by rules, {error} errors)"
    if len(counted) < len(rs):
        cell += f"; {len(rs) - len(counted)} run(s) not counted"
    return cell


def _check(rows: list[ResultRow], curves: CurvesFile) -> None:
    cfg = curves.config
    pairs = {p.label for p in cfg.pairs}
    for r in rows:
        if r.pair not in pairs or r.method not in cfg.methods or r.space != cfg.space:
            raise UserError(
                f"results.csv row ({r.method}, {r.pair}, seed {r.seed}) does not belong to the bench in curves.json"
            )


def summary_markdown(rows: list[ResultRow], curves: CurvesFile) -> str:
    """The tables: the paper's metric, final metric per budget, success rates, LLM usage, oracle regions."""
    _check(rows, curves)
    cfg = curves.config
    by: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for r in rows:
        by[(r.pair, r.method)].append(r)
    methods = cfg.methods
    pairs = [p.label for p in cfg.pairs]
    header = ["pair", *(LABELS[m] for m in methods)]
    digits = _digits(curves)
    metric = _metric_name(curves)
    seeds = cfg.seeds
    seed_text = (
        f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]})"
        if seeds == list(range(seeds[0], seeds[-1] + 1))
        else (f"{len(seeds)} seeds {seeds}")
    )

    def grid(cell: Callable[[list[ResultRow]], str]) -> list[list[str]]:
        return [[p, *(cell(by[(p, m)]) if by[(p, m)] else "-" for m in methods)] for p in pairs]

    reasoner = cfg.reasoner if cfg.llm is None else f"{cfg.reasoner} ({cfg.llm.get('model')})"
    out = [
        f"# LAPT bench: {space_label(cfg.space)}, budget {cfg.budget}, {seed_text}",
        "",
        f"Reasoner: {reasoner}. Wall time of the runs: {curves.wall_s:.1f} s with {curves.workers} worker(s)"
        + (
            f" (a continued bench: {curves.continued_runs} run(s) came from the journal of an interrupted one, "
            "and this time is of the rest only). "
            if curves.continued_runs
            else ". "
        )
        + f"Rows: {len(rows)} (method x pair x seed).",
        "",
        *_same_task_note(cfg),
        _selection_text(curves, metric),
        "Cells are mean ± std over seeds (numpy's std, ddof=0). Every method uses the same seeds; REA and "
        "random search never see the source task, so pairs with the same target show the same baseline numbers. "
        f"Because selection is by validation, the reported {metric} can drop when the incumbent improves.",
        "",
        *who_won_markdown(rows, pairs, methods, digits, metric, curves.higher_is_better),
        "## The paper's metric",
        "",
        "Evaluations until the incumbent's validation metric reaches the global optimum, else the top-0.1 % "
        "threshold, else the budget; then the " + metric + " of the incumbent at that point.",
        "",
    ]
    out += _table(
        header,
        grid(
            lambda rs: (
                _fmt([float(r.paper_evals) for r in rs], 1) + " evals; " + _fmt([r.paper_metric for r in rs], digits)
            )
        ),
    )
    out += [
        "Ceilings (best-by-validation cell of each target): "
        + ", ".join(
            f"{p}: {curves.references[p].optimum_metric:.{digits}f}"
            for p in pairs
            if curves.references[p].optimum_metric is not None
        ),
        "",
    ]
    for b in sorted({b for r in rows for b in r.finals}):
        out += [f"## Final {metric} at {b} evaluations", ""]
        out += _table(header, grid(_final_cell(b, digits)))
    out += [
        f"## Success within {cfg.budget} evaluations",
        "",
        "Share of seeds whose incumbent reached a top-0.1 % cell (by validation), and the global optimum; "
        "then the mean number of evaluations until the first top-0.1 % cell, over the seeds that reached one "
        "(the paper's metric above counts until the optimum when a run reaches it, however late).",
        "",
    ]
    out += _table(header, grid(_success_cell))
    out += [
        "## Failed evaluations",
        "",
        "Evaluations that gave no result, summed over the seeds, out of all evaluations made: architectures the "
        "target's table has no value for, architectures the space's validity rules refuse, and evaluator errors.",
        "",
    ]
    out += _table(header, grid(_failures_cell))
    out += ["## Evaluations used and LLM usage", ""]
    usage_rows = []
    for m in methods:
        rs = [r for r in rows if r.method == m]
        if not rs:
            continue
        early = sum(r.evaluations < r.budget for r in rs)
        usage_rows.append(
            [
                LABELS[m],
                str(len(rs)),
                _fmt([float(r.evaluations) for r in rs], 1),
                f"{early}/{len(rs)}",
                _fmt([float(r.adaptations) for r in rs], 1),
                str(sum(r.llm_calls for r in rs)),
                str(sum(r.input_tokens for r in rs)),
                str(sum(r.output_tokens for r in rs)),
                str(sum(r.principle_changes or 0 for r in rs)),
                str(sum(r.failed_decisions for r in rs)),
                f"{sum(r.degraded for r in rs)}/{len(rs)}",
            ]
        )
    out += _table(
        [
            "method",
            "runs",
            "evaluations",
            "ended early",
            "adaptations",
            "LLM calls",
            "input tokens",
            "output tokens",
            "principle changes",
            "failed agent decisions",
            "degraded runs",
        ],
        usage_rows,
    )
    out += [
        "A principle change is an op or a principle that the part-by-part judgement of an answer dropped (a rule "
        "broken, or a claim the source data contradicts). A failed agent decision is one without a valid answer "
        "(the offline agents stood in, or the run kept its previous mask or principles); a degraded run is one an "
        "agent failed, see each run's summary.",
        "",
    ]
    out += [
        "A run ends early when its region has no unevaluated architecture left (the oracle region is smaller "
        "than a large budget; the LAPT graph widens an exhausted region instead); its incumbent then stands for "
        "every larger budget.",
        "",
        "## Oracle regions (a ceiling: computed from the target's own table)",
        "",
        f"Among regions allowing exactly {cfg.max_ops} op(s) per layer that contain "
        "the target's best-by-validation cell, the one with the best mean validation metric "
        "(see lapt/experiments/oracle.py). No real method may see this. It bounds the quality of a region (its mean), "
        "not the outcome of a finite search: a lucky search elsewhere can end higher.",
        "",
    ]
    oracle_rows = []
    for p in pairs:
        o = curves.oracle[p]
        text = "; ".join(f"{layer}: {'/'.join(ops)}" for layer, ops in o.ops.items())
        oracle_rows.append([p, str(o.size), f"{o.mean_val:.{digits}f}", text])
    out += _table(["pair", "size", "mean validation", "allowed ops"], oracle_rows)
    return "\n".join(out)


def write_report(bench_dir: Path) -> None:
    """(Re)write ``summary.md`` and the plots of ``bench_dir`` from its data files."""
    from lapt.experiments.plots import plot_curves, plot_masks

    if not bench_dir.is_dir():
        raise UserError(f"{bench_dir} is not a directory")
    if not (bench_dir / RESULTS).exists() and (bench_dir / BENCH).exists():
        raise UserError(
            f"{bench_dir} holds an unfinished bench (its journal, no results yet): run the same `lapt bench` "
            f"command with --out {bench_dir} to continue it"
        )
    rows = read_results(bench_dir / RESULTS)
    curves = read_curves(bench_dir / CURVES)
    check_writable_dir(bench_dir, "lapt report")
    try:
        atomic_write(bench_dir / SUMMARY, summary_markdown(rows, curves))
        plot_curves(curves, bench_dir)
        plot_masks(curves, bench_dir)
    except OSError as e:
        for tmp in bench_dir.glob(".*.tmp"):  # a write cut short leaves its temporary file
            tmp.unlink(missing_ok=True)
        failure = environment_failure(e, f"cannot write the report in {bench_dir}")
        if failure is None:
            raise
        raise failure from e
