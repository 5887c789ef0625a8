import json

import pandas as pd
import pytest

from algoprogress.analysis import analyse_measured, analyse_published, read_published_table
from algoprogress.flops import PETAFLOP_S_DAY
from algoprogress.trend import frontier_mask


def test_published_table_reproduces_the_papers_headline(repo):
    table = read_published_table(repo / "resources" / "published" / "hernandez_brown_2020.csv")
    result, rows, _ = analyse_published(table, 0.95, robust=False)
    fit = result["thresholds"]["AlexNet-level"]["fits"]["all"]
    assert fit["n"] == 6 and fit["reference_model"] == "AlexNet" and fit["newest_model"] == "EfficientNet-b0"
    assert fit["efficiency_factor_newest_over_reference"] == pytest.approx(44, rel=0.03)  # paper: 44x
    assert fit["doubling_time_months"] == pytest.approx(16, abs=0.5)  # paper: 16 months
    assert fit["moore_factor_same_span"] == pytest.approx(11, rel=0.05)  # paper: 11x
    assert fit["doubling_time_months_low"] < fit["doubling_time_months"] < fit["doubling_time_months_high"]
    assert set(rows["set"]) == {"all", "frontier"}
    json.dumps(result)  # JSON-ready


def test_frontier_is_models_better_than_every_earlier_one():
    points = pd.DataFrame({"model": list("abcde"),
                           "published": ["2012-01-01", "2013-01-01", "2014-01-01", "2015-01-01", "2015-01-01"],
                           "compute": [100.0, 120.0, 50.0, 60.0, 40.0]})
    assert frontier_mask(points).tolist() == [True, False, True, False, True]


def test_robust_errors_change_the_interval_not_the_estimate(repo):
    table = read_published_table(repo / "resources" / "published" / "hernandez_brown_2020.csv")
    plain = analyse_published(table, 0.95, robust=False)[0]["thresholds"]["AlexNet-level"]["fits"]["all"]
    robust = analyse_published(table, 0.95, robust=True)[0]["thresholds"]["AlexNet-level"]["fits"]["all"]
    assert robust["doubling_time_months"] == pytest.approx(plain["doubling_time_months"])
    assert robust["standard_errors"] == "HC3" and robust["doubling_time_months_low"] != plain["doubling_time_months_low"]


def test_measured_analysis_excludes_models_that_never_reached():
    rows = []
    for model, flops in (("a", 8e12), ("b", 2e12), ("c", None)):
        rows.append({"model": model, "seed": 0, "threshold_name": "t", "reached": flops is not None,
                     "train_flops": flops, "train_flops_lower_bound": None if flops else 5e12,
                     "epoch": 1.0, "images_seen": 10, "wall_seconds": 1.0})
    thresholds = pd.DataFrame(rows)
    dates = {"a": "2012-06-01", "b": "2015-12-10", "c": "2019-05-28"}
    result, table, points = analyse_measured(thresholds, dates, [{"name": "t", "metric": "val_top1", "value": 0.5}],
                                             {"reference_model": "a", "confidence_level": 0.95, "robust_errors": False})
    fit = result["thresholds"]["t"]["fits"]["all"]
    assert fit["n"] == 2 and fit["models"] == ["a", "b"] and fit["efficiency_factor_newest_over_reference"] == 4.0
    per_model = {r["model"]: r for r in result["thresholds"]["t"]["per_model"]}
    assert per_model["c"]["reached"] is False and per_model["c"]["train_flops_lower_bound"] == 5e12
    assert per_model["b"]["train_pfs_days_median"] == pytest.approx(2e12 / PETAFLOP_S_DAY)
    assert result["doubling_time_months"] == fit["doubling_time_months"]  # headline = first threshold, all
    assert list(table["set"]) == ["all", "frontier"]
