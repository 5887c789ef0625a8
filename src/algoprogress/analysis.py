"""From compute-at-threshold tables to the published results: per-model points, fits, JSON and CSV.

One core (``analyse``) serves measured curves (``analyse_measured``, from the thresholds stage's
table) and published tables (``analyse_published``) alike. For each threshold and each window of
publication dates (the whole span, ``full``, and any configured in ``analysis.windows``) two sets
are fitted: the efficiency ``frontier`` and ``all`` models whose compute at threshold is resolved.

**The headline** (``config.headline_choice``, the one place that defines it) is one threshold, one set
and one window, from ``analysis.headline`` (default: the first threshold, the frontier, the whole span).
``trend.json``'s top level, the figure, the report and the README all show this fit; every other
threshold, set and window is under ``thresholds``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from algoprogress.config import FULL_WINDOW, headline_choice
from algoprogress.flops import PETAFLOP_S_DAY, to_petaflop_s_days
from algoprogress.intervals import level_sensitivity, published_interval
from algoprogress.thresholds import (
    LEVEL_STEP,
    compute_at_threshold,
    lower_envelope,
    per_model,
    protocol_per_model,
    seed_values,
    with_trial_columns,
)
from algoprogress.trend import (
    bootstrap_doubling_time,
    bootstrap_resample,
    decimal_year,
    efficiency_factors,
    fit_trend,
    frontier_mask,
)

SETS = ("frontier", "all")

TREND_CSV_COLUMNS = [
    "threshold", "window", "set", "headline", "window_start", "window_end", "n", "doubling_time_months",
    "doubling_time_months_low", "doubling_time_months_high", "doubling_time_unbounded",
    "bootstrap_doubling_time_months_low", "bootstrap_doubling_time_months_high", "bootstrap_unbounded",
    "bootstrap_usable_draws", "bootstrap_levels", "interval_doubling_time_months", "interval_doubling_time_months_low",
    "interval_doubling_time_months_high", "interval_unbounded", "interval_method", "slope_log2_per_year", "r_squared",
    "standard_errors", "reference_model", "best_model", "efficiency_factor", "efficiency_factor_trend",
    "efficiency_factor_low", "efficiency_factor_high", "moore_factor_same_span", "years_reference_to_best",
    "models_left_out", "notes",
]

EXCLUDED_NOT_REACHED = "not reached (median over seeds, a seed not reached counting as infinite compute)"
EXCLUDED_FIRST_EVALUATION = "threshold met at the first evaluation: too low to measure this model"


def window_bounds(window: dict, published: dict[str, str]) -> tuple[str | None, str | None]:
    """(start, end) dates of a window whose ends are dates, model names or null (open)."""
    def bound(value):
        if value is None:
            return None
        return published.get(value, value)
    return bound(window.get("start")), bound(window.get("end"))


def window_end_model(analysis_cfg: dict, window: str, points: pd.DataFrame) -> str | None:
    """The model a window is declared to end at (its `end` names a model), as the paper's 44x ends at
    EfficientNet-b0; None for a window ending at a date or open."""
    for entry in analysis_cfg["windows"]:
        if entry["name"] == window and entry.get("end") in set(points["model"]):
            return entry["end"]
    return None


def windows_of(analysis_cfg: dict, published: dict[str, str]) -> dict[str, tuple]:
    windows = {FULL_WINDOW: (None, None)}
    for window in analysis_cfg["windows"]:
        windows[window["name"]] = window_bounds(window, published)
    return windows


def model_points(models: pd.DataFrame, published: dict[str, str]) -> pd.DataFrame:
    """One point per model from its per-model row: ``compute`` is set where it is resolved (reached,
    and not met at the first evaluation); ``excluded`` says why not otherwise."""
    first = models["crossed_at_first_evaluation"].astype(bool)
    reached = models["reached"].astype(bool)
    selection = models["selection_flops"] if "selection_flops" in models.columns else models["train_flops_median"]
    points = models.assign(
        published=models["model"].map(published),
        compute=models["train_flops_median"].where(reached & ~first),
        selection_compute=selection.where(reached & ~first),
        lower_bound=models["train_flops_lower_bound"],
        excluded=np.where(~reached, EXCLUDED_NOT_REACHED, np.where(first, EXCLUDED_FIRST_EVALUATION, "")),
    )
    return points.reset_index(drop=True)


def _reference_point(points: pd.DataFrame, reference: str) -> dict:
    rows = points.loc[points["model"] == reference]
    if rows.empty:
        return {"model": reference, "published": None, "compute": None}
    row = rows.iloc[0]
    return {"model": reference, "published": row["published"], "compute": row["compute"]}


def _published_within(dates: pd.Series, start: str | None, end: str | None) -> pd.Series:
    """Which publication dates lie in [start, end] (an end that is None is open)."""
    dates = pd.to_datetime(dates)
    keep = pd.Series(True, index=dates.index)
    if start is not None:
        keep &= dates >= pd.Timestamp(start)
    if end is not None:
        keep &= dates <= pd.Timestamp(end)
    return keep


def _in_window(points: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    return points.loc[_published_within(points["published"], start, end)]


def _resolved(points: pd.DataFrame) -> pd.DataFrame:
    compute = pd.to_numeric(points["compute"], errors="coerce")
    return points.loc[np.isfinite(compute.to_numpy(dtype=float)) & (compute.to_numpy(dtype=float) > 0)]


def fit_window(points: pd.DataFrame, seeds: dict[str, np.ndarray], reference: dict, start, end, cfg: dict,
               end_model: str | None = None, level_se: float = 0.0) -> dict:
    """Both sets' fits (with bootstrap and the published ``interval``) over the models published in [start, end];
    the efficiency factor's best model is ``end_model`` (a window that ends at a named model) or the one chosen on
    the selection runs; ``level_se``: the threshold's standard error (0 for a level given as a number)."""
    level, robust = cfg["confidence_level"], cfg["robust_errors"]
    bootstrap = cfg["bootstrap"]
    inside = _in_window(points, start, end)
    resolved = _resolved(inside)
    on_frontier = frontier_mask(resolved).to_numpy(dtype=bool) if len(resolved) else np.zeros(0, dtype=bool)
    frontier = resolved.loc[on_frontier]
    # the bootstrap resamples every model of the window whose compute is not excluded for a flag
    # (not-reached models stay in: a resampled seed set may reach)
    candidates = inside.loc[inside["excluded"] != EXCLUDED_FIRST_EVALUATION]
    years = np.array([decimal_year(d) for d in candidates["published"]], dtype=float)
    samples = [seeds.get(model, np.array([np.inf])) for model in candidates["model"]]
    draws = bootstrap_resample(samples, bootstrap["draws"], bootstrap["seed"])  # the same draws for both sets
    left_out = left_out_of_fit(inside)
    fits = {}
    for name, chosen in (("frontier", frontier), ("all", resolved)):
        fit = fit_trend(chosen, reference, level, robust, best_model=end_model)
        fit["left_out"] = left_out
        if left_out:
            fit["notes"].append(f"left out of the fit: {len(left_out)} model(s) of the window, "
                                + ", ".join(f"{m['model']} ({m['reason']})" for m in left_out))
        fit["bootstrap"] = bootstrap_doubling_time(years, samples, name == "frontier", bootstrap["draws"],
                                                   bootstrap["seed"], level, resampled=draws)
        fit["interval"] = calibrated_interval(name, resolved, on_frontier, fit, level_se, level, bootstrap["seed"])
        fit.update(window_start=start, window_end=end)
        if len(inside) < 2:
            fit["notes"].append(f"the window holds {len(inside)} model(s): nothing to fit")
        fits[name] = fit
    return fits


def calibrated_interval(set_name: str, resolved: pd.DataFrame, on_frontier: np.ndarray, fit: dict, level_se: float,
                        level: float, seed: int) -> dict:
    """The interval published with a fit (``intervals.published_interval``: its coverage of known truth is in
    docs/method.md) over the window's resolved models; each model's sensitivity to the level, where measured."""
    years = np.array([decimal_year(d) for d in resolved["published"]], dtype=float)
    y = np.log2(resolved["compute"].to_numpy(dtype=float))
    sensitivity = resolved.get("level_sensitivity", pd.Series(np.nan, index=resolved.index)).to_numpy(dtype=float)
    return published_interval(set_name, years, y, on_frontier, sensitivity, level_se,
                              fit.get("years_reference_to_best"), level, seed)


def level_sensitivities(measured: pd.DataFrame) -> dict[str, float]:
    """Per model: its sensitivity to the level (``intervals.level_sensitivity``), where its runs were cut at the
    level shifted either way (``thresholds.with_level_shifts``); none otherwise."""
    if "train_flops_level_up" not in measured.columns or measured["train_flops_level_up"].isna().all():
        return {}
    return level_sensitivity(measured, LEVEL_STEP)


def left_out_of_fit(inside: pd.DataFrame) -> list[dict]:
    """The window's models without a compute at threshold, each with why (never reached: with the compute it
    spent, a lower bound; or met at its first evaluation): counted and named wherever the fit is reported."""
    return [{"model": row.model, "reason": row.excluded,
             "lower_bound_flops": None if pd.isna(row.lower_bound) else float(row.lower_bound)}
            for row in inside.itertuples() if row.excluded]


def _per_model_records(points: pd.DataFrame, reference: str, frontier: pd.Series) -> list[dict]:
    factors = efficiency_factors(points, reference)
    keys = ("model", "published", "reached", "excluded", "seeds", "seeds_reached", "train_flops_median",
            "train_flops_min", "train_flops_max", "train_flops_lower_bound", "crossed_at_first_evaluation",
            "winning_trials", "winner_at_grid_edge", "grid_edges", "trials", "trials_diverged", "search_flops",
            "train_flops_with_search_median", "epoch_median", "images_seen_median", "wall_seconds_median")
    records = []
    for index, row in points.iterrows():
        record = {key: row[key] for key in keys if key in row}
        record["on_frontier"] = bool(frontier.get(index, False))
        record["train_pfs_days_median"] = to_petaflop_s_days(row["compute"])  # NaN (not resolved) -> null
        record["efficiency_factor_over_reference"] = factors.get(row["model"])
        records.append(record)
    return records


def search_summary(points: pd.DataFrame) -> dict:
    """The price of the search per model, and a warning when models got unequal numbers of trials."""
    if "trials" not in points.columns:
        return {}
    counts = dict(zip(points["model"], points["trials"].astype(int), strict=True))
    summary = {"trials_per_model": counts,
               "search_flops_total": float(points["search_flops"].sum()),
               "search_pfs_days_total": to_petaflop_s_days(float(points["search_flops"].sum()))}
    if len(set(counts.values())) > 1:
        summary["warning"] = ("models got unequal numbers of trials (" +
                              ", ".join(f"{m} {c}" for m, c in counts.items()) +
                              "): a model searched more widely is favoured by the envelope")
    return summary


def analyse(points_by: dict[str, pd.DataFrame], seeds_by: dict[str, dict[str, np.ndarray]],
            definitions: dict[str, dict], references: dict[str, str], cfg: dict,
            published: dict[str, str]) -> tuple[dict, pd.DataFrame]:
    """The core: every threshold x window x set fitted, the headline chosen, JSON and CSV rows."""
    headline = headline_choice(cfg, list(points_by))
    windows = windows_of(cfg, published)
    by_threshold, rows, notes = {}, [], []
    for name, points in points_by.items():
        reference = _reference_point(points, references[name])
        level_se = definitions.get(name, {}).get("level_standard_error", 0.0)
        if not np.isfinite(level_se):
            notes.append(f"{name}: the level's standard error is unknown (no data manifest to give the validation "
                         "set's size): the published intervals leave out the level's error")
            level_se = 0.0
        fits = {window: fit_window(points, seeds_by.get(name, {}), reference, start, end, cfg,
                                   end_model=window_end_model(cfg, window, points), level_se=level_se)
                for window, (start, end) in windows.items()}
        resolved = _resolved(points)
        frontier = frontier_mask(resolved).reindex(points.index, fill_value=False)
        points["on_frontier"] = frontier
        by_threshold[name] = {"definition": definitions.get(name, {}), "reference_model": references[name],
                              "fits": fits, "per_model": _per_model_records(points, references[name], frontier),
                              "search": search_summary(points)}
        notes += _threshold_notes(name, points, references[name], by_threshold[name]["search"])
        for window, sets in fits.items():
            for set_name, fit in sets.items():
                rows.append(_csv_row(name, window, set_name, fit, headline))
    chosen = by_threshold[headline["threshold"]]["fits"][headline["window"]][headline["set"]]
    start, end = windows[headline["window"]]
    result = {
        "headline": {**headline, "window_start": start, "window_end": end, "about": (
            "top-level numbers are this threshold's fit over this set of models in this window of publication "
            "dates; every threshold, window and set is under `thresholds`")},
        **{k: v for k, v in chosen.items() if k != "models"},
        "models": chosen.get("models", []),
        "notes": notes + [f"headline: {note}" for note in chosen["notes"]],
        "thresholds": by_threshold,
    }
    return finite_or_null(result), trend_table(rows)


def _threshold_notes(name: str, points: pd.DataFrame, reference: str, search: dict) -> list[str]:
    notes = []
    for row in points.itertuples():
        if row.excluded == EXCLUDED_FIRST_EVALUATION:
            notes.append(f"{name}: {row.model} met the threshold at its first evaluation: the threshold is too low "
                         "for it; not fitted")
        if getattr(row, "winner_at_grid_edge", False):
            notes.append(f"{name}: {row.model}'s winning trial is at the edge of its grid ({row.grid_edges}): "
                         "the optimum may lie outside the grid")
        if getattr(row, "trials_diverged", 0):
            notes.append(f"{name}: {row.model}: {row.trials_diverged} trial curve(s) diverged (counted as not reached)")
    ref = points.loc[points["model"] == reference]
    if len(ref) and ref["excluded"].iloc[0]:
        notes.append(f"{name}: the reference {reference} is {ref['excluded'].iloc[0]}: no efficiency factors")
    if not points["reached"].any():
        notes.append(f"{name}: no model reaches this threshold: nothing to fit")
    if search.get("warning"):
        notes.append(f"{name}: {search['warning']}")
    return notes


def _csv_row(threshold: str, window: str, set_name: str, fit: dict, headline: dict) -> dict:
    boot, interval = fit.get("bootstrap", {}), fit.get("interval", {})
    return {**fit, "threshold": threshold, "window": window, "set": set_name,
            "headline": (threshold, window, set_name) == (headline["threshold"], headline["window"], headline["set"]),
            "bootstrap_doubling_time_months_low": boot.get("doubling_time_months_low"),
            "bootstrap_doubling_time_months_high": boot.get("doubling_time_months_high"),
            "bootstrap_unbounded": boot.get("doubling_time_unbounded"),
            "bootstrap_usable_draws": boot.get("usable_draws"),
            "bootstrap_levels": " + ".join(boot.get("levels", [])),
            **{f"interval_{key}": interval.get(key) for key in (
                "doubling_time_months", "doubling_time_months_low", "doubling_time_months_high", "method")},
            "interval_unbounded": interval.get("doubling_time_unbounded"),
            **{key: interval.get(key) for key in (
                "efficiency_factor_trend", "efficiency_factor_low", "efficiency_factor_high")},
            "models_left_out": "; ".join(f"{m['model']} ({m['reason']})" for m in fit.get("left_out", [])),
            "notes": "; ".join(fit.get("notes", []) + boot.get("notes", []))}


def analyse_measured(table: pd.DataFrame, published: dict[str, str], thresholds_cfg: list[dict], analysis_cfg: dict,
                     plan: dict | None = None) -> tuple[dict, pd.DataFrame, dict[str, pd.DataFrame]]:
    """(trend JSON, trend CSV rows, points per threshold) for the measured curves' thresholds table."""
    measured = table.loc[table["measured"].astype(bool)] if "measured" in table.columns else table
    models = protocol_per_model(table, plan)
    seeds = seed_values(lower_envelope(measured))  # per seed of the runs measured (one trial each, with a protocol)
    points_by, seeds_by, definitions = {}, {}, {}
    for threshold in thresholds_cfg:
        name = threshold["name"]
        rows = models.loc[models["threshold_name"] == name]
        sensitivity = level_sensitivities(measured.loc[measured["threshold_name"] == name])
        points_by[name] = model_points(rows, published).assign(
            level_sensitivity=lambda p, s=sensitivity: p["model"].map(s).astype(float))
        seeds_by[name] = {model: seeds[(name, model)] for model in rows["model"]}
        definitions[name] = {**threshold, "resolved_value": _resolved_value(table, threshold),
                             "level_standard_error": _table_value(table, name, "level_standard_error", 0.0)}
    references = {name: analysis_cfg["reference_model"] for name in points_by}
    result, csv = analyse(points_by, seeds_by, definitions, references, analysis_cfg, published)
    return result, csv, points_by


def _table_value(table: pd.DataFrame, name: str, column: str, default: float) -> float:
    """A threshold's value of a per-threshold column of the thresholds table (``default`` without it)."""
    if column not in table.columns:
        return default
    values = table.loc[table["threshold_name"] == name, column]
    return float(values.iloc[0]) if len(values) else default


def _resolved_value(table: pd.DataFrame, threshold: dict):
    values = table.loc[table["threshold_name"] == threshold["name"], "threshold"]
    return float(values.iloc[0]) if len(values) else threshold.get("resolved_value", threshold["value"])


def read_published_table(path) -> pd.DataFrame:
    """A published table (threshold, model, published, compute_pfs_days, source), checked."""
    table = pd.read_csv(path, dtype={"published": str})
    missing = {"threshold", "model", "published", "compute_pfs_days"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if not (table["compute_pfs_days"] > 0).all():
        raise ValueError(f"{path}: compute_pfs_days must be positive")
    return table


def published_points(group: pd.DataFrame) -> pd.DataFrame:
    """A published table's rows of one threshold as model points (one seed each, all reached)."""
    compute = group["compute_pfs_days"].to_numpy(dtype=float) * PETAFLOP_S_DAY
    return pd.DataFrame({
        "model": group["model"].astype(str).to_numpy(), "published": group["published"].to_numpy(),
        "reached": True, "crossed_at_first_evaluation": False, "seeds": 1, "seeds_reached": 1,
        "train_flops_median": compute, "train_flops_lower_bound": math.nan, "compute": compute,
        "lower_bound": math.nan, "excluded": "",
    })


def analyse_published(table: pd.DataFrame, analysis_cfg: dict) -> tuple[dict, pd.DataFrame, dict]:
    """The same analysis on a published table alone; each threshold's earliest model is its reference,
    its first threshold the headline (frontier, whole span)."""
    points_by, seeds_by, references, definitions, dates = {}, {}, {}, {}, {}
    for name, group in table.groupby("threshold", sort=False):
        points = published_points(group)
        points_by[name] = points
        seeds_by[name] = {row.model: np.array([row.compute]) for row in points.itertuples()}
        references[name] = points.sort_values("published", kind="stable")["model"].iloc[0]
        definitions[name] = {"source": sorted(set(group.get("source", pd.Series(dtype=str)).dropna()))}
        dates.update(zip(points["model"], points["published"], strict=True))
    cfg = {**analysis_cfg, "headline": None, "windows": []}
    result, csv = analyse(points_by, seeds_by, definitions, references, cfg, dates)
    return result, csv, points_by


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


def comparison_points(table: pd.DataFrame, measured_points: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(measured points, the published table's first threshold as points, its name)."""
    name = table["threshold"].iloc[0]
    return measured_points, published_points(table.loc[table["threshold"] == name]), name


def threshold_sweep(curves: pd.DataFrame, threshold: dict, published: dict[str, str], cfg: dict,
                    plan: dict | None = None) -> pd.DataFrame:
    """Doubling time (headline set and window, OLS interval) as a function of the threshold value.

    The grid spans the headline metric's range where the trend can be measured: from just above every
    model's first evaluation (below that the threshold is met by untrained models) up to the level
    that at least ``min_models`` models of the window reach with every seed (the least over seeds of each
    seed's best evaluation). Returns one row per grid value (empty when that range is empty).
    """
    sweep_cfg = cfg["threshold_sweep"]
    headline = headline_choice(cfg, [threshold["name"]])
    start, end = windows_of(cfg, published)[headline["window"]]
    metric = threshold["metric"]
    curves = with_trial_columns(curves)
    inside = curves.loc[_published_within(curves["model"].map(published), start, end)]
    valid = inside.loc[inside[metric].notna()].sort_values(["model", "trial", "seed", "step"], kind="stable")
    columns = ["threshold", "metric", "set", "window", "n", "models_reached", "doubling_time_months",
               "doubling_time_months_low", "doubling_time_months_high", "doubling_time_unbounded", "r_squared",
               "best_model", "efficiency_factor", "confidence_level"]
    if valid.empty:
        return pd.DataFrame(columns=columns)
    first_level = valid.groupby(["model", "trial", "seed"])[metric].first().max()
    # each model's level: the least over its seeds of each seed's best (every seed reaches it)
    levels = valid.groupby(["model", "trial", "seed"])[metric].max().groupby(["model", "seed"]).max().groupby(
        "model").min().sort_values(ascending=False)
    if len(levels) < sweep_cfg["min_models"]:
        return pd.DataFrame(columns=columns)
    high = float(levels.iloc[sweep_cfg["min_models"] - 1])
    low = float(first_level) + 1e-6
    if not low < high:
        return pd.DataFrame(columns=columns)
    rows = []
    for value in np.linspace(low, high, sweep_cfg["points"]):
        table = compute_at_threshold(inside, metric, value, threshold.get("interpolation", "log-linear"), "sweep",
                                     threshold.get("crossing", "monotone"))
        points = model_points(per_model(table, plan), published)
        reference = _reference_point(points, cfg["reference_model"])
        resolved = _resolved(points)
        chosen = resolved.loc[frontier_mask(resolved)] if headline["set"] == "frontier" else resolved
        fit = fit_trend(chosen, reference, cfg["confidence_level"], cfg["robust_errors"])
        rows.append({**fit, "threshold": float(value), "metric": metric, "set": headline["set"],
                     "window": headline["window"], "models_reached": int(points["reached"].sum())})
    sweep = pd.DataFrame(rows).reindex(columns=columns)
    numeric = [c for c in columns if c not in ("metric", "set", "window", "best_model", "doubling_time_unbounded")]
    return sweep.astype({c: float for c in numeric})
