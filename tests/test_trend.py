import math

import numpy as np
import pandas as pd
import pytest

from algoprogress.trend import (
    bootstrap_doubling_time,
    decimal_year,
    efficiency_factors,
    fit_trend,
    frontier_mask,
)


def points_with_doubling(months, dates, noise=None):
    years = np.array([decimal_year(d) for d in dates])
    log2 = 40 - (years - years[0]) * 12 / months + (noise if noise is not None else 0)
    return pd.DataFrame({"model": [f"m{i}" for i in range(len(dates))], "published": dates, "compute": 2.0 ** log2})


DATES = ["2012-06-01", "2014-09-17", "2015-12-10", "2017-04-17", "2018-06-30", "2019-05-28"]


def test_decimal_year():
    assert decimal_year("2012-01-01") == 2012.0
    assert decimal_year("2019-07-02") == pytest.approx(2019 + 182 / 365)


def reference_of(points, name="m0"):
    row = points.loc[points["model"] == name].iloc[0]
    return {"model": name, "published": row["published"], "compute": row["compute"]}


def test_exact_doubling_time_is_recovered():
    points = points_with_doubling(16.0, DATES)
    trend = fit_trend(points, reference_of(points))
    assert trend["doubling_time_months"] == pytest.approx(16.0)
    assert trend["r_squared"] == pytest.approx(1.0)
    assert trend["n"] == 6 and trend["best_model"] == "m5"
    years = decimal_year(DATES[-1]) - decimal_year(DATES[0])
    assert trend["efficiency_factor"] == pytest.approx(2 ** (12 * years / 16))
    assert trend["moore_factor_same_span"] == pytest.approx(2 ** (years / 2))


def test_factors_span_the_reference_to_the_best_model_not_the_newest():
    points = points_with_doubling(16.0, DATES)
    points.loc[5, "compute"] = points.loc[2, "compute"] * 4  # the newest model is worse than m2..m4
    trend = fit_trend(points, reference_of(points))
    assert trend["best_model"] == "m4"
    years = decimal_year(DATES[4]) - decimal_year(DATES[0])
    assert trend["efficiency_factor"] == pytest.approx(points.loc[0, "compute"] / points.loc[4, "compute"])
    assert trend["moore_factor_same_span"] == pytest.approx(2 ** (years / 2))


def test_ties_on_a_date_keep_one_model_on_the_frontier():
    points = pd.DataFrame({"model": ["alexnet", "resnet18", "resnet50", "resnet34"],
                           "published": ["2012-06-01", "2015-12-10", "2015-12-10", "2015-12-10"],
                           "compute": [1e18, 5e16, 6e16, 5e16]})
    assert frontier_mask(points).tolist() == [True, True, False, False]


def test_frontier_of_points_read_back_from_parquet(tmp_path):
    """Strings read back from Parquet are a string dtype; no model resolved must not crash."""
    points = pd.DataFrame({"model": ["a", "b"], "published": ["2012-01-01", "2014-01-01"], "compute": [np.nan] * 2})
    points.to_parquet(tmp_path / "p.parquet")
    back = pd.read_parquet(tmp_path / "p.parquet")
    assert frontier_mask(back).tolist() == [False, False]
    assert fit_trend(back.iloc[0:0], None)["doubling_time_months"] is None


def test_hc3_uses_t_quantiles_on_n_minus_2_degrees_of_freedom():
    import statsmodels.api as sm
    from scipy import stats

    noise = np.array([0.3, -0.5, 0.2, 0.4, -0.6, 0.1])
    points = points_with_doubling(16.0, DATES, noise)
    trend = fit_trend(points, None, level=0.95, robust=True)
    x = np.array([decimal_year(d) for d in DATES])
    y = np.log2(points["compute"].to_numpy())
    se = math.sqrt(sm.OLS(y, sm.add_constant(x)).fit().cov_HC3[1, 1])
    t = stats.t.ppf(0.975, len(x) - 2)
    assert trend["standard_errors"] == "HC3"
    assert trend["slope_low"] == pytest.approx(trend["slope_log2_per_year"] - t * se)


def test_hc3_is_refused_below_its_minimum_n():
    points = points_with_doubling(16.0, DATES[:3], np.array([0.3, -0.5, 0.2]))
    robust, plain = fit_trend(points, None, robust=True), fit_trend(points, None)
    assert robust["standard_errors"] == "OLS" and any("HC3" in note for note in robust["notes"])
    assert robust["doubling_time_months_low"] == pytest.approx(plain["doubling_time_months_low"])


def test_bootstrap_is_reproducible_and_resamples_seeds():
    years = np.array([decimal_year(d) for d in DATES])
    rng = np.random.default_rng(1)
    seeds = [2.0 ** (40 - (y - years[0]) * 12 / 16 + rng.normal(0, 0.5, 3)) for y in years]
    first = bootstrap_doubling_time(years, seeds, True, 500, 7)
    again = bootstrap_doubling_time(years, seeds, True, 500, 7)
    assert first == again and first["levels"] == ["seeds within models", "models"]
    assert first["doubling_time_months_low"] < 16 < first["doubling_time_months_high"]
    single = bootstrap_doubling_time(years, [s[:1] for s in seeds], False, 200, 7)
    assert single["levels"] == ["models"] and any("one seed" in note for note in single["notes"])


def test_bootstrap_with_too_few_usable_draws_reports_no_interval():
    years = np.array([2012.0, 2015.0])
    seeds = [np.array([1e15, np.inf, np.inf]), np.array([1e13, np.inf, np.inf])]  # mostly not reached
    result = bootstrap_doubling_time(years, seeds, False, 300, 0)
    assert result["doubling_time_months_low"] is None and result["usable_draws"] < 150
    assert any("draws" in note for note in result["notes"])


def test_interval_matches_an_independent_computation():
    from scipy import stats

    noise = np.array([0.3, -0.5, 0.2, 0.4, -0.6, 0.1])
    points = points_with_doubling(16.0, DATES, noise)
    trend = fit_trend(points, reference_of(points), level=0.95)
    x = np.array([decimal_year(d) for d in DATES])
    y = np.log2(points["compute"].to_numpy())
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    se = math.sqrt(residuals @ residuals / (len(x) - 2) / ((x - x.mean()) ** 2).sum())
    t = stats.t.ppf(0.975, len(x) - 2)
    assert trend["slope_log2_per_year"] == pytest.approx(slope)
    assert trend["doubling_time_months"] == pytest.approx(-12 / slope)
    assert trend["doubling_time_months_low"] == pytest.approx(-12 / (slope - t * se))
    assert trend["doubling_time_months_high"] == pytest.approx(-12 / (slope + t * se))


def test_interval_including_zero_slope_is_unbounded():
    points = pd.DataFrame({"model": ["a", "b", "c"], "published": ["2012-01-01", "2014-01-01", "2016-01-01"],
                           "compute": [2.0 ** 30, 2.0 ** 20, 2.0 ** 29]})
    trend = fit_trend(points, None)
    assert trend["doubling_time_unbounded"] and trend["doubling_time_months_high"] is None


def test_efficiency_factors_are_relative_to_the_reference():
    points = pd.DataFrame({"model": ["a", "b"], "published": ["2012-01-01", "2016-01-01"], "compute": [100.0, 4.0]})
    assert efficiency_factors(points, "a").to_dict() == {"a": 1.0, "b": 25.0}
