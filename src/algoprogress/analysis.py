"""From compute-at-threshold tables to the published results: per-model points, fits, JSON and CSV.

Used for measured curves (``thresholds.py`` output) and for published tables alike, so both are
analysed by the same code. For each threshold, two sets are fitted: ``all`` models that reached it,
and the efficiency ``frontier``.
"""

from __future__ import annotations

import math

import pandas as pd

from algoprogress.flops import PETAFLOP_S_DAY, to_petaflop_s_days
from algoprogress.thresholds import per_model
from algoprogress.trend import efficiency_factors, fit_trend, frontier_mask

SETS = ("all", "frontier")
TREND_CSV_COLUMNS = [
    "threshold", "set", "n", "doubling_time_months", "doubling_time_months_low", "doubling_time_months_high",
    "doubling_time_unbounded", "slope_log2_per_year", "r_squared", "standard_errors", "reference_model",
    "newest_model", "efficiency_factor_newest_over_reference", "moore_factor_same_span", "years_reference_to_newest",
]


def points_from_thresholds(thresholds: pd.DataFrame, published: dict[str, str]) -> pd.DataFrame:
    """One point per model for one threshold: median compute over the seeds that reached it."""
    models = per_model(thresholds)
    points = models.assign(
        published=models["model"].map(published),
        compute=models["train_flops_median"].where(models["reached"]),
        lower_bound=models["train_flops_lower_bound"],
    )
    points["on_frontier"] = frontier_mask(points)
    return points


def fit_sets(points: pd.DataFrame, reference: str, level: float, robust: bool) -> dict:
    frontier = points.loc[points["on_frontier"]]
    return {"all": fit_trend(points, reference, level, robust), "frontier": fit_trend(frontier, reference, level, robust)}


def _per_model_records(points: pd.DataFrame, reference: str) -> list[dict]:
    factors = efficiency_factors(points, reference)
    records = []
    for row in points.to_dict("records"):
        record = {key: row.get(key) for key in (
            "model", "published", "reached", "on_frontier", "seeds", "seeds_reached", "train_flops_median",
            "train_flops_min", "train_flops_max", "train_flops_lower_bound", "epoch_median",
            "images_seen_median", "wall_seconds_median") if key in row}
        record["train_pfs_days_median"] = to_petaflop_s_days(row["compute"])  # NaN (not reached) -> null
        record["efficiency_factor_over_reference"] = factors.get(row["model"])
        records.append(record)
    return records


def analyse_measured(thresholds: pd.DataFrame, published: dict[str, str], thresholds_cfg: list[dict],
                     analysis_cfg: dict) -> tuple[dict, pd.DataFrame, dict[str, pd.DataFrame]]:
    """(trend JSON, trend CSV rows, points per threshold) for the measured curves."""
    reference, level, robust = (analysis_cfg["reference_model"], analysis_cfg["confidence_level"],
                                analysis_cfg["robust_errors"])
    by_threshold, rows, points_by = {}, [], {}
    for threshold in thresholds_cfg:
        name = threshold["name"]
        points = points_from_thresholds(thresholds.loc[thresholds["threshold_name"] == name], published)
        fits = fit_sets(points, reference, level, robust)
        points_by[name] = points
        by_threshold[name] = {"definition": threshold, "fits": fits, "per_model": _per_model_records(points, reference)}
        rows += [{"threshold": name, "set": s, **fits[s]} for s in SETS]
    headline_name = thresholds_cfg[0]["name"]
    headline = by_threshold[headline_name]["fits"]["all"]
    result = {
        "headline": {"threshold": headline_name, "set": "all",
                     "about": "top-level numbers are this threshold's fit over all models; see `thresholds`"},
        **{k: v for k, v in headline.items() if k != "models"},
        "thresholds": by_threshold,
    }
    return finite_or_null(result), trend_table(rows), points_by


def read_published_table(path) -> pd.DataFrame:
    """A published table (threshold, model, published, compute_pfs_days, source), checked."""
    table = pd.read_csv(path, dtype={"published": str})
    missing = {"threshold", "model", "published", "compute_pfs_days"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if not (table["compute_pfs_days"] > 0).all():
        raise ValueError(f"{path}: compute_pfs_days must be positive")
    return table


def analyse_published(table: pd.DataFrame, level: float, robust: bool) -> tuple[dict, pd.DataFrame, dict]:
    """The same analysis on a published table alone; each threshold's earliest model is its reference."""
    by_threshold, rows, points_by = {}, [], {}
    for name, group in table.groupby("threshold", sort=False):
        points = pd.DataFrame({
            "model": group["model"].to_numpy(), "published": group["published"].to_numpy(),
            "compute": group["compute_pfs_days"].to_numpy() * PETAFLOP_S_DAY, "lower_bound": math.nan,
            "reached": True,
        })
        points["on_frontier"] = frontier_mask(points)
        reference = points.sort_values("published", kind="stable")["model"].iloc[0]
        fits = fit_sets(points, reference, level, robust)
        points_by[name] = points
        by_threshold[name] = {"fits": fits, "per_model": _per_model_records(points, reference),
                              "source": sorted(set(group.get("source", pd.Series(dtype=str)).dropna()))}
        rows += [{"threshold": name, "set": s, **fits[s]} for s in SETS]
    return finite_or_null({"thresholds": by_threshold}), trend_table(rows), points_by


def trend_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=TREND_CSV_COLUMNS)


def finite_or_null(value):
    """JSON has no NaN or infinity: write them as null (numpy scalars become Python numbers)."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def comparison_points(table: pd.DataFrame, measured: pd.DataFrame, published_dates: dict[str, str],
                      threshold_name: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(measured points of one threshold, the published table's first threshold as points, its name)."""
    name = table["threshold"].iloc[0]
    rows = table.loc[table["threshold"] == name]
    published = pd.DataFrame({"model": rows["model"].to_numpy(), "published": rows["published"].to_numpy(),
                              "compute": rows["compute_pfs_days"].to_numpy() * PETAFLOP_S_DAY})
    points = points_from_thresholds(measured.loc[measured["threshold_name"] == threshold_name], published_dates)
    return points, published, name
