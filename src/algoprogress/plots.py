"""Figures: the paper's figure (compute to threshold against date), comparisons, learning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from algoprogress.fileio import atomic_path
from algoprogress.trend import confidence_band, decimal_year

FRONTIER_COLOUR, OTHER_COLOUR, FIT_COLOUR = "tab:blue", "0.6", "tab:red"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png")
    plt.close(fig)


def _interval_text(fit: dict) -> str:
    low, high = fit.get("doubling_time_months_low"), fit.get("doubling_time_months_high")
    if low is None and high is None:
        return "no interval"
    return f"{fit['confidence_level']:.0%} CI {low:.1f}-{high:.1f}" if high else f"{fit['confidence_level']:.0%} CI >= {low:.1f}, unbounded"


def efficiency_panel(ax, points: pd.DataFrame, fits: dict, title: str, level: float, robust: bool,
                     fitted_set: str = "frontier") -> None:
    """One panel of the paper's figure: frontier points highlighted, others grey, fit with band."""
    years = points["published"].map(decimal_year)
    reached = points["compute"].notna()
    frontier = points["on_frontier"].astype(bool) & reached
    ax.scatter(years[frontier], points.loc[frontier, "compute"], color=FRONTIER_COLOUR, zorder=3,
               label="efficiency frontier")
    others = reached & ~frontier
    if others.any():
        ax.scatter(years[others], points.loc[others, "compute"], color=OTHER_COLOUR, zorder=3, label="other models")
    if (~reached).any():
        ax.scatter(years[~reached], points.loc[~reached, "lower_bound"], marker="^", facecolors="none",
                   edgecolors=OTHER_COLOUR, zorder=3, label="not reached (compute spent: lower bound)")
    for year, row in zip(years, points.itertuples()):
        value = row.compute if np.isfinite(row.compute) else row.lower_bound
        ax.annotate(str(row.model), (year, value), textcoords="offset points", xytext=(5, 4), fontsize=7)

    fit = fits[fitted_set]
    fitted_points = points.loc[frontier] if fitted_set == "frontier" else points.loc[reached]
    if fit.get("doubling_time_months"):
        grid = np.linspace(years.min() - 0.3, years.max() + 0.3, 60)
        line = 2.0 ** (fit["intercept"] + fit["slope_log2_per_year"] * grid)
        ax.plot(grid, line, color=FIT_COLOUR, lw=1.5,
                label=f"fit on {fitted_set}: doubling every {fit['doubling_time_months']:.1f} months "
                      f"({_interval_text(fit)}), R$^2$={fit['r_squared']:.2f}, n={fit['n']}")
        band = confidence_band(fitted_points, grid, level, robust)
        if band is not None:
            ax.fill_between(grid, band[1], band[2], color=FIT_COLOUR, alpha=0.12, lw=0)
    factor = fits["all"].get("efficiency_factor_newest_over_reference")
    if factor:
        ax.text(0.98, 0.97, f"{factor:.1f}x less compute: {fits['all']['reference_model']} -> "
                f"{fits['all']['newest_model']}", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("publication date (year)")
    ax.set_ylabel("training FLOP to reach the threshold")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, loc="lower left")


def efficiency_figure(panels: list[dict], path: str | Path, level: float = 0.95, robust: bool = False) -> None:
    """The paper's figure, one panel per threshold. Each panel: {points, fits, title}."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 4.8 * len(panels)), dpi=150, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        efficiency_panel(ax, panel["points"], panel["fits"], panel["title"], level, robust)
    _save(fig, path)


def measured_vs_published_figure(measured: pd.DataFrame, measured_label: str, published: pd.DataFrame,
                                 published_label: str, path: str | Path) -> None:
    """Efficiency factor over each set's reference (its earliest model) against date, both sets.

    The two sets use different data and scales, so they are drawn relative to their own reference.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    for points, label, colour, marker in ((measured, measured_label, "tab:blue", "o"),
                                          (published, published_label, "tab:orange", "s")):
        points = points.loc[points["compute"].notna()].assign(year=lambda d: d["published"].map(decimal_year))
        if points.empty:
            continue
        reference = points.sort_values("year", kind="stable").iloc[0]
        factor = reference["compute"] / points["compute"]
        ax.scatter(points["year"], factor, color=colour, marker=marker, zorder=3, label=label)
        for year, value, model in zip(points["year"], factor, points["model"]):
            ax.annotate(str(model), (year, value), textcoords="offset points", xytext=(4, 3), fontsize=7, color=colour)
        if len(points) >= 2 and points["year"].nunique() >= 2:
            slope, intercept = np.polyfit(points["year"], np.log2(factor), 1)
            grid = np.linspace(points["year"].min(), points["year"].max(), 20)
            ax.plot(grid, 2.0 ** (intercept + slope * grid), color=colour, lw=1,
                    label=f"{label}: doubling every {12 / slope:.1f} months" if slope > 0 else label + " fit")
    ax.set_yscale("log")
    ax.set_xlabel("publication date (year)")
    ax.set_ylabel("efficiency factor over the earliest model")
    ax.set_title("Measured miniature and published results, each relative to its reference", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)


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
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)


def model_curve_figure(curves: pd.DataFrame, crossings: pd.DataFrame, thresholds: list[dict], path: str | Path) -> None:
    """One model: each threshold's metric against compute, threshold lines, crossings marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=150)
    metrics = list(dict.fromkeys(t["metric"] for t in thresholds))
    for metric in metrics:
        for seed, curve in curves.sort_values("step").groupby("seed"):
            curve = curve.loc[curve["train_flops"] > 0]
            ax.plot(curve["train_flops"], curve[metric], marker=".", lw=1, label=f"{metric}, seed {seed}")
    for threshold in thresholds:
        ax.axhline(threshold["value"], color="black", ls="--", lw=0.8)
        ax.text(ax.get_xlim()[0], threshold["value"], f" {threshold['name']}", va="bottom", fontsize=7)
        rows = crossings.loc[(crossings["threshold_name"] == threshold["name"]) & crossings["reached"]]
        ax.scatter(rows["train_flops"], np.full(len(rows), threshold["value"]), marker="x", s=60, color="tab:red",
                   zorder=4)
    model = curves["model"].iloc[0] if len(curves) else ""
    ax.set_xscale("log")
    ax.set_xlabel("cumulative training FLOP")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{model}: crossings marked x", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)
