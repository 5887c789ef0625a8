import math

import numpy as np
import pandas as pd
import pytest

from algoprogress.trend import decimal_year, efficiency_factors, fit_trend


def points_with_doubling(months, dates, noise=None):
    years = np.array([decimal_year(d) for d in dates])
    log2 = 40 - (years - years[0]) * 12 / months + (noise if noise is not None else 0)
    return pd.DataFrame({"model": [f"m{i}" for i in range(len(dates))], "published": dates, "compute": 2.0 ** log2})


DATES = ["2012-06-01", "2014-09-17", "2015-12-10", "2017-04-17", "2018-06-30", "2019-05-28"]


def test_decimal_year():
    assert decimal_year("2012-01-01") == 2012.0
    assert decimal_year("2019-07-02") == pytest.approx(2019 + 182 / 365)


def test_exact_doubling_time_is_recovered():
    trend = fit_trend(points_with_doubling(16.0, DATES), "m0")
    assert trend["doubling_time_months"] == pytest.approx(16.0)
    assert trend["r_squared"] == pytest.approx(1.0)
    assert trend["n"] == 6 and trend["newest_model"] == "m5"
    years = decimal_year(DATES[-1]) - decimal_year(DATES[0])
    assert trend["efficiency_factor_newest_over_reference"] == pytest.approx(2 ** (12 * years / 16))
    assert trend["moore_factor_same_span"] == pytest.approx(2 ** (years / 2))


def test_interval_matches_an_independent_computation():
    from scipy import stats

    noise = np.array([0.3, -0.5, 0.2, 0.4, -0.6, 0.1])
    points = points_with_doubling(16.0, DATES, noise)
    trend = fit_trend(points, "m0", level=0.95)
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
    trend = fit_trend(points, "a")
    assert trend["doubling_time_unbounded"] and trend["doubling_time_months_high"] is None


def test_efficiency_factors_are_relative_to_the_reference():
    points = pd.DataFrame({"model": ["a", "b"], "published": ["2012-01-01", "2016-01-01"], "compute": [100.0, 4.0]})
    assert efficiency_factors(points, "a").to_dict() == {"a": 1.0, "b": 25.0}
