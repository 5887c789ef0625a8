import json
import warnings

import numpy as np
import pandas as pd
import pytest

from algoprogress.analysis import (
    EXCLUDED_FIRST_EVALUATION,
    EXCLUDED_NOT_REACHED,
    analyse_measured,
    analyse_published,
    read_published_table,
    threshold_sweep,
)
from algoprogress.config import analysis_settings
from algoprogress.flops import PETAFLOP_S_DAY
from algoprogress.thresholds import compute_at_threshold

ANALYSIS = analysis_settings({"reference_model": "a", "bootstrap": {"draws": 200}})
THRESHOLD = [{"name": "t", "metric": "val_top1", "value": 0.5}]


def with_sweep(**sweep):
    """The tests' analysis settings with these threshold-sweep settings (the others the schema's defaults)."""
    return analysis_settings({**ANALYSIS, "threshold_sweep": sweep})


def table_of(rows):
    """Per-curve threshold rows as the thresholds stage writes them (round-tripped through Parquet)."""
    out = []
    for model, flops, *rest in rows:
        seed = rest[0] if rest else 0
        first = rest[1] if len(rest) > 1 else False
        out.append({"model": model, "trial": "base", "seed": seed, "threshold_name": "t", "metric": "val_top1",
                    "threshold": 0.5, "reached": flops is not None, "crossed_at_first_evaluation": first,
                    "diverged": False, "train_flops": flops, "train_pfs_days": None,
                    "train_flops_lower_bound": None if flops is not None else 5e12, "spent_flops": 5e12,
                    "step": 1, "epoch": 1.0, "images_seen": 10, "wall_seconds": 1.0, "metric_at_crossing": 0.6,
                    "best_metric": 0.7, "evaluations": 3})
    return pd.DataFrame(out).astype({"train_flops": float, "train_flops_lower_bound": float})


def parquet_round_trip(frame, tmp_path):
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    return pd.read_parquet(tmp_path / "t.parquet")


def test_published_table_reproduces_the_papers_headline(repo):
    table = read_published_table(repo / "resources" / "published" / "hernandez_brown_2020.csv")
    result, rows, _ = analyse_published(table, {**ANALYSIS, "reference_model": None})
    assert result["headline"]["set"] == "frontier" and result["headline"]["threshold"] == "AlexNet-level"
    assert result["n"] == 6 and result["reference_model"] == "AlexNet" and result["best_model"] == "EfficientNet-b0"
    assert result["efficiency_factor"] == pytest.approx(44, rel=0.03)  # paper: 44x
    assert result["doubling_time_months"] == pytest.approx(16, abs=0.5)  # paper: 16 months
    assert result["moore_factor_same_span"] == pytest.approx(11, rel=0.05)  # paper: 11x
    assert result["doubling_time_months_low"] < result["doubling_time_months"] < result["doubling_time_months_high"]
    assert result["bootstrap"]["levels"] == ["models"]
    assert set(rows["set"]) == {"all", "frontier"} and rows["headline"].sum() == 1
    json.dumps(result)  # JSON-ready


def test_robust_errors_change_the_interval_not_the_estimate(repo):
    table = read_published_table(repo / "resources" / "published" / "hernandez_brown_2020.csv")
    plain = analyse_published(table, ANALYSIS)[0]
    robust = analyse_published(table, {**ANALYSIS, "robust_errors": True})[0]
    assert robust["doubling_time_months"] == pytest.approx(plain["doubling_time_months"])
    assert robust["standard_errors"] == "HC3"
    assert robust["doubling_time_months_low"] != plain["doubling_time_months_low"]


def test_measured_analysis_excludes_models_that_never_reached(tmp_path):
    thresholds = parquet_round_trip(table_of([("a", 8e12), ("b", 2e12), ("c", None)]), tmp_path)
    dates = {"a": "2012-06-01", "b": "2015-12-10", "c": "2019-05-28"}
    result, table, points = analyse_measured(thresholds, dates, THRESHOLD, ANALYSIS)
    fit = result["thresholds"]["t"]["fits"]["full"]["all"]
    assert fit["n"] == 2 and fit["models"] == ["a", "b"] and fit["efficiency_factor"] == 4.0
    # what the fit leaves out is counted and named, in the JSON, the notes and the CSV
    assert fit["left_out"] == [{"model": "c", "reason": EXCLUDED_NOT_REACHED, "lower_bound_flops": 5e12}]
    assert any(note.startswith("left out of the fit: 1 model(s) of the window, c (not") for note in fit["notes"])
    assert set(table["models_left_out"]) == {f"c ({EXCLUDED_NOT_REACHED})"}
    per_model = {r["model"]: r for r in result["thresholds"]["t"]["per_model"]}
    assert per_model["c"]["reached"] is False and per_model["c"]["train_flops_lower_bound"] == 5e12
    assert per_model["b"]["train_pfs_days_median"] == pytest.approx(2e12 / PETAFLOP_S_DAY)
    assert result["doubling_time_months"] == result["thresholds"]["t"]["fits"]["full"]["frontier"][
        "doubling_time_months"]  # the headline is the frontier's fit by default
    assert sorted(zip(table["window"], table["set"], strict=True)) == [("full", "all"), ("full", "frontier")]


def test_no_model_reaching_gives_nulls_and_a_note_not_a_crash(tmp_path):
    thresholds = parquet_round_trip(table_of([("a", None), ("b", None), ("c", None)]), tmp_path)
    dates = {"a": "2012-06-01", "b": "2015-12-10", "c": "2015-12-10"}
    result, table, _ = analyse_measured(thresholds, dates, THRESHOLD, ANALYSIS)
    assert result["doubling_time_months"] is None and result["n"] == 0 and result.get("efficiency_factor") is None
    assert any("no model reaches" in note for note in result["notes"])
    json.dumps(result)


def test_a_step_zero_crossing_is_flagged_never_silently_dropped(tmp_path):
    rows = [("a", 0.0, 0, True), ("b", 2e12), ("c", 1e12)]
    thresholds = parquet_round_trip(table_of(rows), tmp_path)
    dates = {"a": "2012-06-01", "b": "2015-12-10", "c": "2017-01-01"}
    result, _, points = analyse_measured(thresholds, dates, THRESHOLD, ANALYSIS)
    per_model = {r["model"]: r for r in result["thresholds"]["t"]["per_model"]}
    assert per_model["a"]["excluded"] == EXCLUDED_FIRST_EVALUATION and per_model["a"]["crossed_at_first_evaluation"]
    assert per_model["a"]["efficiency_factor_over_reference"] is None  # never 0
    assert result.get("efficiency_factor") is None
    assert any("a met the threshold at its first evaluation" in note for note in result["notes"])
    assert any("the reference a is threshold met at the first evaluation" in note for note in result["notes"])


def test_headline_window_set_and_factor_agree():
    """The paper-comparable headline: 2012-2019 frontier, reference over the best model in the window."""
    rows = [("a", 1e18), ("g", 2e17), ("r18", 5e16), ("r50", 6e16), ("e", 2e16), ("late", 1e16), ("worse", 9e17)]
    dates = {"a": "2012-06-01", "g": "2014-09-17", "r18": "2015-12-10", "r50": "2015-12-10", "e": "2019-05-28",
             "late": "2022-01-10", "worse": "2016-01-01"}
    cfg = {**ANALYSIS, "headline": {"threshold": None, "set": "frontier", "window": "paper"},
           "windows": [{"name": "paper", "start": "a", "end": "2019-12-31"}]}
    result, table, points = analyse_measured(table_of(rows), dates, THRESHOLD, cfg)
    assert result["headline"]["window"] == "paper" and result["headline"]["window_end"] == "2019-12-31"
    assert result["models"] == ["a", "g", "r18", "e"]  # r50 ties r18's date and needs more; worse is off
    assert result["best_model"] == "e" and result["efficiency_factor"] == pytest.approx(1e18 / 2e16)
    full = result["thresholds"]["t"]["fits"]["full"]["frontier"]
    assert full["best_model"] == "late" and "late" in full["models"]
    headline_rows = table.loc[table["headline"]]
    assert headline_rows[["window", "set"]].values.tolist() == [["paper", "frontier"]]
    assert headline_rows["doubling_time_months"].iloc[0] == pytest.approx(result["doubling_time_months"])


def test_a_window_with_fewer_than_two_models_reports_nulls():
    rows = [("a", 1e18), ("b", 1e17)]
    cfg = {**ANALYSIS, "windows": [{"name": "one", "start": "2014-01-01", "end": None}],
           "headline": {"threshold": None, "set": "all", "window": "one"}}
    result, _, _ = analyse_measured(table_of(rows), {"a": "2012-06-01", "b": "2015-01-01"}, THRESHOLD, cfg)
    assert result["doubling_time_months"] is None and any("1 model" in n for n in result["notes"])


def test_multi_seed_models_bootstrap_over_seeds():
    rows = [(m, f * s, seed) for m, f in (("a", 1e18), ("b", 1e17), ("c", 2e16), ("d", 1e16))
            for seed, s in enumerate((0.8, 1.0, 1.3))]
    dates = {"a": "2012-06-01", "b": "2014-09-17", "c": "2016-01-01", "d": "2019-05-28"}
    result, _, _ = analyse_measured(table_of(rows), dates, THRESHOLD, ANALYSIS)
    boot = result["bootstrap"]
    assert boot["levels"] == ["seeds within models", "models"] and boot["draws"] == 200
    assert boot["usable_draws"] >= 100 and boot["doubling_time_months_low"] is not None


def synthetic_curves():
    frames = []
    for index, (model, speed) in enumerate((("a", 1.0), ("b", 3.0), ("c", 9.0), ("d", 27.0))):
        steps = np.arange(0, 41)
        accuracy = 0.1 + 0.85 * (1 - np.exp(-speed * steps / 40))
        frames.append(pd.DataFrame({"model": model, "trial": "base", "seed": 0, "step": steps, "epoch": steps / 10,
                                    "images_seen": steps * 8, "train_flops": steps * 1e12 / (1 + index),
                                    "val_top1": accuracy, "wall_seconds": steps * 1.0, "diverged": False}))
    return pd.concat(frames, ignore_index=True), {"a": "2012-06-01", "b": "2014-09-17", "c": "2016-01-01",
                                                 "d": "2019-05-28"}


def test_threshold_sweep_spans_the_measurable_range():
    curves, dates = synthetic_curves()
    sweep = threshold_sweep(curves, THRESHOLD[0], dates, with_sweep(points=6))
    assert len(sweep) == 6 and sweep["threshold"].is_monotonic_increasing
    assert sweep["threshold"].min() > 0.1  # above every model's first evaluation: no step-0 crossings
    assert sweep["doubling_time_months"].notna().all() and (sweep["models_reached"] >= 3).all()
    # each row is the analysis of that threshold
    value = sweep["threshold"].iloc[2]
    table = compute_at_threshold(curves, "val_top1", value, "log-linear", "t")
    single, _, _ = analyse_measured(table, dates, [{**THRESHOLD[0], "value": value}], ANALYSIS)
    assert sweep["doubling_time_months"].iloc[2] == pytest.approx(single["doubling_time_months"])


def test_threshold_sweep_is_empty_when_too_few_models_can_be_compared():
    curves, dates = synthetic_curves()
    sweep = threshold_sweep(curves, THRESHOLD[0], dates, with_sweep(min_models=5))
    assert sweep.empty


def test_threshold_sweep_figure_with_unbounded_intervals(tmp_path):
    from algoprogress.plots import measured_vs_published_figure, threshold_sweep_figure

    curves, dates = synthetic_curves()
    sweep = threshold_sweep(curves, THRESHOLD[0], dates, with_sweep(points=4))
    sweep.loc[1, "doubling_time_months_high"] = None  # unbounded above
    sweep.to_csv(tmp_path / "s.csv", index=False)
    threshold_sweep_figure(pd.read_csv(tmp_path / "s.csv"), THRESHOLD, "t", tmp_path / "s.png")
    empty = pd.DataFrame(columns=["model", "published", "compute"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty legend
        threshold_sweep_figure(sweep.iloc[0:0], THRESHOLD, "t", tmp_path / "empty.png")
        measured_vs_published_figure(empty, "measured", empty, "published", tmp_path / "empty_sets.png", "t")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "empty.png").exists()
    assert (tmp_path / "empty_sets.png").exists()


def test_figures_of_a_curve_with_only_its_step_zero_evaluation(tmp_path):
    """A model that diverges on its first step leaves a curve with no compute to draw on a log axis."""
    from algoprogress.plots import learning_curves_figure, model_curve_figure

    curve = pd.DataFrame({"model": "m", "trial": "base", "seed": 0, "step": [0], "train_flops": [0.0],
                          "val_top1": [0.1], "diverged": True})
    crossings = pd.DataFrame({"threshold_name": ["t"], "reached": [True], "train_flops": [0.0]})
    model_curve_figure(curve, crossings, THRESHOLD, tmp_path / "m.png")
    learning_curves_figure(curve, "val_top1", 0.5, tmp_path / "all.png")
    assert (tmp_path / "m.png").exists() and (tmp_path / "all.png").exists()
