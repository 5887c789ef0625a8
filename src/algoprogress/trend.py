"""The trend: how fast the compute needed for a fixed capability falls with publication date.

Model: ordinary least squares (statsmodels) of ``log2(compute at threshold)`` on the publication
date in decimal years, one point per model (the median over its seeds that reached the
threshold; models that never reached it are left out). With slope ``b`` (log2 units per year,
negative when efficiency improves), efficiency doubles every ``-12 / b`` months. Its interval maps
the slope's t-interval through the same formula; where the slope's interval includes zero the
doubling time is unbounded above and ``doubling_time_months_high`` is null. With
``robust=True`` the slope's standard error is heteroskedasticity-robust (HC3) and the interval uses
the normal distribution (statsmodels' convention for robust covariances). The efficiency factor of
a model is the reference model's compute divided by that model's (measured, not fitted).

Two sets of points are fitted: all models, and the **efficiency frontier**: the models that needed
less compute than every model published before them (the paper's highlighted points).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MOORE_DOUBLING_MONTHS = 24.0


def decimal_year(date) -> float:
    date = pd.Timestamp(date)
    start = pd.Timestamp(year=date.year, month=1, day=1)
    days = 366 if date.is_leap_year else 365
    return date.year + (date - start).days / days


def _months(slope: float) -> float:
    return -12.0 / slope if slope < 0 else math.inf


def _usable(points: pd.DataFrame) -> pd.DataFrame:
    points = points.dropna(subset=["compute"]).loc[lambda d: d["compute"] > 0].copy()
    points["year"] = points["published"].map(decimal_year)
    return points.sort_values(["year", "model"], kind="stable")


def frontier_mask(points: pd.DataFrame) -> pd.Series:
    """True for models that needed less compute than every model published strictly before them."""
    usable = _usable(points)
    best_before = {}
    running = math.inf
    for year, group in usable.groupby("year", sort=True):
        best_before[year] = running
        running = min(running, group["compute"].min())
    on_frontier = usable["compute"] < usable["year"].map(best_before)
    return on_frontier.reindex(points.index, fill_value=False)


def _ols(points: pd.DataFrame, robust: bool):
    import statsmodels.api as sm

    design = sm.add_constant(points["year"].to_numpy())
    model = sm.OLS(np.log2(points["compute"].to_numpy()), design)
    return model.fit(cov_type="HC3") if robust else model.fit()


def fit_trend(points: pd.DataFrame, reference: str, level: float = 0.95, robust: bool = False) -> dict:
    """Fit ``points`` (columns: model, published, compute) and summarise the trend.

    Returns a JSON-ready dict: doubling time and its interval, slope, R^2, n, the reference model
    and the efficiency factor of the newest model over it.
    """
    points = _usable(points)
    n = len(points)
    result = {"n": n, "models": points["model"].tolist(), "confidence_level": level,
              "reference_model": reference, "standard_errors": "HC3" if robust else "OLS",
              "method": "OLS of log2(compute) on decimal year (statsmodels)"}
    if n < 2 or points["year"].nunique() < 2:
        return {**result, "doubling_time_months": None, "note": "fewer than two dates to fit"}

    fit = _ols(points, robust and n > 2)
    slope = float(fit.params[1])
    low, high = (float(v) for v in fit.conf_int(alpha=1 - level)[1]) if fit.df_resid > 0 else (math.nan, math.nan)
    doubling = _months(slope)
    if math.isnan(low):
        interval = (None, None)
    else:
        # the steepest decline (low slope) gives the shortest doubling time
        interval = (_months(low) if low < 0 else None, _months(high) if high < 0 else None)
    newest = points.iloc[-1]
    result.update({
        "doubling_time_months": doubling if math.isfinite(doubling) else None,
        "doubling_time_months_low": interval[0],
        "doubling_time_months_high": interval[1],
        # None (not False) when there is no interval at all (n = 2): nothing to say about its bound
        "doubling_time_unbounded": None if math.isnan(low) else interval[1] is None,
        "slope_log2_per_year": slope,
        "slope_low": None if math.isnan(low) else low,
        "slope_high": None if math.isnan(high) else high,
        "intercept": float(fit.params[0]),
        "r_squared": float(fit.rsquared),
        "newest_model": newest["model"],
    })
    reference_rows = points.loc[points["model"] == reference]
    if len(reference_rows):
        ref = reference_rows.iloc[0]
        years = float(newest["year"] - ref["year"])
        result.update({
            "efficiency_factor_newest_over_reference": float(ref["compute"] / newest["compute"]),
            "years_reference_to_newest": years,
            "moore_factor_same_span": 2.0 ** (12 * years / MOORE_DOUBLING_MONTHS),
        })
    else:
        result["note"] = f"reference model {reference!r} did not reach the threshold"
    return result


def confidence_band(points: pd.DataFrame, years: np.ndarray, level: float = 0.95, robust: bool = False):
    """Fitted compute and its pointwise confidence band (of the mean) at ``years``, or None."""
    points = _usable(points)
    if len(points) < 3 or points["year"].nunique() < 2:
        return None
    import statsmodels.api as sm

    fit = _ols(points, robust)
    frame = fit.get_prediction(sm.add_constant(np.asarray(years, dtype=float), has_constant="add")).summary_frame(
        alpha=1 - level)
    return (2.0 ** frame["mean"].to_numpy(), 2.0 ** frame["mean_ci_lower"].to_numpy(),
            2.0 ** frame["mean_ci_upper"].to_numpy())


def efficiency_factors(points: pd.DataFrame, reference: str) -> pd.Series:
    """Reference compute / each model's compute (NaN where either is missing)."""
    by_model = points.set_index("model")["compute"]
    if reference not in by_model or not np.isfinite(by_model[reference]):
        return pd.Series(np.nan, index=by_model.index)
    return by_model[reference] / by_model
