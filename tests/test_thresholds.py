import math

import numpy as np
import pandas as pd
import pytest

from algoprogress.thresholds import compute_at_threshold, per_model


def curve(model, accuracies, flops=None, seed=0):
    flops = flops if flops is not None else [0] + [10.0 ** (k + 1) for k in range(len(accuracies) - 1)]
    n = len(accuracies)
    return pd.DataFrame({
        "model": model, "seed": seed, "step": range(n), "epoch": np.arange(n) / 2, "images_seen": np.arange(n) * 10,
        "train_flops": flops, "val_top1": accuracies, "wall_seconds": np.arange(n) * 1.0,
    })


def test_first_evaluation_at_or_above_without_interpolation():
    table = compute_at_threshold(curve("a", [0.1, 0.5, 0.8, 0.7, 0.9]), "val_top1", 0.8, "none")
    row = table.iloc[0]
    assert row["reached"] and row["train_flops"] == 100.0 and row["step"] == 2 and row["metric_at_crossing"] == 0.8


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
    assert summary.loc["a", "train_flops_median"] == pytest.approx(55.0)
    assert summary.loc["b", "train_flops_median"] == 10.0
