"""The paper's ImageNet experiment as a config: its architectures (two written here from their papers),
their FLOP counts against published figures, recipes, and a dry run planning one job per architecture."""

import re

import pytest
import torchvision
import yaml

from algoprogress.architectures import TORCHVISION_CLASSIFIERS, build_model
from algoprogress.config import flop_resolutions, validate_config
from algoprogress.flops import count_multiply_adds
from algoprogress.schedules import resolution_at_epoch
from tests.helpers import snakemake, write_image_folder

IMAGENET = yaml.safe_load(open(__file__.rsplit("/tests/", 1)[0] + "/config/imagenet.yaml"))
TORCHVISION_MODELS = [m for m in IMAGENET["models"] if m.get("arch", m["name"]) in TORCHVISION_CLASSIFIERS]


def conv_and_linear_multiply_adds(arch, **kwargs):
    counts = count_multiply_adds(arch, 1000, 224, kwargs)
    return counts["by_operator"]["conv"] + counts["by_operator"]["linear"], counts


def test_mobilenet_v1_has_the_papers_569m_multiply_adds_and_4_2m_parameters():
    multiply_adds, counts = conv_and_linear_multiply_adds("mobilenet_v1")
    assert multiply_adds == pytest.approx(569e6, rel=0.005)  # Howard et al. 2017, Table 8
    assert counts["parameters"] == pytest.approx(4.2e6, rel=0.01)
    assert counts["multiply_adds_per_image"] == pytest.approx(569e6, rel=0.05)  # fvcore adds batch norm


def test_shufflenet_v1_with_3_groups_has_the_papers_140m_multiply_adds():
    multiply_adds, counts = conv_and_linear_multiply_adds("shufflenet_v1", groups=3)
    assert multiply_adds == pytest.approx(140e6, rel=0.02)  # Zhang et al. 2017, Table 2: 140 MFLOPs
    assert counts["multiply_adds_per_image"] == pytest.approx(140e6, rel=0.05)
    eight, _ = conv_and_linear_multiply_adds("shufflenet_v1", groups=8)
    assert eight == pytest.approx(140e6, rel=0.02)  # the paper keeps the cost fixed across group counts


@pytest.mark.parametrize("arch", ["mobilenet_v1", "shufflenet_v1"])
def test_own_architectures_train_on_small_inputs(arch):
    import torch

    model = build_model(arch, 10)
    out = model(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    assert out.shape == (2, 10)


@pytest.mark.parametrize("model", TORCHVISION_MODELS, ids=lambda m: m["name"])
def test_forward_count_agrees_with_torchvision_ops(model):
    """torchvision's `_ops` (GFLOPS, one multiply-add = one operation) at each weight's own crop size."""
    arch = model.get("arch", model["name"])
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    resolution = weights.transforms().crop_size[0]
    counted = count_multiply_adds(arch, 1000, resolution, model.get("kwargs"))["multiply_adds_per_image"]
    assert counted == pytest.approx(weights.meta["_ops"] * 1e9, rel=0.05)


def test_config_has_every_architecture_of_the_paper_and_later_ones():
    archs = {m.get("arch", m["name"]) for m in IMAGENET["models"]}
    assert {"alexnet", "vgg11", "googlenet", "resnet18", "resnet34", "resnet50", "squeezenet1_1", "densenet121",
            "mobilenet_v1", "shufflenet_v1", "mobilenet_v2", "shufflenet_v2_x1_0", "resnext50_32x4d",
            "wide_resnet50_2", "efficientnet_b0"} <= archs
    assert {"regnet_y_400mf", "efficientnet_v2_s", "convnext_tiny", "vit_b_16", "swin_t"} <= archs
    # the efficient ones from 2022 on, from timm
    assert {"timm:efficientvit_b0", "timm:mobileone_s0", "timm:convnextv2_nano", "timm:fastvit_t8",
            "timm:repvit_m0_9", "timm:shvit_s1", "timm:starnet_s1", "timm:mobilenetv4_conv_small"} <= archs
    assert all(m["date_source"] for m in IMAGENET["models"])
    dates = [m["published"] for m in IMAGENET["models"]]
    assert dates == sorted(dates)
    assert [(t["metric"], t["value"]) for t in IMAGENET["thresholds"]] == [
        ("val_top5", 0.791), ("val_top5", "reference"), ("val_top5", 0.929)]
    # the paper-comparable headline: AlexNet's own level, frontier, AlexNet -> EfficientNet-b0
    assert IMAGENET["analysis"]["headline"] == {"threshold": "AlexNet-own-level", "set": "frontier",
                                                "window": "paper-2012-2019"}
    assert IMAGENET["analysis"]["windows"] == [{"name": "paper-2012-2019", "start": "alexnet",
                                                "end": "efficientnet_b0"}]


def validated(tmp_path):
    raw = dict(IMAGENET, dataset={**IMAGENET["dataset"], "train_path": str(tmp_path), "val_path": str(tmp_path)})
    return {m["name"]: m for m in validate_config(raw)["models"]}


def test_recipes_and_sweeps_resolve_per_model(tmp_path):
    """Each family sweeps budgets and its own learning rates, each schedule scaled to the trial's budget."""
    models = validated(tmp_path)
    paper = models["resnet50"]
    assert paper["sweep"] == {"epochs": [3, 6, 12, 24], "lr": [0.1, 0.2]} and len(paper["trials"]) == 8
    settings = {t["name"]: t["training"] for t in paper["trials"]}["epochs6-lr0.2"]
    assert (settings["recipe"], settings["lr"], settings["epochs"], settings["batch_size"], settings["schedule"],
            settings["step_fractions"], settings["weight_decay"], settings["momentum"]) == (
        "paper_era", 0.2, 6, 256, "step", [1 / 3, 2 / 3], 1e-4, 0.9)
    assert models["alexnet"]["sweep"] == {"epochs": [8, 16, 32, 64], "lr": [0.01, 0.02]}
    assert models["vgg11"]["sweep"] == {"epochs": [3, 6, 12, 24], "lr": [0.01, 0.02]}
    mobile = models["mobilenet_v2"]
    assert mobile["resolved_training"]["recipe"] == "mobile" and mobile["sweep"]["lr"] == [0.1, 0.25]
    assert all(t["training"]["schedule"] == "cosine" for t in mobile["trials"])
    vit = models["vit_b_16"]
    assert vit["resolved_training"]["recipe"] == "transformer" and vit["resolved_training"]["optimizer"] == "adamw"
    assert vit["sweep"]["epochs"] == [16, 32, 64]


def test_progressive_resizing_follows_ffcvs_rule():
    """FFCV's ImageNet example: linear between the ramp's epochs, rounded to a multiple of 32."""
    recipe = IMAGENET["recipes"]["fast"]
    sides = [resolution_at_epoch(epoch, recipe) for epoch in range(recipe["epochs"])]
    assert sides == [160] * 12 + [192] * 4  # epoch 12 interpolates to 176, which rounds (half to even) to 192
    ramp = {"progressive_resizing": {"start_resolution": 128, "end_resolution": 256, "start_epoch": 0,
                                     "end_epoch": 4}}
    assert [resolution_at_epoch(epoch, ramp) for epoch in range(6)] == [128, 160, 192, 224, 256, 256]


@pytest.mark.slow
def test_dry_run_plans_one_training_job_per_trial(snakemake_bin, repo, tmp_path):
    for split in ("train", "val"):
        # six classes: top-5 thresholds need more than five (with five or fewer they are refused)
        write_image_folder(tmp_path / "imagenet" / split, classes=tuple(f"n0{i}" for i in range(6)), per_class=2)
    override = tmp_path / "paths.yaml"
    override.write_text(yaml.safe_dump({"dataset": {"train_path": str(tmp_path / "imagenet" / "train"),
                                                    "val_path": str(tmp_path / "imagenet" / "val")}}))
    result = snakemake(snakemake_bin, repo, tmp_path / "run", "--dry-run",
                       configfile=[repo / "config" / "imagenet.yaml", override])
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE))
    n = len(IMAGENET["models"])
    paths = yaml.safe_load(override.read_text())["dataset"]
    models = validate_config({**IMAGENET, "dataset": {**IMAGENET["dataset"], **paths}})["models"]
    # FLOPs are counted once per model and resolution
    flop_files = sum(len({r for t in m["trials"] for r in flop_resolutions(t["training"])}) for m in models)
    trials = sum(len(m["trials"]) * len(m["resolved_training"]["seeds"]) for m in models)
    assert trials > 6 * n  # a sweep per architecture, one job per trial and selection seed
    calibration = 3  # AlexNet's calibration runs: the reference's own level; confirmation runs come after select_trials
    assert (counts["train"], counts["count_flops"], counts["prepare_data"], counts["select_trials"]) == (
        str(trials + calibration), str(flop_files), "1", "1")
    assert "DAG of jobs will be updated after completion" in result.stdout + result.stderr
    assert not (tmp_path / "run" / "results").exists()
