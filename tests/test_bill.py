"""The bill before the run (algoprogress.bill, workflow/scripts/bill.py): nothing trains."""

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from algoprogress import curves
from algoprogress.bill import MultiplyAddCounter, bill, step_resolutions, training_images
from algoprogress.config import load_config, validate_config
from algoprogress.flops import PETAFLOP_S_DAY


def run_bill(repo, cwd, *args):
    return subprocess.run([sys.executable, str(repo / "workflow" / "scripts" / "bill.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def test_steps_follow_the_training_loop_and_its_resolutions():
    ramp = {"start_resolution": 64, "end_resolution": 128, "start_epoch": 1, "end_epoch": 2}
    settings = {"batch_size": 10, "epochs": 2.5, "progressive_resizing": ramp, "resolution": 64}
    # 105 images // 10 = 10 steps per epoch (the partial batch dropped); 2.5 epochs = 25 steps
    assert step_resolutions(settings, 105) == {64: 20, 128: 5}  # epochs 0 and 1 at the start, 2 at the end
    assert step_resolutions({**settings, "epochs": 0.01}, 105) == {64: 1}  # at least one step


def test_mnist_training_images_come_from_the_config_or_the_manifest(repo, tmp_path):
    config = load_config(repo / "tests" / "data" / "tiny.yaml")
    assert training_images(config) == 450  # 60 per class, a quarter held out
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"train": {"images": 123}}')
    assert training_images(config, manifest) == 123


def test_a_sweep_is_billed_per_trial_and_seed_with_its_confirmation_and_calibration_runs():
    """Every trial on the selection seeds; the confirmation runs at the priciest trial (the chosen one is known
    only after the selection runs: the worst case); the reference's calibration runs (the default threshold is
    its own level, fixed by the default three calibration seeds)."""
    config = validate_config({"training": {"seeds": [0, 1], "batch_size": 10},
                              "models": [{"name": "alexnet", "published": "2012-06-01"},
                                         {"name": "resnet18", "published": "2015-12-10",
                                          "training": {"sweep": {"epochs": [1, 2]}, "confirmation_seeds": [5]}}]})
    table = bill(config, 100, lambda model, resolution: 1000 if model["name"] == "alexnet" else 10,
                 {"alexnet": 50.0, "resnet18": 20.0}).set_index("model")
    assert table.loc["resnet18", ["trials", "seeds", "confirmation_seeds", "jobs"]].tolist() == [2, 2, 1, 5]
    assert table.loc["resnet18", "images_seen"] == (100 + 200) * 2 + 200  # the confirmation run at 2 epochs
    assert table.loc["resnet18", "train_flops"] == 6 * 10 * 800
    assert table.loc["alexnet", ["seeds", "calibration_seeds", "jobs"]].tolist() == [2, 3, 5]
    assert table.loc["alexnet", "images_seen"] == (2 + 3) * 200  # the default 2 epochs: two seeds, three calibration
    assert table.loc["resnet18", "gpu_hours"] == pytest.approx(800 / 20 / 3600)
    assert table.loc["total", "train_flops"] == 6 * 1000 * 1000 + 6 * 10 * 800
    assert table.loc["total", "jobs"] == 10
    assert table.loc["total", "pfs_days"] == pytest.approx(table.loc["total", "train_flops"] / PETAFLOP_S_DAY)
    assert pd.isna(bill(config, 100, lambda model, resolution: 1).set_index("model").loc["total", "gpu_hours"])


def test_a_sweeps_trials_count_their_network_once_per_resolution(monkeypatch):
    """fvcore counts each (network, resolution) once per bill, however many trials share it (the ImageNet
    config's AlexNet has eight)."""
    from algoprogress import flops

    calls, real = [], flops.count_multiply_adds

    def counting(arch, num_classes, resolution, kwargs):
        calls.append((arch, resolution))
        return real(arch, num_classes, resolution, kwargs)

    monkeypatch.setattr(flops, "count_multiply_adds", counting)
    config = validate_config({
        "training": {"resolution": 32, "eval_resolution": 32},
        "models": [{"name": "squeezenet1_1", "published": "2016-02-24",
                    "training": {"sweep": {"lr": [0.01, 0.02, 0.04], "epochs": [1, 2]}, "confirmation_seeds": [1]}},
                   {"name": "resnet18", "published": "2015-12-10"}], "thresholds": [{"name": "t", "value": 0.5}]})
    counter = MultiplyAddCounter(10)
    table = bill(config, 100, counter).set_index("model")
    assert table.loc["squeezenet1_1", "trials"] == 6
    assert sorted(calls) == [("resnet18", 32), ("squeezenet1_1", 32)]
    assert counter(config["models"][0], 32) > 0 and len(calls) == 2


@pytest.mark.slow
def test_the_bill_equals_what_the_finished_run_trained(finished_run, repo):
    """The bill of the tiny config, from the finished run's FLOP counts, equals its curves' end."""
    config = load_config(repo / "tests" / "data" / "tiny.yaml")
    results = finished_run / "results"
    counter = MultiplyAddCounter(10, results / "flops")
    table = bill(config, training_images(config, results / "data" / "manifest.json"), counter).set_index("model")
    for model in config["models"]:
        ends = [curves.read_curve(results / "curves" / model["name"] / "base" / f"seed{seed}.parquet").iloc[-1]
                for seed in model["resolved_training"]["seeds"]]
        assert table.loc[model["name"], "images_seen"] == sum(end["images_seen"] for end in ends)
        assert table.loc[model["name"], "train_flops"] == pytest.approx(sum(end["train_flops"] for end in ends),
                                                                        rel=1e-12)


def test_the_cli_prices_the_tiny_config(repo, tmp_path):
    result = run_bill(repo, tmp_path, "--config", str(repo / "tests" / "data" / "tiny.yaml"),
                      "--images-per-second", "100", "--throughput", "shufflenet_v2_x0_5=50", "--flops-cache",
                      str(tmp_path / "cache"), "--csv", str(tmp_path / "bill.csv"))
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(tmp_path / "bill.csv").set_index("model")
    assert list(table.index) == ["shufflenet_v2_x0_5", "mobilenet_v2", "total"]
    assert table.loc["shufflenet_v2_x0_5", "gpu_hours"] == pytest.approx(2 * 896 / 50 / 3600)  # two seeds
    assert "total" in result.stdout and "gpu_hours" in result.stdout
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.json")) == ["64px.fvcore.json"] * 2
    assert not (tmp_path / "results").exists()  # nothing trains, nothing else is written


def test_the_cli_names_what_is_missing(repo, tmp_path):
    result = run_bill(repo, tmp_path, "--config", str(repo / "config" / "imagenet.yaml"))
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1] == (
        "error: dataset.source 'imagefolder': no data manifest; give --train-images N")
    result = run_bill(repo, tmp_path, "--config", str(repo / "tests" / "data" / "tiny.yaml"), "--throughput", "vgg=3")
    assert result.returncode != 0 and "--throughput: 'vgg' is not a model" in result.stderr


@pytest.mark.slow
def test_the_imagenet_bill_prices_every_planned_job_and_sums(repo, tmp_path):
    """config/imagenet.yaml on a machine without ImageNet: the bill still prices every planned job. Four of its
    models (the reference with its sweep, ResNet-50's progressive resizing, the window's end and a timm model):
    counting all of them at 224 px takes minutes here (`workflow/scripts/bill.py --config config/imagenet.yaml`
    prices them all; the README's bill is that run)."""
    config = yaml.safe_load((repo / "config" / "imagenet.yaml").read_text())
    kept = ["alexnet", "resnet50", "efficientnet_b0", "mobilenetv4_conv_small"]
    config["models"] = [m for m in config["models"] if m["name"] in kept]
    subset = tmp_path / "imagenet_subset.yaml"
    subset.write_text(yaml.safe_dump(config))
    result = run_bill(repo, tmp_path, "--config", str(subset), "--train-images", "1281167",
                      "--num-classes", "1000", "--images-per-second", "2000", "--csv", str(tmp_path / "bill.csv"))
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(tmp_path / "bill.csv").set_index("model")
    assert list(table.index) == [*kept, "total"]
    models = table.drop(index="total")
    for column in ("trials", "jobs", "images_seen", "train_flops", "pfs_days", "gpu_hours"):
        assert table.loc["total", column] == pytest.approx(models[column].sum(), rel=1e-9)
    assert (models["train_flops"] > 0).all() and models.loc["alexnet", "trials"] == 8
    assert table.loc["total", "gpu_hours"] == pytest.approx(models["images_seen"].sum() / 2000 / 3600)
    for name in kept:
        assert name in result.stdout
