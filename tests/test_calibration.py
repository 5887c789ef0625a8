"""The calibration benchmark (bench/calibration.py) in its quick version, and the intervals it checks
(algoprogress.intervals). Nothing here depends on timing or on a coverage landing near 0.95: the quick version runs
too few experiments for that; it checks that the known-truth simulation goes through and recovers the truth."""

import importlib.util
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from algoprogress import intervals
from algoprogress.trend import fit_trend, frontier_flags


@pytest.fixture(scope="module")
def bench(repo):
    spec = importlib.util.spec_from_file_location("calibration_bench", repo / "bench" / "calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration") / "experiments.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = bench.main(["--cells", "quick", "--experiments", "6", "--seed", "3", "--out", str(out)])
    return rows, pd.read_csv(out)


def test_quick_table_has_every_interval_of_every_cell(bench, quick):
    rows, _ = quick
    cells = bench.cell_grid("quick")
    names = set(bench.SLOPE_INTERVALS) | set(bench.EF_INTERVALS)
    for cell in cells:
        mine = [r for r in rows if all(r[k] == v for k, v in cell.items())]
        assert {r["name"] for r in mine} == names
        for r in mine:
            assert {"coverage", "experiments", "width", "bias", "doubling_months", "runs"} <= set(r)
            assert r["runs"] == 6


def test_coverages_are_shares(quick):
    rows, _ = quick
    for r in rows:
        if r["experiments"]:
            assert 0.0 <= r["coverage"] <= 1.0, r
        else:  # no interval at all: the tool's factor has none, run-to-run spread needs two runs a model
            assert r["name"] == "ef_tool" or (r["name"] == "ef_replicates" and r["seeds"] == 1), r
    published = [r for r in rows if r["name"] in ("ols_frontier", "ols_all", "slope_all_level", "ef_trend")]
    assert all(r["experiments"] >= 5 for r in published)


def test_the_known_truth_is_recovered_on_average(bench, quick):
    rows, experiments = quick
    for r in rows:
        if r["name"] in ("ols_all", "slope_all_level", "ols_frontier"):
            assert abs(r["bias"]) < 0.1, r  # of a slope of -0.75 log2 a year
            assert 12 < r["doubling_months"] < 21, r
        if r["name"] == "ef_trend":
            assert abs(r["bias"]) < 0.5, r  # log2 of a factor of about 2^6
    # the package's all-models fit (statsmodels) and the intervals module's own OLS agree
    assert np.allclose(experiments["ols_all_low"], experiments["slope_all_low"], rtol=0, atol=1e-9)
    assert np.allclose(experiments["ols_all_point"], experiments["slope_all_point"], rtol=0, atol=1e-9)
    # the known truth: the reference is the earliest model and the best a later one
    assert (experiments["true_log2_ef"].dropna() > 0).all()


def test_the_analysis_publishes_the_candidates_the_table_measures(quick):
    """trend.json's ``interval`` (what analysis.analyse_measured publishes, from the thresholds stage's level shifts
    and level error) is, for the frontier, the parametric bootstrap and, for all models, the OLS + level interval
    that the calibration table measures; the headline's efficiency factor is the trend's over the same slope (the
    all-models fit's factor names that fit's own best model, chosen among more models)."""
    _, experiments = quick
    pairs = {"published_frontier": "slope_frontier_param", "published_all": "slope_all_level",
             "published_ef_frontier": "ef_trend_frontier"}
    for published, candidate in pairs.items():
        for part in ("point", "low", "high"):
            mine, theirs = experiments[f"{published}_{part}"], experiments[f"{candidate}_{part}"]
            assert (mine.isna() == theirs.isna()).all(), (published, part)
            assert np.allclose(mine.dropna(), theirs.dropna(), rtol=0, atol=1e-9), (published, part)
        assert experiments[f"{published}_low"].notna().mean() > 0.8


def test_markdown_names_every_interval(bench, quick):
    rows, _ = quick
    table = bench.markdown(rows)
    for short in bench.SHORT.values():
        if short != bench.SHORT["ef_tool"]:
            assert short in table.splitlines()[0], short
    assert len([line for line in table.splitlines() if line.startswith("| 15 |")]) == 2 * len(bench.cell_grid("quick"))


def test_frontier_matrix_is_frontier_flags_for_every_draw():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 15))
        years = np.round(rng.uniform(0, 3, n) * 2) / 2  # shared dates
        y = np.round(rng.normal(0, 1, (20, n)) * 2) / 2  # ties
        flags = intervals.frontier_matrix(years, y)
        for draw in range(20):
            assert (flags[draw] == frontier_flags(years, 2.0 ** y[draw])).all()


def test_slope_interval_is_the_trend_fit():
    rng = np.random.default_rng(1)
    dates = pd.date_range("2012-01-01", periods=12, freq="200D").strftime("%Y-%m-%d").tolist()
    points = pd.DataFrame({"model": [f"m{i}" for i in range(12)], "published": dates,
                           "compute": 2.0 ** (40 - 0.7 * np.arange(12) * 200 / 365 + rng.normal(0, 0.3, 12))})
    fit = fit_trend(points, {"model": "m0", "published": dates[0], "compute": points["compute"][0]})
    from algoprogress.trend import decimal_year

    years = np.array([decimal_year(d) for d in dates])
    slope, low, high = intervals.slope_interval(years, np.log2(points["compute"].to_numpy()))
    assert (slope, low, high) == pytest.approx((fit["slope_log2_per_year"], fit["slope_low"], fit["slope_high"]))
    _, wider_low, wider_high = intervals.slope_interval(years, np.log2(points["compute"].to_numpy()), level_term=0.1)
    assert wider_low < low and wider_high > high


def test_level_standard_error_and_the_trend_factor():
    assert intervals.level_standard_error(0.9, 500, 1) == pytest.approx(math.sqrt(0.09 / 500))
    assert intervals.level_standard_error(0.9, 500, 2) == pytest.approx(math.sqrt(0.09 / 500 / 2))
    assert intervals.level_standard_error(0.9, 500, 3) < intervals.level_standard_error(0.9, 500, 2)
    assert intervals.trend_efficiency_factor((-0.75, -1.0, -0.5), 8.0) == pytest.approx((6.0, 4.0, 8.0))


def test_headline_intervals_of_an_exact_trend():
    years = np.linspace(2012, 2020, 10)
    seeds = [np.array([2.0 ** (60 - 0.75 * (t - 2012) + e)]) for t, e in zip(years, 1e-3 * np.sin(np.arange(10)),
                                                                            strict=True)]
    out = intervals.headline_intervals([f"m{i}" for i in range(10)], years, seeds, np.ones(10, dtype=bool), "m0", "m9")
    for name in ("slope_all", "slope_all_level", "slope_frontier_param"):
        point, low, high = out[name]
        assert low <= -0.75 <= high and point == pytest.approx(-0.75, abs=1e-3)
    assert out["ef_trend"][0] == pytest.approx(6.0, abs=0.01)
    assert math.isnan(out["ef_replicates"][0])  # one run a model: no run-to-run spread


def test_a_frontier_that_the_simulated_worlds_do_not_have_gives_no_interval_not_a_crash():
    years = np.linspace(2012, 2020, 50)
    y = 40 + 3.0 * (years - 2012)  # compute rising steeply with date: almost no draw has a frontier of two dates
    y[10] -= 0.5
    point, low, high = intervals.frontier_parametric_interval(years, y + 0.01 * np.sin(np.arange(50)), draws=200)
    assert math.isnan(low) and math.isnan(high)


def test_the_trend_factors_interval_is_ordered_whatever_the_span():
    for span in (8.0, -3.0):
        point, low, high = intervals.trend_efficiency_factor((-0.75, -1.0, -0.5), span)
        assert low <= point <= high
    out = intervals.published_interval("all", np.array([2012.0, 2014.0, 2016.0, 2018.0]),
                                       np.array([40.0, 38.6, 37.4, 35.9]), np.ones(4, dtype=bool), np.full(4, np.nan),
                                       0.0, 0.0)
    assert out["efficiency_factor_trend"] == pytest.approx(1.0)  # best and reference of one date: the trend gives 1


def test_the_measured_coverage_the_intervals_state_is_the_tables(repo):
    """trend.json's ``interval.measured_coverage`` quotes docs/method.md's table of the calibration benchmark."""
    lines = (repo / "docs" / "method.md").read_text().splitlines()
    for set_name, quantities in intervals.MEASURED_COVERAGE.items():
        for quantity, (short, low, high) in quantities.items():
            prefix = "slope" if quantity == "slope" else "EF"
            row = [line for line in lines if line.startswith(f"| {prefix}: {short} | ")]
            assert len(row) == 1, (set_name, quantity)
            assert row[0].split("|")[3].strip() == f"{low:.3f}-{high:.3f}", row[0]
        assert f"{quantities['slope'][1]:.1%}" in intervals.measured_coverage(set_name, 0.95)
    assert "not measured" in intervals.measured_coverage("frontier", 0.9)
