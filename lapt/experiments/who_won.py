"""The "Who won" section of ``summary.md``: LAPT against REA and against transfer only, target by target.

For each budget the bench reports (10, 20, 50, ... up to its budget), one table: per pair, the mean ± std
of LAPT, LAPT without adaptation (transfer only) and REA in the full space; Welch's t of LAPT against each
(:func:`lapt.experiments.stats.welch_t`); wins/ties/losses seed by seed; and the share of LAPT's evaluations
made outside its refined region. A verdict line counts the pairs where LAPT is better (t > 2) or worse
(t < -1). The subject is LAPT when the bench ran it, else transfer only (then compared with REA alone).

t and the wins are signed so that positive means better whichever way the metric runs: on a lower-is-better
metric (a latency, a loss) the t of the difference of means is negated and a win is a lower value, so the
verdict's bars (t > 2 better, t < -1 worse) read the same on every bench.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from lapt.experiments.files import ResultRow
from lapt.experiments.plan import LABELS
from lapt.experiments.stats import BETTER_T, WORSE_T, format_t, verdict, welch_t, win_tie_loss
from lapt.search.metrics import mean_std

SHORT = {"lapt": "LAPT", "lapt-offline": "offline miner", "lapt-transfer": "transfer only", "rea": "REA"}


def _fmt(values: Sequence[float | None], digits: int) -> str:
    mean, std, n = mean_std(values)
    return "n/a" if n == 0 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def who_won_markdown(
    rows: Sequence[ResultRow],
    pairs: Sequence[str],
    methods: Sequence[str],
    digits: int,
    metric: str,
    higher_is_better: bool = True,
) -> list[str]:
    """Markdown lines of the section; empty when the bench has nothing to compare.

    ``higher_is_better`` False (the metric is a cost) flips the sign of t and of each seed's comparison, so a
    positive t and a win still mean the subject did better.
    """
    subject = "lapt" if "lapt" in methods else "lapt-transfer" if "lapt-transfer" in methods else None
    rivals = [m for m in ("rea", "lapt-transfer", "lapt-offline") if m in methods and m != subject]
    if subject is None or not rivals:
        return []
    by: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for r in rows:
        by[(r.pair, r.method)].append(r)
    budgets = sorted({b for r in rows for b in r.finals})
    shown = [subject, *(m for m in ("lapt-offline", "lapt-transfer", "rea") if m in rivals)]
    sign = 1.0 if higher_is_better else -1.0

    def signed(v: float | None) -> float | None:
        return None if v is None else sign * v
    out = [
        "## Who won",
        "",
        f"Per pair, the {metric} of the incumbent after each number of evaluations: mean ± std over seeds for "
        + "; ".join(LABELS[m] for m in shown)
        + f". Welch's t of {SHORT[subject]} against each other method (t > {BETTER_T:g}: better beyond seed "
        f"noise; t < {WORSE_T:g}: probably worse); wins/ties/losses seed by seed (same seed, same budget); and the "
        f"share of {SHORT[subject]}'s evaluations made outside its refined region (the search may step outside it; "
        "see lapt/strategies/escape.py). REA is in the full space; transfer only is LAPT without adaptation."
        + (
            ""
            if higher_is_better
            else f" **Lower is better**: t is of the rival's mean minus {SHORT[subject]}'s and a win is a lower "
            "value, so a positive t and a win still mean better."
        ),
        "",
    ]
    for b in budgets:
        header = [
            "pair",
            *(LABELS[m] for m in shown),
            *(f"t vs {SHORT[m]}" for m in rivals),
            *(f"W/T/L vs {SHORT[m]}" for m in rivals),
            "outside",
        ]
        table = []
        ts: dict[str, list[float]] = {m: [] for m in rivals}
        for p in pairs:
            mine = by[(p, subject)]
            if not mine:
                continue
            finals = {m: [r.finals.get(b) for r in by[(p, m)]] for m in shown}
            cells = [p, *(_fmt(finals[m], digits) if by[(p, m)] else "-" for m in shown)]
            for m in rivals:
                t = welch_t([signed(v) for v in finals[subject]], [signed(v) for v in finals[m]]).t
                ts[m].append(t)
                cells.append(format_t(t))
            for m in rivals:
                a = {r.seed: signed(r.finals.get(b)) for r in mine}
                cells.append(str(win_tie_loss(a, {r.seed: signed(r.finals.get(b)) for r in by[(p, m)]})))
            shares = [r.outside_share for r in mine if r.outside_share is not None]
            cells.append(f"{100 * sum(shares) / len(shares):.0f}%" if shares else "-")
            table.append(cells)
        out += [f"### After {b} evaluations", ""]
        out += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in table]
        out.append("")
        lines = []
        for m in rivals:
            v = verdict(ts[m])
            lines.append(
                f"against {SHORT[m]}, better (t > {BETTER_T:g}) on {v.better} of {v.total} pair(s) and worse "
                f"(t < {WORSE_T:g}) on {v.worse}"
            )
        out += [f"{SHORT[subject]} " + "; ".join(lines) + ".", ""]
    return out
