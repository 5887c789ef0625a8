"""Property-based tests of the crossing rule (hypothesis): random curves, random thresholds."""

import numpy as np
import pandas as pd
import pytest
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


RULES = st.sampled_from(["monotone", "first"])


def crossing(curve, threshold, interpolation, rule="first"):
    return compute_at_threshold(curve, "val_top1", threshold, interpolation, crossing=rule).iloc[0]


@settings(max_examples=200, deadline=None)
@given(curves(), st.floats(0.01, 1), st.floats(0.01, 1), st.sampled_from(["none", "log-linear"]), RULES)
def test_compute_at_threshold_is_monotone_in_the_threshold(curve, a, b, interpolation, rule):
    low, high = sorted((a, b))
    first, second = crossing(curve, low, interpolation, rule), crossing(curve, high, interpolation, rule)
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
@given(curves(), st.floats(0.01, 1), st.sampled_from(["none", "log-linear"]), RULES)
def test_nan_evaluations_change_nothing_but_the_count(curve, threshold, interpolation, rule):
    with_nan = crossing(curve, threshold, interpolation, rule)
    without = crossing(curve.loc[curve["val_top1"].notna()], threshold, interpolation, rule) if curve[
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


def pool_adjacent_violators(values: list[float]) -> list[float]:
    """The least-squares non-decreasing fit, by the textbook algorithm: merge neighbouring blocks while a block's
    mean is below the one before it."""
    blocks = []  # [mean, count]
    for value in values:
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (mean, count), (last, more) = blocks[-2], blocks[-1]
            blocks[-2:] = [[(mean * count + last * more) / (count + more), count + more]]
    return [mean for mean, count in blocks for _ in range(count)]


def crossing_by_loop(curve: pd.DataFrame, threshold: float, interpolation: str, rule: str = "first") -> dict:
    """The crossing rule of one curve (module docstring of algoprogress.thresholds), written as a plain loop."""
    curve = curve.sort_values("step", kind="stable")
    evaluations = [row for row in curve.itertuples() if not np.isnan(row.val_top1)]
    metric = [row.val_top1 for row in evaluations]
    if rule == "monotone":
        metric = pool_adjacent_violators(metric)
    result = {"spent_flops": curve["train_flops"].max(), "evaluations": len(evaluations),
              "best_metric": max((row.val_top1 for row in evaluations), default=np.nan), "reached": False,
              "train_flops": np.nan, "step": np.nan, "crossed_at_first_evaluation": False}
    for position, row in enumerate(evaluations):
        if metric[position] >= threshold:
            flops = row.train_flops
            if interpolation == "log-linear" and position > 0:
                before, level = evaluations[position - 1], metric[position - 1]
                if 0 < before.train_flops < flops and level < metric[position]:
                    fraction = min(max((threshold - level) / (metric[position] - level), 0.0), 1.0)
                    flops = float(np.exp(np.log(before.train_flops)
                                         + fraction * (np.log(flops) - np.log(before.train_flops))))
            result.update(reached=True, train_flops=flops, step=row.step, crossed_at_first_evaluation=position == 0)
            break
    return result


@st.composite
def several_curves(draw):
    """Curves of several models, trials and seeds, their rows shuffled together."""
    names = draw(st.lists(st.tuples(st.sampled_from(["b", "a"]), st.sampled_from(["base", "lr0.1"]),
                                    st.integers(0, 2)), min_size=1, max_size=4, unique=True))
    frames = [draw(curves()).assign(model=model, trial=trial, seed=seed) for model, trial, seed in names]
    together = pd.concat(frames, ignore_index=True)
    return together.iloc[draw(st.permutations(range(len(together))))].reset_index(drop=True)


@settings(max_examples=150, deadline=None)
@given(several_curves(), st.floats(0.01, 1), st.sampled_from(["none", "log-linear"]), RULES)
def test_all_curves_at_once_equal_the_rule_curve_by_curve(together, threshold, interpolation, rule):
    """The vectorised table (one row per curve, in key order) equals the rule applied to each curve alone: the
    first evaluation at or above the threshold, of the evaluations or of their monotone fit (scipy's isotonic
    regression against the textbook pool-adjacent-violators algorithm)."""
    table = compute_at_threshold(together, "val_top1", threshold, interpolation, crossing=rule)
    keys = sorted(together.groupby(["model", "trial", "seed"]).groups)
    assert list(zip(table["model"], table["trial"], table["seed"], strict=True)) == keys
    for row, key in zip(table.itertuples(), keys, strict=True):
        alone = together.loc[(together["model"] == key[0]) & (together["trial"] == key[1])
                             & (together["seed"] == key[2])]
        expected = crossing_by_loop(alone, threshold, interpolation, rule)
        for name, value in expected.items():
            got = getattr(row, name)
            assert got == pytest.approx(value, rel=1e-12, nan_ok=True), (key, name)
        assert row.train_flops_lower_bound == (pytest.approx(row.spent_flops) if not row.reached else pytest.approx(
            np.nan, nan_ok=True))
