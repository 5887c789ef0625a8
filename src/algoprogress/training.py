"""Train one architecture with one seed and record its learning curve.

Training only records; it never decides whether a threshold was reached (scoring works from the
curve alone, as AlgoPerf's does from logs). The curve has a row at step 0 (the untrained model),
at log-spaced early steps, at evenly spaced points of every epoch, and at the last step.

Checkpoints: with a checkpoint path, the job saves its whole state (model, optimizer, RNG, the
curve so far, the step) atomically at evaluation points (at most once per
``checkpoint_every_seconds``) and when it receives SIGTERM (how
SLURM ends a job at its time limit or on preemption). A rerun resumes from the checkpoint: the data
order of every epoch is a function of (seed, epoch), so it replays the same batches and, on CPU,
produces the same curve, with no duplicate or missing evaluation. A checkpoint made with other
settings, or one that cannot be read (torn, corrupt), is reported and ignored: training starts over.
"""

from __future__ import annotations

import logging
import math
import platform
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from algoprogress import curves, flops
from algoprogress.fileio import atomic_path

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    pass


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived: the state was checkpointed and the job should exit so that a retry resumes."""


def learning_rate(step: int, total_steps: int, steps_per_epoch: int, settings: dict) -> float:
    """Learning rate of optimisation step ``step`` (0-based), for the configured schedule."""
    peak, kind = settings["lr"], settings["schedule"]
    if kind == "constant":
        return peak
    if kind == "step":
        return peak * 0.1 ** math.floor(step / steps_per_epoch / settings["step_epochs"])
    # linear: warm up from 0 to the peak, then decay to 0 at the end; evaluated mid-step
    warmup = min(settings["warmup_epochs"] * steps_per_epoch, total_steps)
    if warmup > 0:
        return float(np.interp(step + 0.5, [0, warmup, total_steps], [0.0, peak, 0.0]))
    return float(np.interp(step + 0.5, [0, total_steps], [peak, 0.0]))


def evaluation_steps(steps_per_epoch: int, total_steps: int, evals_per_epoch: int, first_eval_step: int) -> list[int]:
    """Steps after which the model is evaluated: 0, log-spaced early points, a regular grid, the end."""
    points = {0, total_steps}
    every = steps_per_epoch / evals_per_epoch
    points.update(min(total_steps, round(k * every)) for k in range(1, math.ceil(total_steps / every) + 1))
    step = first_eval_step
    while 0 < step < total_steps:
        points.add(step)
        step *= 2
    return sorted(points)


@dataclass
class TrainingJob:
    model_name: str
    arch: str
    seed: int
    train_beton: str
    val_beton: str
    num_classes: int
    resolution: int
    settings: dict
    multiply_adds_per_image: int
    kwargs: dict
    threads: int = 1
    checkpoint_path: str | None = None
    # at evaluation points, checkpoint only if this long has passed since the last one (SIGTERM always
    # checkpoints): a large model's state is hundreds of MB, and a SIGKILL then loses at most this much
    checkpoint_every_seconds: float = 60.0

    def fingerprint(self) -> dict:
        """What a checkpoint must match to be resumed: everything that determines the curve."""
        return {"arch": self.arch, "seed": self.seed, "kwargs": self.kwargs, "num_classes": self.num_classes,
                "resolution": self.resolution, "settings": self.settings,
                "multiply_adds_per_image": self.multiply_adds_per_image}


def save_checkpoint(path: str | Path, state: dict) -> None:
    import torch

    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: str | Path | None, fingerprint: dict) -> dict | None:
    """The saved state if ``path`` holds a readable checkpoint of the same job, else None (reported)."""
    import torch

    if path is None or not Path(path).exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or corrupt file: any unpickling error means "not usable"
        log.warning("%s: unreadable checkpoint (%s); starting over", path, type(error).__name__)
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning("%s: checkpoint of other settings; starting over", path)
        return None
    return state


def pick_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def evaluate(model, loader, device) -> dict:
    import torch

    model.eval()
    total, top1, top5, loss_sum = 0, 0, 0, 0.0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            k = min(5, logits.shape[1])
            best = logits.topk(k, dim=1).indices
            hits = best.eq(labels[:, None])
            top1 += int(hits[:, 0].sum())
            top5 += int(hits.any(dim=1).sum())
            total += len(labels)
    model.train()
    return {"val_top1": top1 / total, "val_top5": top5 / total, "val_loss": loss_sum / total}


def package_versions() -> dict:
    import importlib.metadata as md

    names = ("torch", "torchvision", "ffcv", "fvcore", "numpy", "numba", "pandas", "pyarrow")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def train(job: TrainingJob, curve_path: str, progress_stream=None) -> list[dict]:
    """Train, evaluate on schedule, and write the curve atomically at ``curve_path``."""
    import torch
    from tqdm import tqdm

    from algoprogress.architectures import build_model
    from algoprogress.loaders import train_loader, val_loader

    settings = job.settings
    torch.set_num_threads(max(1, job.threads))
    torch.manual_seed(job.seed)
    np.random.seed(job.seed)
    device = pick_device()

    train_data = train_loader(
        job.train_beton, settings["batch_size"], job.resolution, job.threads, job.seed, device,
        settings["random_resized_crop"], settings["flip"],
    )
    val_data = val_loader(job.val_beton, settings["eval_batch_size"], job.resolution, job.threads, device)
    steps_per_epoch = len(train_data)
    if steps_per_epoch == 0:
        raise ValueError(f"{job.train_beton}: fewer training images than one batch of {settings['batch_size']}")
    total_steps = max(1, round(settings["epochs"] * steps_per_epoch))
    eval_at = evaluation_steps(steps_per_epoch, total_steps, settings["evals_per_epoch"], settings["first_eval_step"])

    model = build_model(job.arch, job.num_classes, job.kwargs).to(device)
    decay, no_decay = [], []
    for parameter in model.parameters():
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": settings["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings["lr"], momentum=settings["momentum"], nesterov=settings["nesterov"] and settings["momentum"] > 0,
    )
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=settings["label_smoothing"])

    rows: list[dict] = []
    step, eval_seconds, wall_before = 0, 0.0, 0.0
    loss_since_eval, steps_since_eval = 0.0, 0
    fingerprint = job.fingerprint()
    resumed = load_checkpoint(job.checkpoint_path, fingerprint)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        torch.set_rng_state(resumed["torch_rng"])
        rows, step = resumed["rows"], resumed["step"]
        eval_seconds, wall_before = resumed["eval_seconds"], resumed["wall_seconds"]
        loss_since_eval, steps_since_eval = resumed["loss_since_eval"], resumed["steps_since_eval"]
        log.info("resumed from %s at step %d (%d evaluations)", job.checkpoint_path, step, len(rows))
    started = time.perf_counter() - wall_before
    lr = learning_rate(max(step - 1, 0), total_steps, steps_per_epoch, settings)

    last_checkpoint = time.perf_counter()

    def checkpoint(always: bool = True) -> None:
        nonlocal last_checkpoint
        if job.checkpoint_path is None:
            return
        if not always and time.perf_counter() - last_checkpoint < job.checkpoint_every_seconds:
            return
        last_checkpoint = time.perf_counter()
        save_checkpoint(job.checkpoint_path, {
            "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(), "rows": rows, "step": step, "eval_seconds": eval_seconds,
            "wall_seconds": time.perf_counter() - started, "loss_since_eval": loss_since_eval,
            "steps_since_eval": steps_since_eval,
        })

    def record(step: int) -> None:
        nonlocal eval_seconds, loss_since_eval, steps_since_eval
        eval_start = time.perf_counter()
        metrics = evaluate(model, val_data, device)
        eval_seconds += time.perf_counter() - eval_start
        images_seen = step * settings["batch_size"]
        train_flops = flops.training_flops(job.multiply_adds_per_image, images_seen)
        rows.append({
            "model": job.model_name, "arch": job.arch, "seed": job.seed, "step": step,
            "epoch": step / steps_per_epoch, "images_seen": images_seen,
            "train_flops": float(train_flops), "train_pfs_days": flops.to_petaflop_s_days(float(train_flops)),
            **metrics,
            "train_loss": loss_since_eval / steps_since_eval if steps_since_eval else float("nan"),
            "lr": lr, "wall_seconds": time.perf_counter() - started, "eval_seconds": eval_seconds,
        })
        loss_since_eval, steps_since_eval = 0.0, 0
        bar.set_postfix(top1=f"{metrics['val_top1']:.3f}", refresh=False)
        checkpoint(always=bool(terminated))

    terminated = []
    previous_handler = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    bar = tqdm(total=total_steps, initial=step, desc=f"{job.model_name} seed {job.seed}",
               file=progress_stream or sys.stderr, mininterval=2.0, ascii=True, unit="step")
    try:
        if not rows:
            record(0)
        model.train()
        epoch, skip = divmod(step, steps_per_epoch)
        while step < total_steps:
            train_data.next_epoch = epoch  # FFCV's order of an epoch depends on (seed, epoch) only
            for index, (images, labels) in enumerate(train_data):
                if index < skip:  # already trained on before the checkpoint
                    continue
                lr = learning_rate(step, total_steps, steps_per_epoch, settings)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = criterion(model(images), labels)
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(
                        f"{job.model_name} seed {job.seed}: non-finite loss {loss.item()} at step {step + 1} (lr {lr:g})"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                loss_since_eval += loss.item()
                steps_since_eval += 1
                bar.update(1)
                if step in eval_at:
                    record(step)
                elif terminated:
                    checkpoint()
                if terminated:
                    raise TrainingInterrupted(
                        f"{job.model_name} seed {job.seed}: SIGTERM at step {step}; checkpointed to "
                        f"{job.checkpoint_path}, a rerun resumes there")
                if step >= total_steps:
                    break
            epoch, skip = epoch + 1, 0
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        bar.close()

    metadata = {
        "model": job.model_name,
        "arch": job.arch,
        "seed": job.seed,
        "kwargs": job.kwargs,
        "num_classes": job.num_classes,
        "resolution": job.resolution,
        "fvcore_multiply_adds_per_image": job.multiply_adds_per_image,
        "flop_convention": flops.CONVENTION,
        "training": settings,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": job.threads,
        "versions": package_versions(),
        "resumed": resumed is not None,
    }
    curves.write_curve(curve_path, rows, metadata)
    if job.checkpoint_path is not None:
        Path(job.checkpoint_path).unlink(missing_ok=True)  # the curve is complete: nothing to resume
    return rows
