"""Figures: compute at threshold against publication date (the paper's figure), and learning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from algoprogress.fileio import atomic_path
from algoprogress.trend import decimal_year


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def efficiency_figure(points: pd.DataFrame, trend: dict, threshold_label: str, path: str | Path) -> None:
    """Compute at threshold (log axis) against date, with the OLS fit; not-reached models as lower bounds.

    ``points`` columns: model, published, compute (NaN if not reached), lower_bound.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    years = points["published"].map(decimal_year)
    reached = points["compute"].notna()
    ax.scatter(years[reached], points.loc[reached, "compute"], color="tab:blue", zorder=3, label="reached threshold")
    if (~reached).any():
        ax.scatter(years[~reached], points.loc[~reached, "lower_bound"], marker="^", facecolors="none",
                   edgecolors="grey", zorder=3, label="not reached (compute spent, lower bound)")
    for year, row in zip(years, points.itertuples()):
        value = row.compute if np.isfinite(row.compute) else row.lower_bound
        ax.annotate(row.model, (year, value), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if trend.get("doubling_time_months"):
        span = np.linspace(years.min() - 0.3, years.max() + 0.3, 50)
        fitted = 2.0 ** (trend["intercept"] + trend["slope_log2_per_year"] * span)
        low, high = trend.get("doubling_time_months_low"), trend.get("doubling_time_months_high")
        interval = f"{low:.1f}-{high:.1f}" if low and high else "unbounded"
        label = (f"OLS fit: doubling every {trend['doubling_time_months']:.1f} months "
                 f"({trend['confidence_level']:.0%} CI {interval}), R$^2$={trend['r_squared']:.2f}")
        ax.plot(span, fitted, color="tab:red", lw=1.5, label=label)
    factor = trend.get("efficiency_factor_newest_over_reference")
    if factor:
        ax.text(0.98, 0.97, f"{factor:.1f}x less compute: {trend['reference_model']} -> {trend['newest_model']}",
                transform=ax.transAxes, ha="right", va="top", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlabel("publication date (year)")
    ax.set_ylabel("training FLOP to reach threshold")
    ax.set_title(f"Training compute to reach {threshold_label}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png")
    plt.close(fig)


def learning_curves_figure(curves: pd.DataFrame, metric: str, threshold: float, path: str | Path) -> None:
    """Every curve: metric against cumulative training compute, with the threshold line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    for (model, seed), curve in curves.sort_values("step").groupby(["model", "seed"], sort=False):
        curve = curve.loc[curve["train_flops"] > 0]
        ax.plot(curve["train_flops"], curve[metric], marker=".", lw=1, label=f"{model} (seed {seed})")
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {metric} >= {threshold:g}")
    ax.set_xscale("log")
    ax.set_xlabel("cumulative training FLOP")
    ax.set_ylabel(metric)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png")
    plt.close(fig)
