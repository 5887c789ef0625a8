"""What changes during a training run, as functions of the settings: the learning rate of each step,
the steps after which the model is evaluated, and the training resolution of each epoch.

Pure Python (the Snakefile calls the resolution functions while it parses, to know at which
resolutions FLOPs must be counted, in the small Snakemake environment: envs/snakemake.yaml).
"""

from __future__ import annotations

import math


def learning_rate(step: int, total_steps: int, steps_per_epoch: int, settings: dict) -> float:
    """Learning rate of optimisation step ``step`` (0-based), for the configured schedule."""
    peak, kind = settings["lr"], settings["schedule"]
    if kind == "constant":
        return peak
    if kind == "step":  # divide by 10 at each of the fractions of the budget (so short runs decay too)
        progress = step / total_steps
        return peak * 0.1 ** sum(progress >= fraction for fraction in settings["step_fractions"])
    # linear and cosine: warm up from 0 to the peak, then decay to 0 at the end; evaluated mid-step
    warmup = min(settings["warmup_epochs"] * steps_per_epoch, total_steps)
    if kind == "cosine":
        if step + 0.5 < warmup:
            return peak * (step + 0.5) / warmup
        progress = (step + 0.5 - warmup) / max(total_steps - warmup, 1)
        return peak * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    # linear: numpy.interp(step + 0.5, [0, warmup, total_steps], [0, peak, 0])'s arithmetic, written out (the same
    # floats: tests/test_training.py), since numpy is not here while the workflow parses
    x = step + 0.5
    if x < warmup:
        return peak / warmup * x
    return (0.0 - peak) / (total_steps - warmup) * (x - warmup) + peak


def evaluation_steps(steps_per_epoch: int, total_steps: int, evals_per_epoch: int, first_eval_step: int,
                     evals_per_doubling: int = 1) -> list[int]:
    """Steps after which the model is evaluated: 0, log-spaced points from ``first_eval_step`` on
    (``evals_per_doubling`` per doubling of the step count), a regular grid of ``evals_per_epoch`` per epoch
    (none where 0), the end. Log-spaced points are spaced alike in compute whatever a model costs per step: a
    crossing anywhere after the first of them is bracketed by evaluations 2^(1 / evals_per_doubling) apart."""
    points = {0, total_steps}
    if evals_per_epoch > 0:
        every = steps_per_epoch / evals_per_epoch
        points.update(min(total_steps, round(k * every)) for k in range(1, math.ceil(total_steps / every) + 1))
    k = 0
    while 0 < first_eval_step and (step := round(first_eval_step * 2 ** (k / evals_per_doubling))) < total_steps:
        points.add(step)
        k += 1
    return sorted(points)


def evaluation_share(settings: dict, steps_per_epoch: int, val_images: int) -> float:
    """Evaluation compute as a share of training compute for a run of ``settings`` (an evaluation pass costs one
    forward per image, a training step three; both at their resolutions, FLOPs taken as growing with the area)."""
    total = max(1, round(settings["epochs"] * steps_per_epoch))
    evaluations = len(evaluation_steps(steps_per_epoch, total, settings["evals_per_epoch"], settings["first_eval_step"],
                                       settings.get("evals_per_doubling", 1)))
    area = (settings["eval_resolution"] / settings["resolution"]) ** 2
    return evaluations * val_images * area / (3 * total * settings["batch_size"])


def resolution_at_epoch(epoch: int, settings: dict) -> int:
    """FFCV's ImageNet example's progressive resizing: linear between the ramp's ends, multiples of 32."""
    ramp = settings["progressive_resizing"]
    if ramp is None:
        return settings["resolution"]
    if epoch <= ramp["start_epoch"]:
        return ramp["start_resolution"]
    if epoch >= ramp["end_epoch"]:
        return ramp["end_resolution"]
    share = (epoch - ramp["start_epoch"]) / (ramp["end_epoch"] - ramp["start_epoch"])
    side = ramp["start_resolution"] + share * (ramp["end_resolution"] - ramp["start_resolution"])
    return int(round(side / 32)) * 32


def training_resolutions(settings: dict) -> list[int]:
    """The training resolution of each epoch (0-based) that the settings train, in order."""
    return [resolution_at_epoch(epoch, settings) for epoch in range(max(1, math.ceil(settings["epochs"])))]


def flop_resolutions(settings: dict) -> list[int]:
    """Every resolution a model is trained or evaluated at: FLOPs are counted at each."""
    return sorted(set(training_resolutions(settings)) | {settings["eval_resolution"]})
