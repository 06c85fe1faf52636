"""The bench's figures, drawn from ``curves.json`` alone (matplotlib, Agg backend: no display needed).

* ``curves.png``: best-so-far reported metric versus evaluations, mean over seeds with a ±1 std band,
  one panel per pair; the oracle region is dashed (a ceiling) and the target's best cell dotted.
* ``masks.png``: for each LAPT method and pair, the share of evaluations made under a refined mask
  that allowed each op on each layer.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lapt.experiments.files import CURVES_PNG, MASKS_PNG, CurvesFile
from lapt.experiments.plan import LABELS, LAPT_METHODS, space_label

COLORS = {"lapt": "C0", "lapt-offline": "C4", "lapt-transfer": "C2", "rea": "C1", "random": "C7", "rea-oracle": "C3"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def padded(curves: list[list[float | None]], budget: int) -> np.ndarray:
    """Seeds x budget array of best-so-far values: NaN before the first success, and a run that ended
    early keeps its last value (its incumbent) up to the budget."""
    out = np.full((len(curves), budget), np.nan)
    for i, curve in enumerate(curves):
        vals = [np.nan if v is None else float(v) for v in curve[:budget]]
        if vals:
            out[i, : len(vals)] = vals
            out[i, len(vals) :] = vals[-1]
    return out


def plot_curves(curves: CurvesFile, out: Path) -> Path:
    """Write ``curves.png``: one panel per pair, one line (mean) and band (±std) per method."""
    plt = _pyplot()
    cfg = curves.config
    pairs = [p.label for p in cfg.pairs]
    ncols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    x = np.arange(1, cfg.budget + 1)
    ylabel = "best-so-far test" if curves.metric == "test" else "best-so-far validation"
    if not curves.higher_is_better:
        ylabel += " (lower is better)"
    for ax, pair in zip(axes.flat, pairs, strict=False):
        for method in cfg.methods:
            runs = curves.curves.get(method, {}).get(pair)
            if not runs:
                continue
            arr = padded(runs, cfg.budget)
            with warnings.catch_warnings():  # columns where no seed has a success yet are NaN, on purpose
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(arr, axis=0), np.nanstd(arr, axis=0)
            style = {"rea-oracle": "--", "random": "-."}.get(method, "-")
            ax.plot(x, mean, style, color=COLORS[method], label=LABELS[method], lw=1.4)
            ax.fill_between(x, mean - std, mean + std, color=COLORS[method], alpha=0.15, lw=0)
        ref = curves.references[pair].optimum_metric
        if ref is not None:
            ax.axhline(ref, color="k", ls=":", lw=0.8, label="best cell (by validation)")
        ax.set_title(pair, fontsize=9)
        ax.set_xlabel("evaluations")
        ax.set_ylabel(ylabel)
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    title = f"{space_label(cfg.space)}: best-so-far {curves.metric} (mean ± std over {len(cfg.seeds)} seeds)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    path = out / CURVES_PNG
    _save(fig, path)
    plt.close(fig)
    return path


def plot_masks(curves: CurvesFile, out: Path) -> Path | None:
    """Write ``masks.png`` (layers x ops heatmaps per LAPT method and pair); None without LAPT runs."""
    methods = [m for m in LAPT_METHODS if m in curves.masks]
    if not methods:
        (out / MASKS_PNG).unlink(missing_ok=True)  # never leave a figure of another bench behind
        return None
    plt = _pyplot()
    pairs = [p.label for p in curves.config.pairs]
    fig, axes = plt.subplots(
        len(methods),
        len(pairs),
        figsize=(2.6 * len(pairs) + 1.2, 2.9 * len(methods) + 0.4),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for r, method in enumerate(methods):
        for c, pair in enumerate(pairs):
            ax = axes[r][c]
            stats = curves.masks[method].get(pair)
            if stats is None or stats.evaluations == 0:
                ax.axis("off")
                continue
            share = np.asarray(stats.counts, dtype=float) / stats.evaluations
            image = ax.imshow(share, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
            for i in range(share.shape[0]):
                for k in range(share.shape[1]):
                    color = "white" if share[i, k] < 0.6 else "black"
                    ax.text(k, i, f"{share[i, k]:.2f}", ha="center", va="center", fontsize=6, color=color)
            ax.set_xticks(
                range(len(stats.ops)),
                [op.replace("nor_", "").replace("_connect", "") for op in stats.ops],
                rotation=45,
                ha="right",
                fontsize=7,
            )
            ax.set_yticks(range(len(stats.layers)), [name.removeprefix("edge_") for name in stats.layers], fontsize=7)
            ax.set_title(f"{LABELS[method]}\n{pair}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="share of evaluations with the op allowed")
    path = out / MASKS_PNG
    _save(fig, path)
    plt.close(fig)
    return path
