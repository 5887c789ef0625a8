"""Intervals for the headline, checked against known truth (bench/calibration.py; docs/method.md, "Calibration").

``published_interval`` is what the analysis publishes with every fit (``interval`` in trend.json, the ``interval_*``
columns of trend.csv): for the frontier, a parametric bootstrap of the whole frontier fit; for all models, the OLS
interval; each widened by the reference-defined level's error; the efficiency factor's interval from the slope's.
The other functions are the candidates the calibration benchmark compares. Inputs are what
``analysis.analyse_measured`` has at hand: per model its date (decimal years), its measured runs' computes at
threshold (one array per model, infinite for a run not reached; the model's compute is their median), which models
are on the frontier, the reference and best models.
"""

from __future__ import annotations

import math

import numpy as np


def log2_medians(seed_computes: list[np.ndarray]) -> np.ndarray:
    """Per model: log2 of the median over its runs (NaN where that median is infinite or not positive)."""
    medians = np.array([np.median(np.asarray(v, dtype=float)) if len(v) else np.nan for v in seed_computes])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(medians) & (medians > 0), np.log2(medians), np.nan)


def ols(years: np.ndarray, y: np.ndarray) -> dict:
    """OLS of ``y`` on ``years``: slope, intercept, the slope's standard error, residual df and sd."""
    x = np.asarray(years, dtype=float)
    n = len(x)
    dx = x - x.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (y - y.mean()) / sxx) if sxx > 0 else math.nan
    intercept = float(y.mean() - slope * x.mean())
    df = n - 2
    resid = y - intercept - slope * x
    sd = float(np.sqrt(resid @ resid / df)) if df > 0 else math.nan
    return {"slope": slope, "intercept": intercept, "se": sd / math.sqrt(sxx) if sxx > 0 else math.nan,
            "df": df, "resid_sd": sd, "n": n}


def t_interval(point: float, se: float, df: int, level: float) -> tuple[float, float, float]:
    """(point, low, high): ``point`` -+ the t quantile on ``df`` degrees of freedom times ``se`` (NaN bounds
    without degrees of freedom or a finite ``se``)."""
    from scipy import stats  # here: scipy.stats costs every process that imports thresholds 0.6 s (Intel Xeon)

    if not df > 0 or not np.isfinite(se):
        return point, math.nan, math.nan
    q = stats.t.ppf((1 + level) / 2, df)
    return point, point - q * se, point + q * se


# --- the reference-defined level -----------------------------------------------------------------------------

# the variance of the median of k independent normal values, in units of one value's variance (k = 1, 2, 3;
# pi / (2 k) beyond)
MEDIAN_VARIANCE = {1: 1.0, 2: 0.5, 3: 0.4487}


def level_standard_error(final_level: float, n_val: int, runs: int, between_runs_sd: float = 0.0) -> float:
    """Standard error of a reference-defined level (``thresholds.reference_level``: the median over ``runs``
    calibration runs of their final evaluation, less a margin): each final evaluation is a proportion of ``n_val``
    validation images, binomial around the run's true accuracy (plus ``between_runs_sd``, the spread of the runs'
    true final accuracies, where known)."""
    p = min(max(final_level, 1.0 / n_val), 1 - 1.0 / n_val)
    variance = p * (1 - p) / n_val + between_runs_sd ** 2
    return math.sqrt(variance * MEDIAN_VARIANCE.get(runs, math.pi / (2 * max(runs, 1))))


def level_sensitivity(measured, step: float) -> dict[str, float]:
    """Per model: d log2(compute at threshold) / d level, from its measured runs' computes at the level ``step / 2``
    above and below (``train_flops_level_up`` / ``_down`` of ``thresholds.with_level_shifts``, NaN where not
    reached); a model's compute is the median over its runs, a run not reached counting as infinite; NaN where
    either median is infinite."""
    shifted = measured[["model", "train_flops_level_up", "train_flops_level_down"]].fillna(np.inf)
    medians = shifted.groupby("model", sort=False).median()
    high, low = medians["train_flops_level_up"].to_numpy(), medians["train_flops_level_down"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.log2(high / low) / step
    finite = np.isfinite(high) & np.isfinite(low) & (low > 0)
    return dict(zip(medians.index.astype(str), np.where(finite, slope, np.nan).tolist(), strict=True))


def level_slope_term(years: np.ndarray, sensitivity: np.ndarray, level_se: float) -> float:
    """The slope's standard deviation from the level's error: a level off by ``e`` moves model i's log2 compute by
    ``sensitivity[i] * e``, hence the OLS slope by ``e`` times the OLS slope of the sensitivities on the years
    (models without a finite sensitivity are given the median of the others')."""
    s = np.asarray(sensitivity, dtype=float)
    if not np.isfinite(s).any() or not level_se > 0 or len(s) < 2:
        return 0.0
    s = np.where(np.isfinite(s), s, np.nanmedian(s))
    return abs(ols(years, s)["slope"]) * level_se


# --- the frontier, vectorised over draws ---------------------------------------------------------------------

def frontier_matrix(years: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``trend.frontier_flags`` for every row of ``y`` (draws x models, log2 compute) at once: per date only its
    least model, and only if it needs less than every model of every earlier date."""
    years = np.asarray(years, dtype=float)
    order = np.argsort(years, kind="stable")
    t, z = years[order], y[:, order]
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    group_min = np.minimum.reduceat(z, starts, axis=1)
    best_before = np.concatenate([np.full((len(z), 1), np.inf),
                                  np.minimum.accumulate(group_min, axis=1)[:, :-1]], axis=1)
    group = np.cumsum(np.r_[True, t[1:] != t[:-1]]) - 1
    least = z == group_min[:, group]
    first_least = least & (np.cumsum(least, axis=1) - np.cumsum(least, axis=1)[:, starts][:, group]
                           + least[:, starts][:, group] == 1)  # ties: the first of the date's least
    flags = first_least & (z < best_before[:, group])
    out = np.empty_like(flags)
    out[:, order] = flags
    return out


def masked_slopes(years: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row of ``y``: the OLS slope over the columns ``mask`` keeps (NaN with fewer than two dates)."""
    w = mask.astype(float)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * years).sum(axis=1) / n
        my = (w * np.where(mask, y, 0.0)).sum(axis=1) / n
        dx = (years[None, :] - mx[:, None]) * w
        sxx = (dx * dx).sum(axis=1)
        return np.where(sxx > 1e-12, (dx * (np.where(mask, y, 0.0) - my[:, None])).sum(axis=1) / sxx, np.nan)


# --- the intervals -------------------------------------------------------------------------------------------

def slope_interval(years: np.ndarray, y: np.ndarray, level: float = 0.95, level_term: float = 0.0) -> tuple:
    """OLS slope of ``y`` (log2 compute) on ``years`` with its t interval on n - 2 df, the standard error widened by
    ``level_term`` (``level_slope_term``) in quadrature: (slope, low, high)."""
    fit = ols(years, y)
    return t_interval(fit["slope"], math.hypot(fit["se"], level_term), fit["df"], level)


def frontier_parametric_interval(years: np.ndarray, y: np.ndarray, level: float = 0.95, draws: int = 2000,
                                 seed: int = 0, level_term: float = 0.0) -> tuple:
    """The frontier's OLS slope, corrected for its selection, with a parametric bootstrap interval of the whole
    frontier fit.

    The world is fitted on every model (OLS: intercept, slope ``b``, residual sd ``s`` on n - 2 df); each draw
    simulates every model's log2 compute from it (``s`` itself redrawn from its chi-square law, so that the
    interval has t-like tails), re-selects the frontier and refits it; the draws' slopes less ``b`` are the frontier
    estimator's error (its bias from selecting low points included). The point is the observed frontier slope less
    their median, the interval the observed slope less their quantiles (a basic bootstrap). ``level_term`` adds the
    level's error. (point, low, high)."""
    fit = ols(years, y)
    flags = frontier_matrix(years, y[None, :])[0]
    observed = ols(years[flags], y[flags])["slope"] if flags.sum() >= 2 else math.nan
    if not fit["df"] > 0 or not np.isfinite(observed):
        return observed, math.nan, math.nan
    rng = np.random.default_rng(seed)
    scale = fit["resid_sd"] * np.sqrt(fit["df"] / rng.chisquare(fit["df"], draws))
    simulated = fit["intercept"] + fit["slope"] * years[None, :] + rng.normal(size=(draws, len(y))) * scale[:, None]
    errors = masked_slopes(years, simulated, frontier_matrix(years, simulated)) - fit["slope"]
    errors = errors[np.isfinite(errors)] + rng.normal(0, level_term, np.isfinite(errors).sum())
    if len(errors) < draws / 2:  # most simulated worlds have no frontier of two dates: no interval
        return observed, math.nan, math.nan
    low, mid, high = np.quantile(errors, [(1 - level) / 2, 0.5, (1 + level) / 2])
    return observed - mid, observed - high, observed - low


def trend_efficiency_factor(slope: tuple, years_reference_to_best: float) -> tuple:
    """log2 of the efficiency factor the trend gives from the reference's date to the best model's:
    ``-slope * years``, with the slope's interval mapped the same way: (log2 factor, low, high; low <= high
    whatever the span's sign)."""
    point, low, high = slope
    span = years_reference_to_best
    return -point * span, min(-high * span, -low * span), max(-high * span, -low * span)


def direct_efficiency_interval(y_reference: float, y_best: float, model_sd: float, df: int, level: float = 0.95,
                               level_term: float = 0.0) -> tuple:
    """log2 of reference compute over best compute, the two measured models' own, with a t interval: each model's
    measured log2 compute off its truth by ``model_sd`` (e.g. the all-models fit's residual sd, on ``df``), and
    the two sensitivities to the level apart by ``level_term`` (in log2 per level error)."""
    point = y_reference - y_best
    return t_interval(point, math.sqrt(2 * model_sd ** 2 + level_term ** 2), df, level)


def replicate_sd(seed_computes: list[np.ndarray]) -> tuple[float, int]:
    """The run-to-run sd of log2 compute within models, pooled over the models with two or more finite runs, and its
    degrees of freedom (NaN, 0 with none). Only the runs' spread: a chosen trial's own luck, shared by its runs,
    is not in it."""
    ss, df = 0.0, 0
    for values in seed_computes:
        v = np.asarray(values, dtype=float)
        v = np.log2(v[np.isfinite(v) & (v > 0)])
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            df += len(v) - 1
    return (math.sqrt(ss / df), df) if df else (math.nan, 0)


def headline_intervals(models: list[str], years: np.ndarray, seed_computes: list[np.ndarray], on_frontier: np.ndarray,
                       reference: str, best: str | None, sensitivity: np.ndarray | None = None,
                       level_se: float = 0.0, level: float = 0.95, draws: int = 2000, seed: int = 0) -> dict:
    """Every candidate interval of the headline, each (point, low, high); NaN where it cannot be had.

    Slope (log2 per year): ``slope_all`` (OLS over every model whose compute is resolved: the package's ``all``
    fit), ``slope_all_level`` (the same, widened for the reference-defined level's error), ``slope_frontier_param``
    (the frontier's slope corrected for its selection, parametric bootstrap). log2 of the efficiency factor (reference
    over ``best``): see ``efficiency_intervals``. ``models``, ``years``, ``seed_computes``, ``on_frontier``: per
    model (a model's compute is the median of its runs, infinite where not reached); ``sensitivity``: per model
    d log2 compute / d level (``level_sensitivity``); ``level_se``: the level's standard error
    (``level_standard_error``; 0 for a level given as a number)."""
    years = np.asarray(years, dtype=float)
    y = log2_medians(seed_computes)
    ok = np.isfinite(y)
    sens = np.full(len(y), np.nan) if sensitivity is None else np.asarray(sensitivity, dtype=float)
    nan3 = (math.nan, math.nan, math.nan)
    out = dict.fromkeys(("slope_all", "slope_all_level", "slope_frontier_param", "ef_trend", "ef_trend_frontier",
                         "ef_direct", "ef_replicates"), nan3)
    if ok.sum() < 3 or np.ptp(years[ok]) == 0:
        return out
    t, yy, ss = years[ok], y[ok], sens[ok]
    term = level_slope_term(t, ss, level_se)
    out["slope_all"] = slope_interval(t, yy, level)
    out["slope_all_level"] = slope_interval(t, yy, level, term)
    front = np.asarray(on_frontier, dtype=bool)[ok]
    front_term = level_slope_term(t[front], ss[front], level_se) if front.sum() > 2 else term
    out["slope_frontier_param"] = frontier_parametric_interval(t, yy, level, draws, seed, front_term)
    index = {m: i for i, m in enumerate(models)}
    if best in index and reference in index and ok[index[best]] and ok[index[reference]]:
        out.update(efficiency_intervals(index[reference], index[best], years, y, seed_computes, sens, level_se,
                                        {"all": out["slope_all_level"], "frontier": out["slope_frontier_param"]},
                                        level))
    return out


def efficiency_intervals(r: int, b: int, years: np.ndarray, y: np.ndarray, seed_computes: list[np.ndarray],
                         sensitivity: np.ndarray, level_se: float, slopes: dict, level: float = 0.95) -> dict:
    """log2 of the efficiency factor of model ``b`` (the best) over model ``r`` (the reference), each (point, low,
    high): ``ef_trend`` / ``ef_trend_frontier``: the factor of the trend (``slopes["all"]`` / ``["frontier"]``,
    each (point, low, high)) over the years from r's date to b's; ``ef_direct``: the two models' own log2 computes
    ``y[r] - y[b]``, each off its truth by the all-models fit's residual sd, and the level's error through their
    sensitivities; ``ef_replicates``: the same with the within-model run-to-run sd (needs two runs a model)."""
    span = years[b] - years[r]
    out = {"ef_trend": trend_efficiency_factor(slopes["all"], span),
           "ef_trend_frontier": trend_efficiency_factor(slopes["frontier"], span)}
    gap = sensitivity[r] - sensitivity[b]
    level_term = gap * level_se if np.isfinite(gap) else 0.0
    ok = np.isfinite(y)
    fit = ols(years[ok], y[ok])
    out["ef_direct"] = direct_efficiency_interval(y[r], y[b], fit["resid_sd"], fit["df"], level, level_term)
    sd, df = replicate_sd(seed_computes)
    out["ef_replicates"] = (math.nan, math.nan, math.nan)
    if df:
        runs = [int(np.isfinite(np.asarray(seed_computes[i], dtype=float)).sum()) for i in (r, b)]
        spread = sd * math.sqrt(sum(MEDIAN_VARIANCE.get(n, math.pi / (2 * n)) for n in runs))
        out["ef_replicates"] = t_interval(y[r] - y[b], math.hypot(spread, level_term), df, level)
    return out


PUBLISHED_METHODS = {
    "frontier": ("parametric bootstrap of the frontier fit (the world fitted on every resolved model, every model "
                 "redrawn, the frontier re-selected and refitted per draw; basic bootstrap interval) widened by the "
                 "reference-defined level's error"),
    "all": "OLS t interval on n - 2 df, its standard error widened by the reference-defined level's error",
}
# What the calibration benchmark measured (docs/method.md, "Calibration against known truth": 24 cells of 1,000
# simulated experiments, bench/calibration.py --cells full --experiments 1000 --seed 1): the least and the most
# coverage over the cells of each published 95% interval, its table's short name; a test holds these to the table.
MEASURED_COVERAGE = {
    "frontier": {"slope": ("**frontier param.**", 0.935, 0.965),
                 "efficiency_factor": ("**frontier trend**", 0.937, 0.966)},
    "all": {"slope": ("*all + level*", 0.935, 0.961), "efficiency_factor": ("trend", 0.937, 0.961)},
}


def measured_coverage(set_name: str, level: float) -> str:
    """What the calibration benchmark measured of this set's published intervals, said in a sentence."""
    if level != 0.95:
        return "not measured at this confidence level (the calibration benchmark measured the 95% intervals)"
    slope, factor = (MEASURED_COVERAGE[set_name][k][1:] for k in ("slope", "efficiency_factor"))
    return (f"the 95% interval covered the true slope in {slope[0]:.1%}-{slope[1]:.1%} and the efficiency factor's "
            f"its truth in {factor[0]:.1%}-{factor[1]:.1%} of the simulated experiments of each of the 24 cells of "
            "the calibration benchmark (docs/method.md: every model on one trend line with noise)")


EF_METHOD = ("the trend's factor over the years from the reference's date to the best model's: -slope x years "
             "(the slope of this interval: for the frontier, corrected for the frontier's selection), with the "
             "slope's interval mapped the same way")


def published_interval(set_name: str, years: np.ndarray, y: np.ndarray, on_frontier: np.ndarray,
                       sensitivity: np.ndarray, level_se: float, years_reference_to_best: float | None,
                       level: float = 0.95, seed: int = 0, draws: int = 2000) -> dict:
    """The interval published with a fit of ``set_name`` (frontier or all) over resolved models (``years``, ``y``:
    log2 compute; ``on_frontier``; ``sensitivity``: d log2 compute / d level per model; ``level_se``: the level's
    standard error, 0 for a level given as a number): the slope's (for the frontier, corrected for the frontier's
    selection), its doubling times and the efficiency factor's (``years_reference_to_best``: None without one)."""
    years, y = np.asarray(years, dtype=float), np.asarray(y, dtype=float)
    sens, front = np.asarray(sensitivity, dtype=float), np.asarray(on_frontier, dtype=bool)
    out = {"method": PUBLISHED_METHODS[set_name], "measured_coverage": measured_coverage(set_name, level),
           "level_standard_error": level_se, "slope_log2_per_year": None,
           "slope_low": None, "slope_high": None, "doubling_time_months": None, "doubling_time_months_low": None,
           "doubling_time_months_high": None, "doubling_time_unbounded": None, "efficiency_factor_method": EF_METHOD,
           "efficiency_factor_trend": None, "efficiency_factor_low": None, "efficiency_factor_high": None}
    if len(y) < 3 or np.ptp(years) == 0:
        return out
    term = level_slope_term(years, sens, level_se)
    if set_name == "frontier":
        front_term = level_slope_term(years[front], sens[front], level_se) if front.sum() > 2 else term
        slope = frontier_parametric_interval(years, y, level, draws, seed, front_term)
    else:
        slope = slope_interval(years, y, level, term)
    point, low, high = slope
    if not np.isfinite(low):
        return out
    out.update(slope_log2_per_year=point, slope_low=low, slope_high=high,
               doubling_time_months=-12 / point if point < 0 else None,
               doubling_time_months_low=-12 / low if low < 0 else None,
               doubling_time_months_high=-12 / high if high < 0 else None, doubling_time_unbounded=not high < 0)
    if years_reference_to_best is not None:
        factor = trend_efficiency_factor(slope, years_reference_to_best)
        out.update(efficiency_factor_trend=2.0 ** factor[0], efficiency_factor_low=2.0 ** factor[1],
                   efficiency_factor_high=2.0 ** factor[2])
    return out
