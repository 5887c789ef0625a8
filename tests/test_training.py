import math

import numpy as np
import pytest

from algoprogress import curves
from algoprogress.config import validate_config
from algoprogress.flops import count_multiply_adds
from algoprogress.training import TrainingJob, evaluation_steps, learning_rate, train

SETTINGS = validate_config({"models": [{"name": "resnet18", "published": "2015-12-10"},
                                       {"name": "alexnet", "published": "2012-06-01"}]})["training"]


def test_evaluation_steps_cover_start_early_points_grid_and_end():
    steps = evaluation_steps(steps_per_epoch=100, total_steps=250, evals_per_epoch=4, first_eval_step=8)
    assert steps[0] == 0 and steps[-1] == 250 and steps == sorted(set(steps))
    assert {8, 16, 32, 64, 128} <= set(steps)
    assert {25, 50, 75, 100, 200, 225} <= set(steps)
    assert evaluation_steps(10, 10, 1, 0) == [0, 10]


def test_linear_schedule_warms_up_then_decays_to_zero():
    settings = {**SETTINGS, "schedule": "linear", "lr": 1.0, "warmup_epochs": 1}
    lrs = [learning_rate(step, 40, 10, settings) for step in range(40)]
    peak = int(np.argmax(lrs))
    assert 9 <= peak <= 10 and lrs[peak] == pytest.approx(1.0, abs=0.06)
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
    assert 0 < lrs[-1] < 0.05


def test_step_schedule_divides_by_ten():
    settings = {**SETTINGS, "schedule": "step", "lr": 0.1, "step_epochs": 2}
    assert learning_rate(19, 100, 10, settings) == pytest.approx(0.1)
    assert learning_rate(20, 100, 10, settings) == pytest.approx(0.01)
    assert learning_rate(45, 100, 10, settings) == pytest.approx(0.001)


def short_job(folder, seed=0, **overrides):
    settings = {**SETTINGS, "epochs": 1, "batch_size": 20, "evals_per_epoch": 2, "first_eval_step": 2,
                "eval_batch_size": 50, **overrides}
    macs = count_multiply_adds("shufflenet_v2_x0_5", 10, 64)["multiply_adds_per_image"]
    return TrainingJob("tiny-shuffle", "shufflenet_v2_x0_5", seed, str(folder / "train.beton"),
                       str(folder / "val.beton"), 10, 64, settings, macs, {}, threads=1)


def test_training_writes_a_curve_with_the_schema_and_the_flop_convention(mnist_betons, tmp_path):
    folder, _ = mnist_betons
    job = short_job(folder)
    train(job, tmp_path / "curve.parquet")
    curve = curves.read_curve(tmp_path / "curve.parquet")
    assert list(curve.columns) == list(curves.CURVE_COLUMNS)
    assert curve["step"].tolist() == [0, 2, 4, 5, 8, 10]
    assert (curve["images_seen"] == curve["step"] * 20).all()
    assert np.allclose(curve["train_flops"], 6 * job.multiply_adds_per_image * curve["images_seen"])
    assert curve["val_top1"].between(0, 1).all() and (curve["val_top5"] >= curve["val_top1"]).all()
    assert curve["wall_seconds"].is_monotonic_increasing
    meta = curves.read_curve_metadata(tmp_path / "curve.parquet")
    assert meta["fvcore_multiply_adds_per_image"] == job.multiply_adds_per_image
    assert meta["training"]["batch_size"] == 20 and meta["versions"]["ffcv"] == "1.0.2"
    assert not list(tmp_path.glob(".*partial*"))


def test_same_seed_same_curve_on_cpu(mnist_betons, tmp_path):
    folder, _ = mnist_betons
    first = train(short_job(folder, seed=3, epochs=0.5), tmp_path / "a.parquet")
    second = train(short_job(folder, seed=3, epochs=0.5), tmp_path / "b.parquet")
    keys = ("step", "val_top1", "val_loss", "train_loss")
    for a, b in zip(first, second):
        assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in keys)


def test_diverging_training_stops_with_model_step_and_lr(mnist_betons, tmp_path):
    from algoprogress.training import NonFiniteLossError

    folder, _ = mnist_betons
    with pytest.raises(NonFiniteLossError, match=r"tiny-shuffle seed 0: non-finite loss .* at step \d+ \(lr "):
        train(short_job(folder, lr=1e12, schedule="constant", momentum=0.0), tmp_path / "c.parquet")
    assert not (tmp_path / "c.parquet").exists()
