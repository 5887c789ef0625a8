"""Property-based tests of the crossing rule (hypothesis): random curves, random thresholds."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from algoprogress.thresholds import compute_at_threshold

accuracies = st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=30)


@st.composite
def curves(draw):
    values = draw(accuracies)
    increments = draw(st.lists(st.floats(1, 1e6), min_size=len(values), max_size=len(values)))
    flops = np.cumsum(increments)
    if draw(st.booleans()):
        flops = flops - flops[0]  # a curve that starts at zero compute, like a step-0 evaluation
    n = len(values)
    return pd.DataFrame({"model": "m", "seed": 0, "step": np.arange(n), "epoch": np.arange(n) / 4.0,
                         "images_seen": np.arange(n) * 8, "train_flops": flops, "val_top1": values,
                         "wall_seconds": np.arange(n) * 1.0})


def crossing(curve, threshold, interpolation):
    return compute_at_threshold(curve, "val_top1", threshold, interpolation).iloc[0]


@settings(max_examples=200, deadline=None)
@given(curves(), st.floats(0.01, 1), st.floats(0.01, 1), st.sampled_from(["none", "log-linear"]))
def test_compute_at_threshold_is_monotone_in_the_threshold(curve, a, b, interpolation):
    low, high = sorted((a, b))
    first, second = crossing(curve, low, interpolation), crossing(curve, high, interpolation)
    if second["reached"]:
        assert first["reached"] and first["train_flops"] <= second["train_flops"] * (1 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(curves(), st.floats(0.01, 1))
def test_interpolated_compute_lies_between_the_neighbouring_evaluations(curve, threshold):
    row = crossing(curve, threshold, "log-linear")
    valid = curve.loc[curve["val_top1"].notna()].reset_index(drop=True)
    if not row["reached"]:
        assert (valid["val_top1"] < threshold).all()
        return
    index = int(np.flatnonzero(valid["val_top1"].to_numpy() >= threshold)[0])
    assert valid.loc[index, "step"] == row["step"]
    upper = valid.loc[index, "train_flops"]
    lower = valid.loc[index - 1, "train_flops"] if index > 0 else upper
    assert lower * (1 - 1e-9) <= row["train_flops"] <= upper * (1 + 1e-9)
    assert crossing(curve, threshold, "none")["train_flops"] == upper


@settings(max_examples=200, deadline=None)
@given(curves(), st.floats(0.01, 1), st.sampled_from(["none", "log-linear"]))
def test_nan_evaluations_change_nothing_but_the_count(curve, threshold, interpolation):
    with_nan = crossing(curve, threshold, interpolation)
    without = crossing(curve.loc[curve["val_top1"].notna()], threshold, interpolation) if curve[
        "val_top1"].notna().any() else None
    if without is not None:
        for key in ("reached", "train_flops", "step"):
            assert with_nan[key] == without[key] or (pd.isna(with_nan[key]) and pd.isna(without[key]))
    assert with_nan["evaluations"] == curve["val_top1"].notna().sum()
    if not with_nan["reached"]:  # compute spent counts even where the last evaluations are NaN
        assert with_nan["train_flops_lower_bound"] == curve["train_flops"].max()


@settings(max_examples=100, deadline=None)
@given(curves())
def test_never_reached_reports_the_compute_spent_as_a_lower_bound(curve):
    above_everything = 1.0 + 1e-9
    row = crossing(curve, min(1.0, above_everything), "log-linear")
    if not (curve["val_top1"] >= 1.0).any():
        assert not row["reached"] and pd.isna(row["train_flops"])
        assert row["train_flops_lower_bound"] == curve["train_flops"].max()
