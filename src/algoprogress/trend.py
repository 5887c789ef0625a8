"""The trend: how fast the compute needed for a fixed capability falls with publication date.

Model: ordinary least squares (statsmodels) of ``log2(compute at threshold)`` on the publication
date in decimal years, one point per model (its compute at threshold: the median over all its seeds,
see ``algoprogress.thresholds``; models not reached, and models whose threshold was met at their
first evaluation, are reported but not fitted). With slope ``b`` (log2 units per year, negative when
efficiency improves), efficiency doubles every ``-12 / b`` months. Its interval maps the slope's
t-interval (n - 2 degrees of freedom) through the same formula; where the slope's interval includes
zero the doubling time is unbounded above and ``doubling_time_months_high`` is null. With
``robust=True`` the slope's standard error is heteroskedasticity-robust (HC3), still with t quantiles
on n - 2 degrees of freedom; HC3 needs at least ``HC3_MIN_N`` points, below that the classical errors
are used and the fit says so.

The **efficiency factor** is the reference model's compute divided by the compute of the best
(least compute) fitted model; the **Moore factor** is what 2-year hardware doubling gives over the
same span, from the reference's date to that best model's date.

The **efficiency frontier**: the models that needed less compute than every model published before
them, one per date (of models sharing a date, only the one needing least compute can be on it).

The **bootstrap** interval adds run-to-run noise to the picture: each draw resamples the seeds of
each model (their median is the model's compute in that draw) and then the models of the set, with
replacement; the frontier is re-selected in each draw; the interval is the percentile interval of
the slope, mapped to months.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MOORE_DOUBLING_MONTHS = 24.0
HC3_MIN_N = 4
# a bootstrap whose usable draws (two dates or more to fit) are fewer than this share reports nothing
BOOTSTRAP_MIN_USABLE_SHARE = 0.5


def decimal_year(date) -> float:
    date = pd.Timestamp(date)
    start = pd.Timestamp(year=date.year, month=1, day=1)
    days = 366 if date.is_leap_year else 365
    return date.year + (date - start).days / days


def months_from_slope(slope: float) -> float:
    return -12.0 / slope if slope < 0 else math.inf


def usable_points(points: pd.DataFrame) -> pd.DataFrame:
    """Points with a positive, finite compute, with their decimal year, oldest first."""
    compute = pd.to_numeric(points["compute"], errors="coerce")
    keep = np.isfinite(compute.to_numpy(dtype=float)) & (compute.to_numpy(dtype=float) > 0)
    usable = points.loc[keep].copy()
    usable["compute"] = compute.loc[keep].astype(float)
    usable["year"] = [decimal_year(d) for d in usable["published"]]
    return usable.sort_values(["year", "model"], kind="stable")


def frontier_flags(years: np.ndarray, compute: np.ndarray) -> np.ndarray:
    """Frontier membership for arrays of (year, compute): per date only its least-compute model can be
    on the frontier, and only if it needs less than every model of every earlier date."""
    years, compute = np.asarray(years, dtype=float), np.asarray(compute, dtype=float)
    flags = np.zeros(len(years), dtype=bool)
    valid = np.flatnonzero(np.isfinite(compute) & (compute > 0))
    if len(valid) == 0:
        return flags
    order = valid[np.lexsort((compute[valid], years[valid]))]
    y, c = years[order], compute[order]
    first_of_date = np.r_[True, y[1:] != y[:-1]]
    best_before = np.r_[np.inf, np.minimum.accumulate(c)[:-1]]
    flags[order] = first_of_date & (c < best_before)
    return flags


def frontier_mask(points: pd.DataFrame) -> pd.Series:
    """True for the models on the efficiency frontier (see ``frontier_flags``)."""
    compute = pd.to_numeric(points["compute"], errors="coerce").to_numpy(dtype=float)
    years = np.array([decimal_year(d) for d in points["published"]], dtype=float) if len(points) else np.array([])
    return pd.Series(frontier_flags(years, compute), index=points.index)


def _ols(years: np.ndarray, log2_compute: np.ndarray, robust: bool):
    # the two modules, not statsmodels.api, which imports all of statsmodels (0.25 CPU-s more per process)
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tools.tools import add_constant

    model = OLS(log2_compute, add_constant(years))
    return model.fit(cov_type="HC3", use_t=True) if robust else model.fit()


def fit_trend(points: pd.DataFrame, reference: dict | None = None, level: float = 0.95,
              robust: bool = False, best_model: str | None = None) -> dict:
    """Fit ``points`` (columns: model, published, compute; optionally selection_compute) and summarise the trend.

    ``reference``: {model, published, compute} of the reference model (compute None or NaN when it
    has none). Returns a JSON-ready dict: doubling time and its interval, slope, R^2, n, the best
    model and the efficiency factor of it over the reference, and the Moore factor of the same span.
    The best model is ``best_model`` where it is among the points, else the one needing the least
    ``selection_compute`` (the compute its trial was chosen by: chosen on the selection runs, read on the
    confirmation runs, so that the choice does not pick the luckiest measurement), else the least ``compute``.
    """
    points = usable_points(points)
    n = len(points)
    use_robust = robust and n >= HC3_MIN_N
    result = {"n": n, "models": points["model"].tolist(), "confidence_level": level,
              "standard_errors": "HC3" if use_robust else "OLS",
              "method": "OLS of log2(compute) on decimal year (statsmodels); t interval on n - 2 df",
              "reference_model": reference["model"] if reference else None, "doubling_time_months": None,
              "doubling_time_months_low": None, "doubling_time_months_high": None, "doubling_time_unbounded": None,
              # every key present whatever the data, null where there is nothing to say
              "slope_log2_per_year": None, "slope_low": None, "slope_high": None, "intercept": None,
              "r_squared": None, "best_model": None, "best_model_published": None, "best_model_compute": None,
              "best_model_chosen_by": None,
              "efficiency_factor": None, "years_reference_to_best": None, "moore_factor_same_span": None,
              "notes": []}
    if robust and not use_robust:
        result["notes"].append(f"HC3 errors need n >= {HC3_MIN_N}; classical OLS errors used (n = {n})")
    if n:
        best = choose_best(points, best_model)
        result.update(best_model=best["model"], best_model_published=best["published"],
                      best_model_compute=float(best["compute"]),
                      best_model_chosen_by="the window's named end model" if best["model"] == best_model else
                      "the least compute on the selection runs" if "selection_compute" in points.columns else
                      "the least compute")
        _add_factors(result, reference, best)
    if n < 2 or points["year"].nunique() < 2:
        result["notes"].append(f"fewer than two dates to fit (n = {n})")
        return result

    fit = _ols(points["year"].to_numpy(), np.log2(points["compute"].to_numpy()), use_robust)
    slope = float(fit.params[1])
    low, high = (float(v) for v in fit.conf_int(alpha=1 - level)[1]) if fit.df_resid > 0 else (math.nan, math.nan)
    doubling = months_from_slope(slope)
    result.update({
        "doubling_time_months": doubling if math.isfinite(doubling) else None,
        "slope_log2_per_year": slope,
        "slope_low": None if math.isnan(low) else low,
        "slope_high": None if math.isnan(high) else high,
        "intercept": float(fit.params[0]),
        "r_squared": float(fit.rsquared),
    })
    if math.isnan(low):
        result["notes"].append("no interval with two points")
    else:
        # the steepest decline (low slope) gives the shortest doubling time
        result.update(doubling_time_months_low=months_from_slope(low) if low < 0 else None,
                      doubling_time_months_high=months_from_slope(high) if high < 0 else None,
                      doubling_time_unbounded=not high < 0)
    if not math.isfinite(doubling):
        result["notes"].append("compute does not fall with date: no doubling time")
    return result


def choose_best(points: pd.DataFrame, best_model: str | None = None):
    """The efficiency factor's best model among usable ``points`` (see ``fit_trend``)."""
    if best_model is not None and best_model in set(points["model"]):
        return points.loc[points["model"] == best_model].iloc[0]
    key = "selection_compute" if "selection_compute" in points.columns else "compute"
    by = points.assign(_key=pd.to_numeric(points[key], errors="coerce").fillna(points["compute"]))
    return by.sort_values(["_key", "compute", "year"], kind="stable").iloc[0]


def _add_factors(result: dict, reference: dict | None, best) -> None:
    compute = None if reference is None else reference.get("compute")
    if compute is None or not np.isfinite(compute) or compute <= 0:
        name = reference["model"] if reference else None
        result["notes"].append(f"reference model {name!r} has no compute at this threshold: no efficiency factor")
        return
    years = decimal_year(best["published"]) - decimal_year(reference["published"])
    result.update({
        "efficiency_factor": float(compute / best["compute"]),
        "years_reference_to_best": years,
        "moore_factor_same_span": 2.0 ** (12 * years / MOORE_DOUBLING_MONTHS),
    })


def confidence_band(points: pd.DataFrame, years: np.ndarray, level: float = 0.95, robust: bool = False):
    """Fitted compute and its pointwise confidence band (of the mean) at ``years``, or None."""
    from statsmodels.tools.tools import add_constant

    points = usable_points(points)
    if len(points) < 3 or points["year"].nunique() < 2:
        return None
    fit = _ols(points["year"].to_numpy(), np.log2(points["compute"].to_numpy()), robust and len(points) >= HC3_MIN_N)
    frame = fit.get_prediction(add_constant(np.asarray(years, dtype=float), has_constant="add")).summary_frame(
        alpha=1 - level)
    return (2.0 ** frame["mean"].to_numpy(), 2.0 ** frame["mean_ci_lower"].to_numpy(),
            2.0 ** frame["mean_ci_upper"].to_numpy())


def efficiency_factors(points: pd.DataFrame, reference: str) -> pd.Series:
    """Reference compute / each model's compute (NaN where either is missing)."""
    by_model = pd.to_numeric(points.set_index("model")["compute"], errors="coerce").astype(float)
    if reference not in by_model or not np.isfinite(by_model[reference]) or by_model[reference] <= 0:
        return pd.Series(np.nan, index=by_model.index)
    return by_model[reference] / by_model


def bootstrap_resample(seed_computes: list[np.ndarray], draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(each model's compute in each draw: the median of its resampled seeds, the models picked per draw)."""
    rng = np.random.default_rng(seed)
    n = len(seed_computes)
    by_draw = np.empty((n, draws))
    for index, values in enumerate(seed_computes):
        values = np.asarray(values, dtype=float)
        if len(values) == 1:
            by_draw[index] = values[0]
        else:
            resampled = values[rng.integers(0, len(values), (draws, len(values)))]
            by_draw[index] = np.median(resampled, axis=1)
    return by_draw, rng.integers(0, n, (draws, n))


def bootstrap_doubling_time(years: np.ndarray, seed_computes: list[np.ndarray], frontier: bool, draws: int,
                            seed: int, level: float = 0.95, resampled: tuple | None = None) -> dict:
    """Percentile bootstrap of the doubling time over seeds within models and models within the set.

    ``years[i]`` is model i's date and ``seed_computes[i]`` its seeds' compute at threshold (infinite
    for a seed not reached); a model's compute in a draw is the median of its resampled seeds. With
    ``frontier`` the frontier is re-selected in every draw. Vectorised over draws except the fits.
    ``resampled`` is ``bootstrap_resample(seed_computes, draws, seed)`` when the caller has it already.
    """
    years = np.asarray(years, dtype=float)
    n = len(years)
    multi_seed = any(len(values) > 1 for values in seed_computes)
    result = {"draws": draws, "seed": seed, "confidence_level": level,
              "levels": ["seeds within models", "models"] if multi_seed else ["models"],
              "usable_draws": 0, "doubling_time_months_low": None, "doubling_time_months_high": None,
              "doubling_time_unbounded": None, "doubling_time_months_median": None, "notes": []}
    if not multi_seed:
        result["notes"].append("every model has one seed: models resampled only, run-to-run noise not included")
    if n < 2 or draws < 1:
        result["notes"].append(f"nothing to resample (models {n}, draws {draws})")
        return result
    by_draw, picks = resampled if resampled is not None else bootstrap_resample(seed_computes, draws, seed)
    slopes = np.full(draws, np.nan)
    for draw in range(draws):
        chosen = picks[draw]
        x, c = years[chosen], by_draw[chosen, draw]
        keep = np.isfinite(c) & (c > 0)
        if frontier:
            keep &= frontier_flags(x, c)
        x, y = x[keep], np.log2(c[keep])
        if len(x) >= 2 and np.ptp(x) > 0:
            dx = x - x.mean()
            slopes[draw] = (dx @ (y - y.mean())) / (dx @ dx)
    usable = slopes[np.isfinite(slopes)]
    result["usable_draws"] = int(len(usable))
    if len(usable) < BOOTSTRAP_MIN_USABLE_SHARE * draws:
        result["notes"].append(f"only {len(usable)} of {draws} draws had two dates or more to fit: no interval")
        return result
    low, high = np.quantile(usable, [(1 - level) / 2, (1 + level) / 2])
    median = float(np.median(usable))
    result.update(doubling_time_months_low=months_from_slope(low) if low < 0 else None,
                  doubling_time_months_high=months_from_slope(high) if high < 0 else None,
                  doubling_time_unbounded=bool(high >= 0),
                  doubling_time_months_median=months_from_slope(median) if median < 0 else None,
                  slope_low=float(low), slope_high=float(high))
    return result
