import math

import numpy as np
import pandas as pd
import pytest

from algoprogress.thresholds import (
    compute_at_threshold,
    edge_of_grid,
    lower_envelope,
    per_model,
    reference_level,
    resolve_thresholds,
)


def curve(model, accuracies, flops=None, seed=0, trial="base"):
    flops = flops if flops is not None else [0] + [10.0 ** (k + 1) for k in range(len(accuracies) - 1)]
    n = len(accuracies)
    return pd.DataFrame({
        "model": model, "trial": trial, "seed": seed, "step": range(n), "epoch": np.arange(n) / 2,
        "images_seen": np.arange(n) * 10,
        "train_flops": flops, "val_top1": accuracies, "wall_seconds": np.arange(n) * 1.0,
    })


def test_first_evaluation_at_or_above_without_interpolation():
    table = compute_at_threshold(curve("a", [0.1, 0.5, 0.8, 0.7, 0.9]), "val_top1", 0.8, "none", crossing="first")
    row = table.iloc[0]
    assert row["reached"] and row["train_flops"] == 100.0 and row["step"] == 2 and row["metric_at_crossing"] == 0.8


def test_the_monotone_fit_holds_the_level_where_a_lucky_evaluation_does_not():
    """0.8 once, then 0.7: the fit pools them to 0.75, below 0.8; the curve holds 0.8 from its last evaluation."""
    table = compute_at_threshold(curve("a", [0.1, 0.5, 0.8, 0.7, 0.9]), "val_top1", 0.8, "none")
    row = table.iloc[0]
    assert row["reached"] and row["step"] == 4 and row["metric_at_crossing"] == pytest.approx(0.9)


def test_log_linear_interpolation_between_neighbours():
    table = compute_at_threshold(curve("a", [0.1, 0.4, 0.8]), "val_top1", 0.6, "log-linear")
    # halfway in metric between 10 and 100 FLOP, in log space: sqrt(10 * 100)
    assert table.iloc[0]["train_flops"] == pytest.approx(math.sqrt(1000))


def test_nan_evaluations_are_skipped():
    table = compute_at_threshold(curve("a", [0.1, np.nan, 0.9, 0.95]), "val_top1", 0.85, "none")
    assert table.iloc[0]["train_flops"] == 100.0 and table.iloc[0]["evaluations"] == 3


def test_never_reached_is_a_lower_bound():
    table = compute_at_threshold(curve("a", [0.1, 0.2, 0.3]), "val_top1", 0.9)
    row = table.iloc[0]
    assert not row["reached"] and math.isnan(row["train_flops"]) and row["train_flops_lower_bound"] == 100.0


def test_many_curves_at_once_and_per_model_median():
    curves = pd.concat([
        curve("a", [0.1, 0.5, 0.9], seed=0), curve("a", [0.1, 0.9, 0.9], seed=1), curve("a", [0.1, 0.2, 0.3], seed=2),
        curve("b", [0.1, 0.95, 0.99]),
    ])
    table = compute_at_threshold(curves, "val_top1", 0.9, "none")
    assert table[["model", "seed"]].values.tolist() == [["a", 0], ["a", 1], ["a", 2], ["b", 0]]
    summary = per_model(table).set_index("model")
    assert summary.loc["a", "seeds"] == 3 and summary.loc["a", "seeds_reached"] == 2
    # median over all three seeds, the seed that never reached counting as infinite: (10, 100, inf) -> 100
    assert summary.loc["a", "train_flops_median"] == pytest.approx(100.0)
    assert summary.loc["b", "train_flops_median"] == 10.0


def test_survivors_do_not_decide_a_model_point():
    """One seed of three reaches cheaply, two spend 1e12 without reaching: the model is not reached."""
    curves = pd.concat([
        curve("a", [0.1, 0.95], flops=[0, 1.4e9], seed=0),
        curve("a", [0.1, 0.5], flops=[0, 1e12], seed=1),
        curve("a", [0.1, 0.6], flops=[0, 1e12], seed=2),
    ])
    summary = per_model(compute_at_threshold(curves, "val_top1", 0.9, "none")).iloc[0]
    assert summary["seeds_reached"] == 1 and not summary["reached"]
    assert math.isnan(summary["train_flops_median"])
    assert summary["train_flops_lower_bound"] == 1e12  # median of (1.4e9, 1e12, 1e12)


def test_crossing_at_the_first_evaluation_is_flagged():
    table = compute_at_threshold(curve("a", [0.99, 0.99, 0.99]), "val_top1", 0.9)
    row = table.iloc[0]
    assert row["reached"] and row["crossed_at_first_evaluation"] and row["train_flops"] == 0
    summary = per_model(table).iloc[0]
    assert summary["crossed_at_first_evaluation"]
    later = compute_at_threshold(curve("b", [0.1, 0.99]), "val_top1", 0.9).iloc[0]
    assert later["reached"] and not later["crossed_at_first_evaluation"]


def test_lower_envelope_takes_the_least_compute_over_trials_per_seed():
    curves = pd.concat([
        curve("a", [0.1, 0.5, 0.95], trial="epochs4", seed=0),           # reaches at 100
        curve("a", [0.1, 0.95, 0.95], trial="epochs1", seed=0),          # reaches at 10
        curve("a", [0.1, 0.2, 0.3], trial="epochs1", seed=1),            # never
        curve("a", [0.1, 0.3, 0.95], trial="epochs4", seed=1),           # reaches at 100
    ])
    table = compute_at_threshold(curves, "val_top1", 0.9, "none", "t")
    assert len(table) == 4  # every trial's row is kept
    envelope = lower_envelope(table).set_index("seed")
    assert envelope.loc[0, "winning_trial"] == "epochs1" and envelope.loc[0, "train_flops"] == 10
    assert envelope.loc[1, "winning_trial"] == "epochs4" and envelope.loc[1, "train_flops"] == 100
    assert envelope.loc[0, "trials"] == 2 and envelope.loc[0, "search_flops"] == 200
    # the price of the search: compute to threshold plus the other trial's whole run
    assert envelope.loc[0, "train_flops_with_search"] == 10 + 100
    plan = {"a": {"grid": {"epochs": [1, 4]}, "trials": {"epochs1": {"epochs": 1}, "epochs4": {"epochs": 4}}}}
    summary = per_model(table, plan).iloc[0]
    assert summary["reached"] and summary["train_flops_median"] == pytest.approx(55.0)
    assert summary["winning_trials"] == "epochs1;epochs4" and summary["winner_at_grid_edge"]
    assert summary["trials"] == 2 and summary["search_flops"] == 400


def test_edge_of_grid():
    grid = {"epochs": [1, 2, 4], "lr": [0.01, 0.1]}
    assert edge_of_grid({"epochs": 2, "lr": 0.1}, grid) == ["lr=0.1 (largest)"]
    assert edge_of_grid({"epochs": 1, "lr": 0.01}, grid) == ["epochs=1 (smallest)", "lr=0.01 (smallest)"]
    assert edge_of_grid({"epochs": 2}, {"epochs": [1, 2, 4], "lr": [0.1]}) == []


def test_reference_level_is_the_median_final_value_of_the_calibration_runs():
    """The level is fixed by the calibration runs alone (their trial and seeds), by the median of their final
    evaluations: not by the measured runs, and not by a best evaluation (which noise pushes up)."""
    curves = pd.concat([
        curve("ref", [0.1, 0.9, 0.6], seed=0, trial="long"),  # a measured run: a lucky 0.9 counts for nothing
        curve("ref", [0.1, 0.8, 0.70], seed=7, trial="long"), curve("ref", [0.1, 0.75, 0.74], seed=8, trial="long"),
        curve("ref", [0.1, 0.75, 0.72], seed=9, trial="long"), curve("ref", [0.1, 0.5], seed=7, trial="short"),
        curve("other", [0.1, 0.99], seed=7),
    ])
    calibration = {"trial": "long", "seeds": [7, 8, 9]}
    assert reference_level(curves, "val_top1", "ref", "long", [7, 8, 9], 0.0) == pytest.approx(0.72)
    assert reference_level(curves, "val_top1", "ref", "long", [7, 8, 9], 0.02) == pytest.approx(0.70)
    assert np.isnan(reference_level(curves, "val_top1", "ref", "long", [5], 0.02))  # no such run
    resolved = resolve_thresholds(curves, [{"name": "own", "metric": "val_top1", "value": "reference", "margin": 0.02},
                                           {"name": "fixed", "metric": "val_top1", "value": 0.5}], "ref", calibration)
    assert resolved[0]["value"] == pytest.approx(0.70) and "reference level of ref" in resolved[0]["defined_as"]
    assert "calibration runs (long, seeds 7, 8, 9)" in resolved[0]["defined_as"] and resolved[1]["value"] == 0.5
    # the level's standard error: binomial on the validation set, through the median of the runs that have a final
    # value (two of the three seeds named here); unknown without the validation set's size; none for a number
    sized = resolve_thresholds(curves, [{"name": "own", "metric": "val_top1", "value": "reference", "margin": 0.02},
                                        {"name": "fixed", "metric": "val_top1", "value": 0.5}], "ref",
                               {"trial": "long", "seeds": [7, 8, 5]}, val_images=400)
    final = np.median([0.70, 0.74])
    assert sized[0]["level_standard_error"] == pytest.approx(math.sqrt(final * (1 - final) / 400 * 0.5))
    assert sized[1]["level_standard_error"] == 0.0
    assert np.isnan(resolved[0]["level_standard_error"]) and resolved[1]["level_standard_error"] == 0.0
