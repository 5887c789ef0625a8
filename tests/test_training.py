import itertools
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from algoprogress import curves
from algoprogress.config import validate_config
from algoprogress.flops import count_at_resolutions, per_image_costs
from algoprogress.provenance import cpu_model
from algoprogress.schedules import evaluation_steps, learning_rate
from algoprogress.training import TrainingJob, train
from tests.helpers import short_job

SETTINGS = validate_config({
    "models": [{"name": "resnet18", "published": "2015-12-10"}, {"name": "alexnet", "published": "2012-06-01"}],
})["models"][0]["resolved_training"]


def test_evaluation_steps_cover_start_early_points_grid_and_end():
    steps = evaluation_steps(steps_per_epoch=100, total_steps=250, evals_per_epoch=4, first_eval_step=8)
    assert steps[0] == 0 and steps[-1] == 250 and steps == sorted(set(steps))
    assert {8, 16, 32, 64, 128} <= set(steps)
    assert {25, 50, 75, 100, 200, 225} <= set(steps)
    assert evaluation_steps(10, 10, 1, 0) == [0, 10]


def test_log_spaced_evaluations_bracket_every_crossing_alike():
    """With no per-epoch grid, neighbouring evaluations after the first log-spaced one are 2^(1/n) apart (up to
    rounding to whole steps), whatever the budget: a cheap model crossing early is resolved like a costly one."""
    for total in (1_000, 100_000):
        steps = evaluation_steps(steps_per_epoch=500, total_steps=total, evals_per_epoch=0, first_eval_step=250,
                                 evals_per_doubling=3)
        assert steps[:2] == [0, 250] and steps[-1] == total
        ratios = [b / a for a, b in zip(steps[1:-2], steps[2:-1], strict=True)]
        assert all(abs(ratio - 2 ** (1 / 3)) < 0.01 for ratio in ratios), ratios


def test_the_imagenet_schedules_spend_at_most_a_tenth_on_evaluation(repo):
    """config/imagenet.yaml: every trial of every model evaluates the 50,000 validation images at most so often that
    evaluation costs at most 10% of its training compute."""
    from algoprogress.schedules import evaluation_share

    config = yaml.safe_load((repo / "config" / "imagenet.yaml").read_text())
    shares = {}
    for model in validate_config(config, check_paths=False)["models"]:
        for trial in model["trials"]:
            settings = trial["training"]
            shares[(model["name"], trial["name"])] = evaluation_share(settings, 1_281_167 // settings["batch_size"],
                                                                      50_000)
    assert max(shares.values()) <= 0.10, max(shares.items(), key=lambda item: item[1])


def test_linear_schedule_warms_up_then_decays_to_zero():
    settings = {**SETTINGS, "schedule": "linear", "lr": 1.0, "warmup_epochs": 1}
    lrs = [learning_rate(step, 40, 10, settings) for step in range(40)]
    peak = int(np.argmax(lrs))
    assert 9 <= peak <= 10 and lrs[peak] == pytest.approx(1.0, abs=0.06)
    assert all(a < b for a, b in itertools.pairwise(lrs[:peak + 1]))
    assert all(a > b for a, b in itertools.pairwise(lrs[peak:]))
    assert 0 < lrs[-1] < 0.05


@pytest.mark.parametrize("warmup_epochs", [0, 0.1, 1, 5, 1000])
def test_linear_schedule_is_numpys_interpolation_to_the_bit(warmup_epochs):
    """Written out without numpy (the workflow parses without it); the curves trained when it was numpy.interp stay
    the curves this code trains."""
    for lr, steps_per_epoch, total in ((0.05, 38, 76), (0.1, 5004, 450_360), (2.0 / 3.0, 7, 31)):
        settings = {**SETTINGS, "schedule": "linear", "lr": lr, "warmup_epochs": warmup_epochs}
        warmup = min(warmup_epochs * steps_per_epoch, total)
        around_warmup = [s for s in (int(warmup) - 1, int(warmup)) if 0 <= s < total]
        for step in sorted({*range(0, total, max(1, total // 997)), total - 1, *around_warmup}):
            points = ([0, warmup, total], [0.0, lr, 0.0]) if warmup > 0 else ([0, total], [lr, 0.0])
            assert learning_rate(step, total, steps_per_epoch, settings) == float(np.interp(step + 0.5, *points))


@pytest.mark.parametrize("epochs", [9, 90])
def test_step_schedule_divides_by_ten_at_a_third_and_two_thirds_of_any_budget(epochs):
    """The default step_fractions: the PyTorch ImageNet example's epochs 30 and 60 of 90, scaled to the budget."""
    settings = {**SETTINGS, "schedule": "step", "lr": 0.1}
    steps_per_epoch = 10
    total = epochs * steps_per_epoch
    lrs = [learning_rate(step, total, steps_per_epoch, settings) for step in range(total)]
    first_with = {lr: lrs.index(lr) for lr in dict.fromkeys(lrs)}  # each lr, from its first step
    assert list(first_with) == pytest.approx([0.1, 0.01, 0.001])
    assert list(first_with.values()) == [0, total // 3, 2 * total // 3]


def test_step_schedule_takes_the_configured_fractions():
    settings = {**SETTINGS, "schedule": "step", "lr": 1.0, "step_fractions": [0.5, 0.75, 0.9]}
    assert [learning_rate(step, 100, 10, settings) for step in (49, 50, 75, 90, 99)] == pytest.approx(
        [1.0, 0.1, 0.01, 0.001, 0.001])


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_linear_and_cosine_decay_to_zero_at_the_end_of_any_budget(schedule):
    settings = {**SETTINGS, "schedule": schedule, "lr": 1.0, "warmup_epochs": 1}
    for epochs in (4, 40):
        total = epochs * 10
        lrs = [learning_rate(step, total, 10, settings) for step in range(total)]
        assert max(lrs) == pytest.approx(1.0, abs=0.06)
        # zero at the end of the budget: the last step's lr (taken mid-step) is within half a step of it
        assert 0 < lrs[-1] <= 1.0 * 0.5 / (total - 10) + 1e-12
        assert lrs[-1] < lrs[-2] < lrs[-3]


@pytest.mark.parametrize("fractions", [[0.6, 0.3], [0.5, 0.5]])
def test_step_fractions_must_increase(fractions):
    from algoprogress.config import ConfigError

    raw = {"training": {"step_fractions": fractions}, "models": [{"name": "resnet18", "published": "2015-12-10"},
                                                                  {"name": "alexnet", "published": "2012-06-01"}]}
    with pytest.raises(ConfigError, match=r"^training\.step_fractions: .* not strictly increasing"):
        validate_config(raw)


def test_curve_settings_drop_exactly_the_runtime_keys_and_the_seed_list():
    from algoprogress.config import RUNTIME_KEYS, SCHEMA_DIR, SEED_LIST_KEYS, curve_settings

    training_keys = yaml.safe_load((SCHEMA_DIR / "config.schema.yaml").read_text())["$defs"]["training"]["properties"]
    assert set(RUNTIME_KEYS + SEED_LIST_KEYS) <= set(training_keys) and "seeds" in SETTINGS
    assert set(curve_settings(SETTINGS)) == set(SETTINGS) - set(RUNTIME_KEYS) - set(SEED_LIST_KEYS)
    assert all("runtime key" in training_keys[key]["description"].lower() for key in RUNTIME_KEYS)


def test_checkpoint_fingerprint_ignores_runtime_settings(tmp_path):
    def fingerprint(**overrides):
        return short_job(tmp_path, **overrides).fingerprint()

    assert fingerprint(workers=1, eval_batch_size=7, checkpoint_every_seconds=0, seeds=[0, 5]) == fingerprint()
    assert fingerprint(lr=0.01) != fingerprint() and fingerprint(gpus=2) != fingerprint()


def test_training_writes_a_curve_with_the_schema_and_the_flop_convention(mnist_betons, tmp_path):
    folder, _ = mnist_betons
    job = short_job(folder)
    train(job, tmp_path / "curve.parquet")
    curve = curves.read_curve(tmp_path / "curve.parquet")
    assert list(curve.columns) == list(curves.CURVE_COLUMNS)
    assert curve["step"].tolist() == [0, 2, 4, 5, 8, 10]
    assert (curve["images_seen"] == curve["step"] * 20).all()
    assert np.allclose(curve["train_flops"], 6 * job.multiply_adds[64] * curve["images_seen"])
    assert np.allclose(curve["train_flops_measured"], job.measured_flops[64] * curve["images_seen"])
    assert (curve["train_flops_measured"] / curve["train_flops"]).iloc[1:].between(0.85, 1.05).all()
    assert np.allclose(curve["eval_flops"], 2 * job.multiply_adds[64] * 100 * np.arange(1, len(curve) + 1))
    assert (curve["recipe"] == "custom").all() and (curve["resolution"] == 64).all()
    assert (curve["trial"] == "base").all() and not curve["diverged"].any()
    assert curve["val_top1"].between(0, 1).all() and (curve["val_top5"] >= curve["val_top1"]).all()
    assert curve["wall_seconds"].is_monotonic_increasing
    meta = curves.read_curve_metadata(tmp_path / "curve.parquet")
    assert meta["fvcore_multiply_adds_per_image"] == {"64": job.multiply_adds[64]}
    assert meta["training"]["batch_size"] == 20 and meta["versions"]["ffcv"] == "1.0.2"
    assert meta["trial"] == "base" and meta["stopped"] is None
    import torch

    assert len(meta["git_commit"]) == 40 and meta["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert meta["gpus"] == torch.cuda.device_count()
    assert meta["cpu"] == cpu_model()
    assert not list(tmp_path.glob(".*partial*"))


def test_a_curve_names_the_cpu_model_as_lscpu_does():
    """A curve's metadata names the CPU's model ("AMD EPYC ...", "Intel(R) Xeon(R) ..."), not only "x86_64":
    the same seed gives another curve on another CPU's kernels."""
    listing = subprocess.run(["lscpu"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout \
        if shutil.which("lscpu") else ""
    named = re.search(r"^Model name:\s*(.+)$", listing, re.MULTILINE)
    if named is None:
        pytest.skip("lscpu names no CPU model here")
    assert cpu_model() == named.group(1).strip()


def test_same_seed_same_curve_on_cpu(mnist_betons, tmp_path):
    folder, _ = mnist_betons
    first = train(short_job(folder, seed=3, epochs=0.5), tmp_path / "a.parquet")
    second = train(short_job(folder, seed=3, epochs=0.5), tmp_path / "b.parquet")
    keys = ("step", "val_top1", "val_loss", "train_loss")
    for a, b in zip(first, second, strict=True):
        assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in keys)


def test_a_diverged_curve_is_the_same_whatever_the_check_interval(mnist_betons, tmp_path):
    """The loss is checked every step on CPU and every 16 steps on a GPU (no wait for the GPU between): the
    first non-finite step is recorded on the device, so checking every 3 steps names the same step and lr
    and keeps the same curve, which ends at its last evaluation before that step."""
    folder, _ = mnist_betons
    results = []
    for every in (1, 3):
        path = tmp_path / f"every{every}.parquet"
        train(short_job(folder, lr=1e3, schedule="linear", warmup_epochs=0.5, momentum=0.0,
                        check_every_steps=every), path)
        results.append((curves.read_curve(path), curves.read_curve_metadata(path)["stopped"]))
    (each, each_stopped), (sparse, sparse_stopped) = results
    assert each_stopped == sparse_stopped and "non-finite loss at step" in each_stopped
    pd.testing.assert_frame_equal(each.drop(columns=["wall_seconds", "eval_seconds"]),
                                  sparse.drop(columns=["wall_seconds", "eval_seconds"]))
    step = int(re.search(r"at step (\d+)", each_stopped).group(1))
    assert each["diverged"].all() and 2 <= len(each) and each["step"].iloc[-1] < step
    assert each["step"].iloc[-1] == max(s for s in [0, 2, 4, 5, 8, 10] if s <= step - 1)


def test_imagefolder_of_real_files_writes_and_trains_with_progressive_resizing(tmp_path):
    """Greyscale, CMYK, PNG-in-JPEG and one corrupt file go through the writer (within its budget) and
    a short training run whose resolution grows epoch by epoch; FLOPs are counted at each resolution."""
    from algoprogress.data import prepare_dataset
    from algoprogress.schedules import flop_resolutions
    from tests.helpers import write_image_folder

    root = write_image_folder(tmp_path / "images", broken=True, per_class=8, size=(70, 90))
    config = validate_config({
        "dataset": {"source": "imagefolder", "train_path": str(root), "val_fraction": 0.25, "resolution": 64,
                    "max_side": 96, "write_mode": "proportion", "max_undecodable": 1},
        "training": {"epochs": 3, "batch_size": 4, "evals_per_epoch": 1, "first_eval_step": 0, "lr": 0.01,
                     "random_resized_crop": True, "crop_min_scale": 0.08, "flip": True, "eval_resolution": 64,
                     "eval_crop_ratio": 0.875, "workers": 1,
                     "progressive_resizing": {"start_resolution": 32, "end_resolution": 96, "start_epoch": 0,
                                              "end_epoch": 2}},
        "models": [{"name": "mobilenet_v1", "published": "2017-04-17"},
                   {"name": "resnet18", "published": "2015-12-10"}]})
    manifest = prepare_dataset(config["dataset"], tmp_path / "train.beton", tmp_path / "val.beton",
                               tmp_path / "manifest.json", 2)
    assert manifest["undecodable"]["count"] == 1 and manifest["train"]["images"] == 12
    settings = config["models"][0]["resolved_training"]
    assert flop_resolutions(settings) == [32, 64, 96]
    macs, measured = per_image_costs(count_at_resolutions("mobilenet_v1", 2, flop_resolutions(settings)))
    job = TrainingJob("mobilenet_v1", "mobilenet_v1", 0, str(tmp_path / "train.beton"), str(tmp_path / "val.beton"),
                      2, settings, macs, measured, {}, threads=1)
    curve = curves.as_curve(train(job, tmp_path / "curve.parquet"))
    assert curve["step"].tolist() == [0, 3, 6, 9] and curve["resolution"].tolist()[1:] == [32, 64, 96]
    per_step = np.diff(curve["train_flops"].to_numpy())
    assert np.allclose(per_step, [6 * macs[side] * 4 * 3 for side in (32, 64, 96)])
    assert np.allclose(np.diff(curve["train_flops_measured"].to_numpy()), [measured[s] * 12 for s in (32, 64, 96)])


@pytest.mark.slow
def test_two_processes_under_torchrun_give_the_same_evaluation_points(mnist_betons, tmp_path):
    """The distributed path (torchrun, DistributedDataParallel, FFCV's distributed order) run on CPU with
    gloo: same steps, images and compute as one process; validation split exactly between processes."""
    from algoprogress.launch import run_training

    folder, _ = mnist_betons
    single = short_job(folder, epochs=0.5)
    double = short_job(folder, epochs=0.5, gpus=2)
    run_training(single, tmp_path / "one.parquet", processes=1)
    run_training(double, tmp_path / "two.parquet", processes=2)
    one, two = curves.read_curve(tmp_path / "one.parquet"), curves.read_curve(tmp_path / "two.parquet")
    for column in ("step", "images_seen", "train_flops", "train_flops_measured", "eval_flops"):
        assert one[column].tolist() == two[column].tolist()
    assert two["val_top1"].iloc[0] == one["val_top1"].iloc[0]  # same initial weights, every image counted once
    assert curves.read_curve_metadata(tmp_path / "two.parquet")["processes"] == 2
