"""Figures: the paper's figure (compute to threshold against date), comparisons, learning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from algoprogress.config import FULL_WINDOW
from algoprogress.fileio import atomic_path
from algoprogress.thresholds import DEFAULT_TRIAL, with_trial_columns
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


def _legend(ax, **options) -> None:
    """A legend where something is labelled (a figure of empty input has nothing to name, and matplotlib warns)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**options)


def _interval_text(fit: dict, prefix: str = "") -> str:
    low, high = fit.get("doubling_time_months_low"), fit.get("doubling_time_months_high")
    if low is None and high is None:
        return f"{prefix}no interval"
    level = f"{fit['confidence_level']:.0%}"
    return f"{prefix}{level} {low:.1f}-{high:.1f}" if high else f"{prefix}{level} >= {low:.1f}, unbounded"


def fit_label(fit: dict, set_name: str, window: str) -> str:
    """The legend of a fitted line: doubling time, the published interval (calibrated against known truth) and the
    plain OLS one, R^2, n."""
    span = "" if window == FULL_WINDOW else f", window {window}"
    published = {**(fit.get("interval") or {}), "confidence_level": fit["confidence_level"]}
    label = (f"fit on {set_name}{span}: doubling every {fit['doubling_time_months']:.1f} months "
             f"({_interval_text(published, 'published ')}; {_interval_text(fit, 'OLS ')}")
    return label + f"), R$^2$={fit['r_squared']:.2f}, n={fit['n']}"


def efficiency_panel(ax, points: pd.DataFrame, fits: dict, title: str, level: float, robust: bool,
                     headline: dict) -> None:
    """One panel of the paper's figure: frontier points highlighted, others grey, lower bounds as open
    triangles, and the headline's set and window fitted with its confidence band."""
    set_name, window = headline["set"], headline["window"]
    fit = fits[window][set_name]
    years = points["published"].map(decimal_year)
    compute = pd.to_numeric(points["compute"], errors="coerce")
    resolved = compute.notna() & (compute > 0)
    frontier = points["on_frontier"].astype(bool) & resolved
    ax.scatter(years[frontier], compute[frontier], color=FRONTIER_COLOUR, zorder=3, label="efficiency frontier")
    others = resolved & ~frontier
    if others.any():
        ax.scatter(years[others], compute[others], color=OTHER_COLOUR, zorder=3, label="other models")
    bounds = ~resolved & points["lower_bound"].notna()
    if bounds.any():
        ax.scatter(years[bounds], points.loc[bounds, "lower_bound"], marker="^", facecolors="none",
                   edgecolors=OTHER_COLOUR, zorder=3, label="not reached (compute spent: lower bound)")
    for year, value, bound, model in zip(years, compute, points["lower_bound"], points["model"], strict=True):
        shown = value if np.isfinite(value) and value > 0 else bound
        if np.isfinite(shown):
            ax.annotate(str(model), (year, shown), textcoords="offset points", xytext=(5, 4), fontsize=7)
    too_low = points.loc[points["excluded"].str.startswith("threshold met at the first"), "model"].tolist() \
        if "excluded" in points else []
    if too_low:
        ax.text(0.02, 0.03, "threshold met at the first evaluation (too low, not drawn): " + ", ".join(too_low),
                transform=ax.transAxes, fontsize=6.5, va="bottom")
    if fit.get("doubling_time_months"):
        fitted = points.loc[points["model"].isin(fit["models"])]
        fitted_years = fitted["published"].map(decimal_year)
        grid = np.linspace(fitted_years.min() - 0.3, fitted_years.max() + 0.3, 60)
        line = 2.0 ** (fit["intercept"] + fit["slope_log2_per_year"] * grid)
        ax.plot(grid, line, color=FIT_COLOUR, lw=1.5, label=fit_label(fit, set_name, window))
        band = confidence_band(fitted, grid, level, robust)
        if band is not None:
            ax.fill_between(grid, band[1], band[2], color=FIT_COLOUR, alpha=0.12, lw=0)
    if fit.get("efficiency_factor"):
        interval = fit.get("interval") or {}
        trend = (f"; the trend's {interval['efficiency_factor_trend']:.1f}x, {fit['confidence_level']:.0%} "
                 f"{interval['efficiency_factor_low']:.1f}-{interval['efficiency_factor_high']:.1f}x"
                 if interval.get("efficiency_factor_low") else "")
        ax.text(0.98, 0.97, f"{fit['efficiency_factor']:.1f}x less compute: {fit['reference_model']} -> "
                f"{fit['best_model']}{trend} (Moore's law: {fit['moore_factor_same_span']:.1f}x)",
                transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("publication date (year)")
    ax.set_ylabel("training FLOP to reach the threshold")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, fontsize=6.5, loc="lower left")


def efficiency_figure(panels: list[dict], path: str | Path, level: float = 0.95, robust: bool = False) -> None:
    """The paper's figure, one panel per threshold. Each panel: {points, fits, title, headline}."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 4.8 * len(panels)), dpi=150, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        efficiency_panel(ax, panel["points"], panel["fits"], panel["title"], level, robust, panel["headline"])
    _save(fig, path)


def threshold_sweep_figure(sweep: pd.DataFrame, marked: list[dict], title: str, path: str | Path) -> None:
    """Doubling time against the threshold value, with its OLS interval; configured thresholds marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=150)
    sweep = sweep.assign(**{column: pd.to_numeric(sweep[column], errors="coerce") for column in (
        "threshold", "doubling_time_months", "doubling_time_months_low", "doubling_time_months_high")})
    fitted = sweep.loc[sweep["doubling_time_months"].notna()]
    if len(fitted):
        ax.plot(fitted["threshold"], fitted["doubling_time_months"], marker="o", color=FIT_COLOUR,
                label="doubling time (months)")
        high = fitted["doubling_time_months_high"].fillna(fitted["doubling_time_months"].max() * 3)
        low = fitted["doubling_time_months_low"].fillna(fitted["doubling_time_months"])
        ax.fill_between(fitted["threshold"], low, high, color=FIT_COLOUR, alpha=0.15, lw=0,
                        label=f"{fitted['confidence_level'].iloc[0]:.0%} OLS interval (clipped where unbounded)")
        for row in fitted.itertuples():
            ax.annotate(f"n={row.n}", (row.threshold, row.doubling_time_months), textcoords="offset points",
                        xytext=(0, 6), fontsize=6, ha="center")
    else:
        ax.text(0.5, 0.5, "no threshold value with two dates or more to fit", transform=ax.transAxes, ha="center")
    for threshold in marked:
        ax.axvline(threshold["value"], color="black", ls="--", lw=0.8)
        ax.text(threshold["value"], ax.get_ylim()[1], f" {threshold['name']}", rotation=90, va="top", fontsize=7)
    ax.set_xlabel(f"threshold ({sweep['metric'].iloc[0] if len(sweep) else ''})")
    ax.set_ylabel("doubling time of efficiency (months)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    _legend(ax, fontsize=7, loc="upper left")
    _save(fig, path)


def measured_vs_published_figure(measured: pd.DataFrame, measured_label: str, published: pd.DataFrame,
                                 published_label: str, path: str | Path, title: str) -> None:
    """Efficiency factor over each set's reference (its earliest model) against date, both sets.

    The two sets use different data and scales, so they are drawn relative to their own reference.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    for points, label, colour, marker in ((measured, measured_label, "tab:blue", "o"),
                                          (published, published_label, "tab:orange", "s")):
        points = points.loc[pd.to_numeric(points["compute"], errors="coerce") > 0]
        points = points.assign(year=points["published"].map(decimal_year))
        if points.empty:
            continue
        reference = points.sort_values("year", kind="stable").iloc[0]
        factor = reference["compute"] / points["compute"]
        ax.scatter(points["year"], factor, color=colour, marker=marker, zorder=3, label=label)
        for year, value, model in zip(points["year"], factor, points["model"], strict=True):
            ax.annotate(str(model), (year, value), textcoords="offset points", xytext=(4, 3), fontsize=7, color=colour)
        if len(points) >= 2 and points["year"].nunique() >= 2:
            slope, intercept = np.polyfit(points["year"], np.log2(factor), 1)
            grid = np.linspace(points["year"].min(), points["year"].max(), 20)
            ax.plot(grid, 2.0 ** (intercept + slope * grid), color=colour, lw=1,
                    label=f"{label}: doubling every {12 / slope:.1f} months" if slope > 0 else label + " fit")
    ax.set_yscale("log")
    ax.set_xlabel("publication date (year)")
    ax.set_ylabel("efficiency factor over the earliest model")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, fontsize=7, loc="upper left")
    _save(fig, path)


def _log_x_if_positive(ax, flops: pd.Series) -> None:
    """Log compute axis; a curve with no evaluation past step 0 (diverged at once) has nothing to place on it."""
    if (pd.to_numeric(flops, errors="coerce") > 0).any():
        ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, "no evaluation after step 0", transform=ax.transAxes, ha="center")


def learning_curves_figure(curves: pd.DataFrame, metric: str, threshold: float, path: str | Path) -> None:
    """Every curve: metric against cumulative training compute, with the threshold line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    curves = with_trial_columns(curves)
    for (model, trial, seed), curve in curves.sort_values("step").groupby(["model", "trial", "seed"], sort=False):
        curve = curve.loc[curve["train_flops"] > 0]
        label = f"{model} (seed {seed})" if trial == DEFAULT_TRIAL else f"{model} {trial} (seed {seed})"
        ax.plot(curve["train_flops"], curve[metric], marker=".", lw=1, label=label)
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {metric} >= {threshold:g}")
    _log_x_if_positive(ax, curves["train_flops"])
    ax.set_xlabel("cumulative training FLOP")
    ax.set_ylabel(metric)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, fontsize=7, loc="upper left")
    _save(fig, path)


def model_curve_figure(curves: pd.DataFrame, crossings: pd.DataFrame, thresholds: list[dict], path: str | Path) -> None:
    """One model: each threshold's metric against compute, threshold lines, crossings marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=150)
    metrics = list(dict.fromkeys(t["metric"] for t in thresholds))
    for metric in metrics:
        for (trial, seed), curve in with_trial_columns(curves).sort_values("step").groupby(["trial", "seed"]):
            curve = curve.loc[curve["train_flops"] > 0]
            label = f"{metric}, seed {seed}" if trial == DEFAULT_TRIAL else f"{metric}, {trial}, seed {seed}"
            ax.plot(curve["train_flops"], curve[metric], marker=".", lw=1, label=label)
    for threshold in thresholds:
        ax.axhline(threshold["value"], color="black", ls="--", lw=0.8)
        ax.text(ax.get_xlim()[0], threshold["value"], f" {threshold['name']}", va="bottom", fontsize=7)
        rows = crossings.loc[(crossings["threshold_name"] == threshold["name"]) & crossings["reached"]
                             & (crossings["train_flops"] > 0)]
        ax.scatter(rows["train_flops"], np.full(len(rows), threshold["value"]), marker="x", s=60, color="tab:red",
                   zorder=4)
    model = curves["model"].iloc[0] if len(curves) else ""
    _log_x_if_positive(ax, curves["train_flops"])
    ax.set_xlabel("cumulative training FLOP")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{model}: crossings marked x", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, fontsize=7, loc="upper left")
    _save(fig, path)
