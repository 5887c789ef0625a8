"""Compute at threshold, from curves alone: per curve, per seed (the lower envelope over trials), per model.

**Per curve.** A curve reaches the threshold where its **monotone fit** first has ``metric >= threshold``
(``crossing="monotone"``, the default): the least-squares non-decreasing fit of its evaluations
(isotonic regression; evaluations whose metric is NaN are skipped), so that the curve holds the level
from there on and one lucky evaluation of a noisy validation set does not decide where it crosses
(``crossing="first"``: its first evaluation at or above the threshold). The compute at threshold is
that evaluation's cumulative training compute or, with ``interpolation="log-linear"`` (the default),
the point between the evaluation before and that one where the (fitted) metric, interpolated linearly
in log-compute, equals the threshold. Without an earlier evaluation with positive compute there is
nothing to interpolate from, and the crossing evaluation's compute is used. A curve that never reaches
the threshold is reported with ``reached = False`` and the compute it spent as
``train_flops_lower_bound``. A crossing **at the curve's first evaluation** (usually step 0, the
untrained model) is flagged ``crossed_at_first_evaluation``: the threshold is too low to measure
that model (its compute to threshold is not resolved), and the analysis reports it instead of fitting it.

**Per seed: the lower envelope.** For each seed, the least compute at threshold over a model's *trials*
(``winning_trial`` names the trial); a seed that no trial brings to the threshold is not reached, with
the most compute any of its trials spent as the lower bound. Over noisy trials this minimum is biased
low (the winner's curse): the measurement protocol (algoprogress.protocol, ``protocol_per_model``)
reports it only as the optimistic bound, and measures each model on the confirmation runs of the trial
chosen on its selection runs.

**Per model.** The model's compute at threshold is the median over **all** the runs it is measured on,
a run that was not reached counting as infinite compute: when the median is infinite the model is not
reached, and the median over runs of (compute at threshold, or compute spent) is its lower bound.

Thresholds may be given as a number or as ``value: reference``: the reference model's own level,
fixed by its calibration runs (``reference_level``: the median of their final evaluations, less
``margin``); ``resolve_thresholds`` turns it into a number from the curves before any compute at
threshold is computed.

Everything is vectorised over all curves at once (no per-row Python loops; the monotone fit is one
compiled call per curve).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from algoprogress.flops import to_petaflop_s_days
from algoprogress.intervals import level_standard_error
from algoprogress.protocol import REFERENCE_LEVEL, SELECTION

KEYS = ["model", "trial", "seed"]
INTERPOLATIONS = ("none", "log-linear")
CROSSINGS = ("monotone", "first")
DEFAULT_TRIAL = "base"

THRESHOLD_COLUMNS = [
    "model", "trial", "seed", "threshold_name", "metric", "threshold", "reached", "crossed_at_first_evaluation",
    "diverged", "train_flops", "train_pfs_days", "train_flops_lower_bound", "spent_flops",
    "step", "epoch", "images_seen", "wall_seconds", "metric_at_crossing", "best_metric", "evaluations",
]


def with_trial_columns(curves: pd.DataFrame) -> pd.DataFrame:
    """Curves from before sweeps (or hand-made ones) are a single trial that did not diverge."""
    if "trial" not in curves.columns:
        curves = curves.assign(trial=DEFAULT_TRIAL)
    if "diverged" not in curves.columns:
        curves = curves.assign(diverged=False)
    return curves


def compute_at_threshold(
    curves: pd.DataFrame,
    metric: str,
    threshold: float,
    interpolation: str = "log-linear",
    threshold_name: str = "",
    crossing: str = "monotone",
) -> pd.DataFrame:
    """One row per curve (model, trial, seed), in the order of those keys: where it reaches ``metric >= threshold``
    (``crossing``: ``monotone``, where its monotone fit does; ``first``, at its first evaluation that does).

    In numpy over all curves at once (pandas' grouping machinery cost about 15 ms a call for a handful of rows;
    the threshold sweep and the analysis call this many times): the rows sorted by curve and step, each
    curve a run of them."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if crossing not in CROSSINGS:
        raise ValueError(f"crossing must be one of {CROSSINGS}, got {crossing!r}")
    curves = with_trial_columns(curves)
    curve_of = curves.groupby(KEYS, sort=True).ngroup().to_numpy()
    if np.isnan(curve_of).any():  # rows without a model, trial or seed belong to no curve
        curves, curve_of = curves.loc[~np.isnan(curve_of)], curve_of[~np.isnan(curve_of)].astype(np.int64)
    if curves.empty:
        return _no_curves(curves, threshold_name, metric, threshold)
    order = np.lexsort((curves["step"].to_numpy(), curve_of))  # stable: by curve, then step
    curve_of = curve_of[order]
    starts = np.flatnonzero(np.r_[True, curve_of[1:] != curve_of[:-1]])  # each curve's first row
    n_curves = len(starts)
    values = curves[metric].to_numpy(dtype=float)[order]
    flops = curves["train_flops"].to_numpy(dtype=float)[order]
    evaluated = ~np.isnan(values)

    # per curve, over all its rows: compute spent, evaluations, best metric (NaN evaluations skipped), diverged
    spent = np.fmax.reduceat(flops, starts)
    evaluations = np.add.reduceat(evaluated.astype(np.int64), starts)
    best = np.fmax.reduceat(values, starts)
    diverged = np.logical_or.reduceat(curves["diverged"].fillna(False).to_numpy(dtype=bool)[order], starts)

    # the evaluations (non-NaN rows) of each curve, in step order: the first at or above the threshold (of the
    # curve's monotone fit, with crossing="monotone")
    rows = np.flatnonzero(evaluated)
    valid_curve = curve_of[rows]
    if crossing == "monotone":
        values = values.copy()
        values[rows] = monotone_fit(values[rows], valid_curve)
    valid_start = np.searchsorted(valid_curve, valid_curve, side="left")  # each evaluation's curve's first
    above = np.flatnonzero(values[rows] >= threshold)
    crossing_curve, first = np.unique(valid_curve[above], return_index=True)
    at = above[first]  # position among the evaluations of each curve's crossing
    position = at - valid_start[at]
    y1 = values[rows[at]]
    flops_at = flops[rows[at]]
    if interpolation == "log-linear":
        flops_at = _log_linear(flops[rows], values[rows], at, position, threshold)

    reached = np.zeros(n_curves, dtype=bool)
    reached[crossing_curve] = True
    crossing_row = order[rows[at]]  # in the caller's frame

    def at_crossing(values_at, fill=np.nan):
        """Per curve: the crossing's value, ``fill`` where there is none (integers become floats then)."""
        if reached.all():
            return values_at
        out = np.full(n_curves, fill, dtype=float if fill is np.nan else values_at.dtype)
        out[crossing_curve] = values_at
        return out

    def column(name):
        return at_crossing(curves[name].to_numpy()[crossing_row])

    first_rows = order[starts]
    train_flops = at_crossing(flops_at)
    table = pd.DataFrame({
        "model": curves["model"].to_numpy()[first_rows].astype(str),
        "trial": curves["trial"].to_numpy()[first_rows].astype(str),
        "seed": curves["seed"].to_numpy()[first_rows],
        "threshold_name": threshold_name, "metric": metric, "threshold": float(threshold),
        "reached": reached,
        "crossed_at_first_evaluation": at_crossing(position == 0, fill=False),
        "diverged": diverged,
        "train_flops": train_flops,
        "train_pfs_days": to_petaflop_s_days(train_flops),
        "train_flops_lower_bound": np.where(reached, np.nan, spent),
        "spent_flops": spent,
        "step": column("step"), "epoch": column("epoch"), "images_seen": column("images_seen"),
        "wall_seconds": column("wall_seconds"),
        "metric_at_crossing": at_crossing(y1),
        "best_metric": best,
        "evaluations": evaluations,
    })
    return table[THRESHOLD_COLUMNS]


def _log_linear(flops: np.ndarray, values: np.ndarray, at: np.ndarray, position: np.ndarray,
                threshold: float) -> np.ndarray:
    """The compute where the metric, linear in log-compute between the evaluation before each crossing (``at``:
    indices into the evaluations; ``position``: its place in its curve) and the crossing, equals the threshold;
    the crossing's own compute where there is no usable evaluation before it."""
    x1, y1 = flops[at], values[at]
    before = np.where(position > 0, at - 1, at)
    x0 = np.where(position > 0, flops[before], np.nan)
    y0 = np.where(position > 0, values[before], np.nan)
    usable = (x0 > 0) & (x1 > x0) & (y1 > y0) & np.isfinite(y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.clip((threshold - y0) / (y1 - y0), 0.0, 1.0)
        log_flops = np.log(x0) + fraction * (np.log(x1) - np.log(x0))
    return np.where(usable, np.exp(log_flops), x1)


def monotone_fit(values: np.ndarray, curve_of: np.ndarray) -> np.ndarray:
    """Each curve's least-squares non-decreasing fit (isotonic regression, scipy), the curves being runs of
    ``curve_of`` (values in step order): a curve holds a level from where its fit reaches it, so that one lucky
    evaluation does not decide its crossing."""
    from scipy.optimize import isotonic_regression

    fitted = np.empty_like(values)
    starts = np.flatnonzero(np.r_[True, curve_of[1:] != curve_of[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(values)], strict=True):
        fitted[start:end] = isotonic_regression(values[start:end]).x if end - start > 1 else values[start:end]
    return fitted


def _no_curves(curves: pd.DataFrame, threshold_name: str, metric: str, threshold: float) -> pd.DataFrame:
    """The table of no curves, with the column types of a table of some (the curves' own where they have them)."""
    types = {"model": str, "trial": str, "seed": np.int64, "threshold_name": str, "metric": str,
             "reached": bool, "crossed_at_first_evaluation": bool, "diverged": bool, "evaluations": np.int64,
             "step": np.int64, "images_seen": np.int64}
    types.update({column: curves[column].dtype for column in ("seed", "step", "epoch", "images_seen", "wall_seconds")
                  if column in curves.columns and curves[column].dtype != object})
    return pd.DataFrame({column: np.array([], dtype=types.get(column, float)) for column in THRESHOLD_COLUMNS})


def reference_level(curves: pd.DataFrame, metric: str, reference: str, trial: str, seeds: list[int],
                    margin: float) -> float:
    """The reference's own level, fixed by its calibration runs (``trial`` of ``reference`` on ``seeds``,
    algoprogress.protocol): per run its final evaluation (the last whose metric is not NaN), then the median over
    the runs, less ``margin``; NaN without such an evaluation. A median of final values, which evaluation noise
    does not push up as it pushes up the best of many evaluations."""
    return _level(calibration_finals(curves, metric, reference, trial, seeds), margin)


def _level(finals: pd.Series, margin: float) -> float:
    return float(finals.median()) - margin if len(finals) else float("nan")


def calibration_finals(curves: pd.DataFrame, metric: str, reference: str, trial: str, seeds: list[int]) -> pd.Series:
    """Per calibration run (``trial`` of ``reference`` on ``seeds``) that has one: its final evaluation's ``metric``
    (the last that is not NaN), by seed."""
    curves = with_trial_columns(curves)
    rows = curves.loc[(curves["model"].astype(str) == reference) & (curves["trial"].astype(str) == trial)
                      & curves["seed"].isin(seeds) & curves[metric].notna()]
    return rows.sort_values(["seed", "step"], kind="stable").groupby("seed")[metric].last()


def resolve_thresholds(curves: pd.DataFrame, thresholds: list[dict], reference: str,
                       calibration: dict | None = None, val_images: int | None = None) -> list[dict]:
    """Each threshold with a numeric ``value``; ``value: reference`` becomes the reference's own level from its
    calibration runs (``calibration``: {trial, seeds}; kept as ``defined_as``, with ``resolved_value``) and gets the
    level's standard error from the validation set's size (``val_images``; ``intervals.level_standard_error``:
    binomial, through the median of the runs that have a final evaluation; NaN without ``val_images``); a level
    given as a number has none (0)."""
    resolved = []
    for threshold in thresholds:
        threshold = dict(threshold)
        threshold["level_standard_error"] = 0.0
        if threshold["value"] == REFERENCE_LEVEL:
            margin, seeds = threshold.get("margin", 0.0), calibration["seeds"]
            finals = calibration_finals(curves, threshold["metric"], reference, calibration["trial"], seeds)
            value = _level(finals, margin)
            threshold.update(value=value, defined_as=(
                f"{REFERENCE_LEVEL} level of {reference}: the median final {threshold['metric']} of its calibration "
                f"runs ({calibration['trial']}, seeds {', '.join(map(str, seeds))}) less margin {margin:g}"))
            # unknown (NaN: the analysis says so) without the validation set's size
            threshold["level_standard_error"] = level_standard_error(value + margin, val_images, len(finals)) \
                if val_images and len(finals) else float("nan")
        threshold["resolved_value"] = threshold["value"]
        resolved.append(threshold)
    return resolved


def compute_at_thresholds(curves: pd.DataFrame, thresholds: list[dict]) -> pd.DataFrame:
    """``compute_at_threshold`` for each (resolved) threshold, stacked: one row per curve and threshold."""
    return pd.concat(
        [compute_at_threshold(curves, t["metric"], t["value"], t.get("interpolation", "log-linear"), t["name"],
                              t.get("crossing", "monotone"))
         for t in thresholds],
        ignore_index=True,
    )


LEVEL_STEP = 0.01  # the shift of a level (in its metric) over which each run's sensitivity to it is measured


def with_level_shifts(table: pd.DataFrame, curves: pd.DataFrame, thresholds: list[dict],
                      step: float = LEVEL_STEP) -> pd.DataFrame:
    """``table`` (``compute_at_thresholds``) with each run's compute at its threshold ``step / 2`` above and below
    (``train_flops_level_up`` / ``_down``; NaN where not reached), for the thresholds whose level has an error
    (``level_standard_error`` > 0): what ``intervals.level_sensitivity`` turns into each model's sensitivity."""
    keys = ["threshold_name", "model", "trial", "seed"]
    shifted = []
    for t in thresholds:
        if not t.get("level_standard_error"):
            continue
        cut = {}
        for name, sign in (("up", 1), ("down", -1)):
            rows = compute_at_threshold(curves, t["metric"], t["value"] + sign * step / 2,
                                        t.get("interpolation", "log-linear"), t["name"],
                                        t.get("crossing", "monotone")).set_index(keys)
            cut[name] = rows["train_flops"].where(rows["reached"].astype(bool))
        shifted.append(pd.DataFrame({"train_flops_level_up": cut["up"], "train_flops_level_down": cut["down"]}))
    if not shifted:
        return table.assign(train_flops_level_up=np.nan, train_flops_level_down=np.nan)
    return table.merge(pd.concat(shifted).reset_index(), on=keys, how="left")


def lower_envelope(table: pd.DataFrame) -> pd.DataFrame:
    """Per (threshold, model, seed): the least compute at threshold over the trials, and its trial."""
    keys = ["threshold_name", "model", "seed"]
    table = table.assign(_order=np.where(table["reached"], table["train_flops"], np.inf))
    winners = table.sort_values([*keys, "_order", "trial"], kind="stable").drop_duplicates(keys, keep="first")
    totals = table.groupby(keys, sort=False).agg(
        trials=("trial", "count"), trials_reached=("reached", "sum"), trials_diverged=("diverged", "sum"),
        search_flops=("spent_flops", "sum"), most_spent=("spent_flops", "max"), best_metric=("best_metric", "max"),
    ).reset_index()
    envelope = winners.drop(columns=["_order", "best_metric"]).rename(columns={"trial": "winning_trial"}).merge(
        totals, on=keys)
    envelope.loc[~envelope["reached"], "winning_trial"] = None
    envelope.loc[~envelope["reached"], "train_flops_lower_bound"] = envelope.loc[~envelope["reached"], "most_spent"]
    envelope.loc[~envelope["reached"], "crossed_at_first_evaluation"] = False
    # the price of the search: compute to threshold plus everything the seed's other trials spent
    envelope["train_flops_with_search"] = envelope["train_flops"] + envelope["search_flops"] - envelope["spent_flops"]
    return envelope.reset_index(drop=True)


def edge_of_grid(trial_values: dict, grid: dict) -> list[str]:
    """The swept keys whose value in ``trial_values`` is the smallest or largest of its grid."""
    edges = []
    for key, values in sorted(grid.items()):
        if len(values) > 1 and key in trial_values:
            value = trial_values[key]
            if value == min(values):
                edges.append(f"{key}={value:g} (smallest)" if isinstance(value, (int, float)) else f"{key}={value}")
            elif value == max(values):
                edges.append(f"{key}={value:g} (largest)" if isinstance(value, (int, float)) else f"{key}={value}")
    return edges


def _median_with_infinity(values: pd.Series) -> float:
    return float(np.median(values.to_numpy(dtype=float))) if len(values) else float("nan")


def per_model(table: pd.DataFrame, plan: dict | None = None, envelope: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (threshold, model): the seeds combined (median over all seeds; not reached = infinite).

    ``table`` holds per-curve rows (``compute_at_threshold``); ``plan`` is the sweep plan
    ({model: {"grid": {key: [values]}, "trials": {trial: {key: value}}}}) used to flag winners at
    the edge of their grid; ``envelope`` is ``lower_envelope(table)`` when the caller has it already.
    """
    if envelope is None:
        if "threshold_name" not in table.columns:
            table = table.assign(threshold_name="")
        envelope = lower_envelope(with_trial_columns(table))
    envelope = envelope.copy()
    envelope["_compute"] = np.where(envelope["reached"], envelope["train_flops"], np.inf)
    envelope["_bound"] = np.where(envelope["reached"], envelope["train_flops"], envelope["train_flops_lower_bound"])
    envelope["_with_search"] = np.where(envelope["reached"], envelope["train_flops_with_search"], np.inf)
    plan = plan or {}
    rows = []
    for (name, model), seeds in envelope.groupby(["threshold_name", "model"], sort=False):
        median = _median_with_infinity(seeds["_compute"])
        reached = bool(np.isfinite(median))
        reached_seeds = seeds.loc[seeds["reached"]]
        grid = plan.get(model, {}).get("grid", {})
        trial_values = plan.get(model, {}).get("trials", {})
        edges = sorted({edge for trial in reached_seeds["winning_trial"]
                        for edge in edge_of_grid(trial_values.get(trial, {}), grid)})
        rows.append({
            "threshold_name": name, "model": model,
            "seeds": len(seeds), "seeds_reached": int(seeds["reached"].sum()), "reached": reached,
            "train_flops_median": median if reached else np.nan,
            "train_flops_min": reached_seeds["train_flops"].min() if reached else np.nan,
            "train_flops_max": reached_seeds["train_flops"].max() if reached else np.nan,
            "train_flops_lower_bound": np.nan if reached else _median_with_infinity(seeds["_bound"]),
            "crossed_at_first_evaluation": bool(reached_seeds["crossed_at_first_evaluation"].any()),
            "winning_trials": ";".join(dict.fromkeys(reached_seeds["winning_trial"].astype(str))),
            "winner_at_grid_edge": bool(edges), "grid_edges": "; ".join(edges),
            "trials": int(seeds["trials"].max()),
            "trials_diverged": int(seeds["trials_diverged"].sum()),
            "search_flops": float(seeds["search_flops"].sum()),
            "train_flops_with_search_median": _median_with_infinity(seeds["_with_search"]) if reached else np.nan,
            "epoch_median": reached_seeds["epoch"].median(),
            "images_seen_median": reached_seeds["images_seen"].median(),
            "wall_seconds_median": reached_seeds["wall_seconds"].median(),
            "best_metric_min_over_seeds": float(seeds["best_metric"].min()),
        })
    return pd.DataFrame(rows)


def protocol_per_model(table: pd.DataFrame, plan: dict | None = None) -> pd.DataFrame:
    """``per_model`` under the measurement protocol (algoprogress.protocol), for a table whose rows carry ``role``
    and ``measured`` (the thresholds stage's): each model's compute is the median over its measured runs (a model
    with several trials: its chosen trial's confirmation runs); beside it, from its selection runs, the
    ``optimistic_bound_flops`` (the median over seeds of the least over trials: the lower envelope, biased low by
    the choice among noisy trials), the ``selection_flops`` its trial was chosen by (what the efficiency factor's
    best model is chosen by), and the price of the search. A table without ``measured`` is measured whole."""
    if "measured" not in table.columns:
        return per_model(table, plan)
    measured = table.loc[table["measured"].astype(bool)]
    selection = table.loc[table["role"] == SELECTION]
    models = per_model(measured, plan)
    if selection.empty:
        return models.assign(chosen_trial=models["winning_trials"], optimistic_bound_flops=np.nan,
                             selection_flops=np.nan)
    chosen = measured.groupby("model")["trial"].first()
    on_chosen = selection.loc[selection["trial"].to_numpy() == selection["model"].map(chosen).to_numpy()]
    keys = ["threshold_name", "model"]
    bound = per_model(selection, plan).set_index(keys)
    by_choice = per_model(on_chosen, plan).set_index(keys)["train_flops_median"] if len(on_chosen) else None
    models = models.set_index(keys)
    for column in ("trials", "trials_diverged", "search_flops", "train_flops_with_search_median"):
        models[column] = bound[column].reindex(models.index)
    models["optimistic_bound_flops"] = bound["train_flops_median"].reindex(models.index)
    models["selection_flops"] = np.nan if by_choice is None else by_choice.reindex(models.index)
    models["chosen_trial"] = [chosen.get(model) for _, model in models.index]
    return models.reset_index()


def seed_values(envelope: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Per (threshold, model): each seed's envelope compute (``lower_envelope``; infinite where not
    reached), for resampling."""
    compute = np.where(envelope["reached"], envelope["train_flops"], np.inf)
    envelope = envelope.assign(_compute=compute)
    return {key: group["_compute"].to_numpy(dtype=float)
            for key, group in envelope.groupby(["threshold_name", "model"], sort=False)}


def resolved_values(table: pd.DataFrame) -> dict[str, float]:
    """Each threshold's numeric value as the thresholds stage resolved it (``value: reference`` too)."""
    return table.groupby("threshold_name", sort=False)["threshold"].first().astype(float).to_dict()


def with_resolved_values(thresholds: list[dict], table: pd.DataFrame) -> list[dict]:
    """The thresholds with the values the thresholds stage resolved, and how a reference-defined one was."""
    values = resolved_values(table)
    defined = (table.groupby("threshold_name", sort=False)["threshold_defined_as"].first().to_dict()
               if "threshold_defined_as" in table.columns else {})
    return [{**t, "value": values.get(t["name"], t["value"]),
             **({"defined_as": defined[t["name"]]} if t["value"] == REFERENCE_LEVEL and t["name"] in defined else {})}
            for t in thresholds]
