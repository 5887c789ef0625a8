"""Compute at threshold, from curves alone.

Rule: a curve reaches the threshold at its **first evaluation whose metric is >= the threshold**
(evaluations whose metric is NaN are skipped). The compute at threshold is that evaluation's
cumulative training compute or, with ``interpolation="log-linear"`` (the default), the point
between the last evaluation below and the first at or above where the metric, interpolated
linearly in log-compute, equals the threshold. Without an earlier evaluation with positive
compute there is nothing to interpolate from, and the crossing evaluation's compute is used.
A curve that never reaches the threshold is reported with ``reached = False`` and the compute it
spent as ``train_flops_lower_bound``; it has no compute at threshold.

Everything is vectorised over all curves at once (no per-row Python loops).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from algoprogress.flops import to_petaflop_s_days

KEYS = ["model", "seed"]
INTERPOLATIONS = ("none", "log-linear")

THRESHOLD_COLUMNS = [
    "model", "seed", "threshold_name", "metric", "threshold", "reached",
    "train_flops", "train_pfs_days", "train_flops_lower_bound",
    "step", "epoch", "images_seen", "wall_seconds", "metric_at_crossing", "evaluations",
]


def compute_at_threshold(
    curves: pd.DataFrame,
    metric: str,
    threshold: float,
    interpolation: str = "log-linear",
    threshold_name: str = "",
) -> pd.DataFrame:
    """One row per (model, seed): where the curve first reaches ``metric >= threshold``."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    valid = curves.loc[curves[metric].notna()].sort_values([*KEYS, "step"], kind="stable")
    grouped = valid.groupby(KEYS, sort=True)
    previous_flops = grouped["train_flops"].shift(1)
    previous_metric = grouped[metric].shift(1)
    at_or_above = valid[metric] >= threshold
    first = at_or_above & (at_or_above.astype(int).groupby([valid[k] for k in KEYS]).cumsum() == 1)
    crossing = valid.loc[first]

    flops_at = crossing["train_flops"].to_numpy(dtype=float)
    if interpolation == "log-linear":
        x0 = previous_flops.loc[first].to_numpy(dtype=float)
        y0 = previous_metric.loc[first].to_numpy(dtype=float)
        x1, y1 = flops_at, crossing[metric].to_numpy(dtype=float)
        usable = (x0 > 0) & (x1 > x0) & (y1 > y0) & np.isfinite(y0)
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.clip((threshold - y0) / (y1 - y0), 0.0, 1.0)
            log_flops = np.log(x0) + fraction * (np.log(x1) - np.log(x0))
        flops_at = np.where(usable, np.exp(log_flops), x1)

    reached = pd.DataFrame({
        "model": crossing["model"].to_numpy(), "seed": crossing["seed"].to_numpy(),
        "reached": True, "train_flops": flops_at, "train_flops_lower_bound": np.nan,
        "step": crossing["step"].to_numpy(), "epoch": crossing["epoch"].to_numpy(),
        "images_seen": crossing["images_seen"].to_numpy(), "wall_seconds": crossing["wall_seconds"].to_numpy(),
        "metric_at_crossing": crossing[metric].to_numpy(),
    })
    summary = curves.groupby(KEYS, sort=True).agg(
        spent=("train_flops", "max"), evaluations=(metric, "count")
    ).reset_index()
    table = summary.merge(reached, on=KEYS, how="left")
    table["reached"] = table["reached"].astype("boolean").fillna(False).astype(bool)
    table.loc[~table["reached"], "train_flops_lower_bound"] = table.loc[~table["reached"], "spent"]
    table["train_pfs_days"] = to_petaflop_s_days(table["train_flops"])
    table["threshold_name"] = threshold_name
    table["metric"] = metric
    table["threshold"] = float(threshold)
    return table[THRESHOLD_COLUMNS]


def per_model(thresholds: pd.DataFrame) -> pd.DataFrame:
    """Per model: median, min and max compute at threshold over the seeds that reached it."""
    grouped = thresholds.groupby("model", sort=False)
    out = grouped.agg(
        seeds=("seed", "count"),
        seeds_reached=("reached", "sum"),
        train_flops_median=("train_flops", "median"),
        train_flops_min=("train_flops", "min"),
        train_flops_max=("train_flops", "max"),
        train_flops_lower_bound=("train_flops_lower_bound", "max"),
        epoch_median=("epoch", "median"),
        images_seen_median=("images_seen", "median"),
        wall_seconds_median=("wall_seconds", "median"),
    ).reset_index()
    out["reached"] = out["seeds_reached"] > 0
    return out


def compute_at_thresholds(curves: pd.DataFrame, thresholds: list[dict]) -> pd.DataFrame:
    """``compute_at_threshold`` for each configured threshold, stacked (one row per curve and threshold)."""
    return pd.concat(
        [compute_at_threshold(curves, t["metric"], t["value"], t.get("interpolation", "log-linear"), t["name"])
         for t in thresholds],
        ignore_index=True,
    )
