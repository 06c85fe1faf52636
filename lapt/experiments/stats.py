"""Who won: the statistics the bench reports when it compares two methods over the same seeds.

* :func:`welch_t`: Welch's t statistic of the difference of two means (unequal variances, ``ddof=1``), with
  its Welch-Satterthwaite degrees of freedom. Over 30 seeds, ``t > 2`` is a difference seed noise rarely
  produces (two-sided p of about 0.05); the bench also flags ``t < -1``, a method that is probably worse.
* :func:`win_tie_loss`: seed by seed, how often the first method ended higher, equal or lower. Both methods
  ran with the same seed, so this pairs them the way the bench ran them.
* :func:`verdict`: the count of targets on which a method is better (t above a bar) or worse (t below one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BETTER_T = 2.0  # "better": Welch's t above this
WORSE_T = -1.0  # "worse": Welch's t below this


@dataclass(frozen=True)
class WelchT:
    """Welch's t of ``mean(a) - mean(b)`` and its degrees of freedom (``nan`` when it is undefined)."""

    t: float
    df: float


def _clean(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def welch_t(a: Sequence[float | None], b: Sequence[float | None]) -> WelchT:
    """Welch's t of ``a`` against ``b`` (missing values dropped).

    Undefined (``nan``) with fewer than 2 values on a side. When both samples have no spread the difference
    is exact: ``t`` is 0 for equal means and +/-inf otherwise.
    """
    xa, xb = _clean(a), _clean(b)
    if len(xa) < 2 or len(xb) < 2:
        return WelchT(math.nan, math.nan)
    ma, mb = sum(xa) / len(xa), sum(xb) / len(xb)
    va = sum((x - ma) ** 2 for x in xa) / (len(xa) - 1)
    vb = sum((x - mb) ** 2 for x in xb) / (len(xb) - 1)
    sa, sb = va / len(xa), vb / len(xb)
    se = math.sqrt(sa + sb)
    if se == 0:
        return WelchT(0.0 if ma == mb else math.copysign(math.inf, ma - mb), math.nan)
    df = (sa + sb) ** 2 / ((sa**2 / (len(xa) - 1) if sa else 0.0) + (sb**2 / (len(xb) - 1) if sb else 0.0))
    return WelchT((ma - mb) / se, df)


@dataclass(frozen=True)
class WinTieLoss:
    """Seed-by-seed comparison: wins, ties and losses of the first method."""

    wins: int
    ties: int
    losses: int

    def __str__(self) -> str:
        return f"{self.wins}/{self.ties}/{self.losses}"


def win_tie_loss(a: Mapping[int, float | None], b: Mapping[int, float | None], tol: float = 1e-9) -> WinTieLoss:
    """Over the seeds both ran (and both have a value): higher, equal (within ``tol``) or lower."""
    w = t = lo = 0
    for seed in sorted(set(a) & set(b)):
        x, y = a[seed], b[seed]
        if x is None or y is None or math.isnan(x) or math.isnan(y):
            continue
        if abs(x - y) <= tol * max(1.0, abs(x), abs(y)):
            t += 1
        elif x > y:
            w += 1
        else:
            lo += 1
    return WinTieLoss(w, t, lo)


@dataclass(frozen=True)
class Verdict:
    """Over a set of targets: how many were better (t > :data:`BETTER_T`) and worse (t < :data:`WORSE_T`)."""

    better: int
    worse: int
    total: int


def verdict(ts: Sequence[float]) -> Verdict:
    """Count the t statistics above the "better" bar and below the "worse" one (``nan`` counts as neither)."""
    return Verdict(
        better=sum(1 for t in ts if t > BETTER_T),
        worse=sum(1 for t in ts if t < WORSE_T),
        total=len(ts),
    )


def format_t(t: float) -> str:
    """``+2.4``, ``-0.3``, ``+inf``, or ``n/a``."""
    if math.isnan(t):
        return "n/a"
    if math.isinf(t):
        return "+inf" if t > 0 else "-inf"
    return f"{t:+.1f}"
