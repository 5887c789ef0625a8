"""Train one architecture with one seed and record its learning curve.

Training only records; it never decides whether a threshold was reached (scoring works from the
curve alone, as AlgoPerf's does from logs). The curve has a row at step 0 (the untrained model),
at log-spaced early steps, at evenly spaced points of every epoch (at least one per epoch), and at
the last step. Each row carries the training compute so far, by the paper's convention and as
measured by torch's FlopCounterMode, at the resolution of each step (progressive resizing), and the
evaluation's own cost (seconds and FLOPs), kept apart from training compute.

Hardware: on a GPU, FFCV's pipeline ends on the device (channels-last images, normalised there),
with bf16 autocast, ``cudnn.benchmark`` and, optionally, ``torch.compile``. Several GPUs per job run
under torchrun: one process per GPU, DistributedDataParallel, FFCV's distributed order, evaluation
split exactly between the processes; process 0 alone writes checkpoints and the curve.

Checkpoints: with a checkpoint path, the job saves its whole state (model, optimizer, RNG, the
curve so far, the step, the compute so far) atomically at evaluation points (at most once per
``checkpoint_every_seconds``) and when it receives SIGTERM (how SLURM ends a job at its time limit
or on preemption); the previous checkpoint is kept beside it (``.prev``). A rerun resumes from the
newest readable checkpoint: the data order of every epoch is a function of (seed, epoch), so it
replays the same batches and, on CPU, produces the same curve, with no duplicate or missing
evaluation. A checkpoint made with other settings, or one that cannot be read (torn, corrupt), is
reported by path and not used.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from algoprogress import curves, flops
from algoprogress.config import resolution_at_epoch
from algoprogress.fileio import atomic_path

log = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[2]


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
    # linear and cosine: warm up from 0 to the peak, then decay to 0 at the end; evaluated mid-step
    warmup = min(settings["warmup_epochs"] * steps_per_epoch, total_steps)
    if kind == "cosine":
        if step + 0.5 < warmup:
            return peak * (step + 0.5) / warmup
        progress = (step + 0.5 - warmup) / max(total_steps - warmup, 1)
        return peak * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
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
    settings: dict  # resolved training settings (resolutions filled in)
    multiply_adds: dict[int, int]  # fvcore forward multiply-adds per image, by resolution
    measured_flops: dict[int, float]  # FlopCounterMode training FLOPs per image, by resolution
    kwargs: dict
    trial: str = "base"  # the trial of the model's sweep (algoprogress.sweeps)
    threads: int = 1
    checkpoint_path: str | None = None
    # at evaluation points, checkpoint only if this long has passed since the last one (SIGTERM always
    # checkpoints): a large model's state is hundreds of MB, and a SIGKILL then loses at most this much
    checkpoint_every_seconds: float = 60.0
    # where the curve so far goes when training stops on a non-finite loss (not the job's output)
    failed_curve_path: str | None = None
    # test hooks: name -> callable, called at "evaluating" (mid-evaluation) and "checkpoint-written"
    # (the new checkpoint is on disk under its temporary name, not yet renamed)
    hooks: dict = field(default_factory=dict)

    def fingerprint(self) -> dict:
        """What a checkpoint must match to be resumed: everything that determines the curve."""
        return {"arch": self.arch, "seed": self.seed, "kwargs": self.kwargs, "num_classes": self.num_classes,
                "settings": self.settings,
                "multiply_adds": {str(k): v for k, v in sorted(self.multiply_adds.items())}}

    def hook(self, name: str) -> None:
        if name in self.hooks:
            self.hooks[name]()


def state_digest(value, digest=None) -> str:
    """SHA-256 over a checkpoint's contents (tensors by their bytes): torch.load does not notice a
    flipped byte inside tensor data, so a checkpoint carries this and is checked against it."""
    import hashlib

    import torch

    top = digest is None
    digest = digest or hashlib.sha256()
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(f"<{key!r}>".encode())
            state_digest(value[key], digest)
    elif isinstance(value, (list, tuple)):
        digest.update(f"[{len(value)}".encode())
        for item in value:
            state_digest(item, digest)
    elif isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{flat.dtype}{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    else:
        digest.update(repr(value).encode())
    return digest.hexdigest() if top else ""


def previous_checkpoint(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".prev")


def save_checkpoint(path: str | Path, state: dict, on_written=None) -> None:
    """Write atomically; the checkpoint it replaces is kept as ``<path>.prev``."""
    import torch

    path = Path(path)
    state = {**state, "digest": state_digest(state)}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
        if on_written is not None:
            on_written()
        if path.exists():
            os.replace(path, previous_checkpoint(path))


def _read_checkpoint(path: Path, fingerprint: dict) -> dict | None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or corrupt file: any unpickling error means "not usable"
        log.warning("%s: unreadable checkpoint (%s: %s); not used", path, type(error).__name__,
                    str(error).splitlines()[0][:200] if str(error) else "")
        return None
    if not isinstance(state, dict) or "digest" not in state:
        log.warning("%s: not a checkpoint of this tool; not used", path)
        return None
    saved = state.pop("digest")
    if state_digest(state) != saved:
        log.warning("%s: corrupt checkpoint (content hash differs from the one saved with it); not used", path)
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning("%s: checkpoint of other settings; not used", path)
        return None
    return state


def load_checkpoint(path: str | Path | None, fingerprint: dict) -> dict | None:
    """The newest readable checkpoint of the same job (``path``, else ``path.prev``), or None."""
    if path is None:
        return None
    for stale in Path(path).parent.glob(f".{Path(path).name}.partial-*"):  # left by a job killed mid-write
        stale.unlink(missing_ok=True)
    for candidate in (Path(path), previous_checkpoint(path)):
        if candidate.exists():
            state = _read_checkpoint(candidate, fingerprint)
            if state is not None:
                return state
    return None


def remove_checkpoints(path: str | Path | None) -> None:
    if path is not None:
        for candidate in (Path(path), previous_checkpoint(path)):
            candidate.unlink(missing_ok=True)


def pick_device(local_rank: int = 0):
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls) -> Distributed:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls()
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))

    def sum(self, values, device) -> list[float]:
        if not self.active:
            return list(values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flags, device) -> list[bool]:
        return [total > 0 for total in self.sum([float(bool(f)) for f in flags], device)]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()


def evaluate(model, loader, device, autocast, dist: Distributed, on_batch=None) -> dict:
    import torch

    model.eval()
    total, top1, top5, loss_sum = 0, 0, 0, 0.0
    with torch.no_grad(), autocast():
        for index, (images, labels) in enumerate(loader):
            logits = model(images).float()
            loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            k = min(5, logits.shape[1])
            hits = logits.topk(k, dim=1).indices.eq(labels[:, None])
            top1 += int(hits[:, 0].sum())
            top5 += int(hits.any(dim=1).sum())
            total += len(labels)
            if index == 0 and on_batch is not None:
                on_batch()
    model.train()
    total, top1, top5, loss_sum = dist.sum([total, top1, top5, loss_sum], device)
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


def source_revision() -> dict:
    """The git commit of the workflow's code, and whether it had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPOSITORY), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def hardware(device, dist: Distributed) -> dict:
    import torch

    if device.type == "cuda":
        return {"device": "cuda", "gpu_model": torch.cuda.get_device_name(device), "gpus": dist.world_size,
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    return {"device": "cpu", "cpu": platform.processor() or platform.machine(), "gpus": 0,
            "processes": dist.world_size}


def train(job: TrainingJob, curve_path: str, progress_stream=None) -> list[dict]:
    """Train, evaluate on schedule, and write the curve atomically at ``curve_path``."""
    import torch
    from tqdm import tqdm

    from algoprogress.architectures import build_model
    from algoprogress.loaders import train_loader, val_loader

    settings = job.settings
    dist = Distributed.from_environment()
    main_process = dist.rank == 0
    torch.set_num_threads(max(1, job.threads))
    torch.manual_seed(job.seed)
    np.random.seed(job.seed)
    device = pick_device(dist.local_rank)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    bf16 = cuda and settings["precision"] == "bf16"

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    batch_per_process = settings["batch_size"] // dist.world_size
    train_data, decoder = train_loader(
        job.train_beton, batch_per_process, resolution_at_epoch(0, settings), settings["workers"], job.seed,
        device, settings["random_resized_crop"], settings["flip"], distributed=dist.active,
        crop_min_scale=settings["crop_min_scale"],
    )
    val_images = _image_count(job.val_beton)
    val_data = val_loader(job.val_beton, settings["eval_batch_size"], settings["eval_resolution"],
                          settings["workers"], device, settings["eval_crop_ratio"],
                          indices=np.arange(dist.rank, val_images, dist.world_size) if dist.active else None)
    steps_per_epoch = len(train_data)
    if steps_per_epoch == 0:
        raise ValueError(f"{job.train_beton}: fewer training images than one batch of {settings['batch_size']}")
    total_steps = max(1, round(settings["epochs"] * steps_per_epoch))
    eval_at = evaluation_steps(steps_per_epoch, total_steps, settings["evals_per_epoch"], settings["first_eval_step"])
    eval_flops_each = flops.FLOP_PER_MULTIPLY_ADD * job.multiply_adds[settings["eval_resolution"]] * val_images

    core = build_model(job.arch, job.num_classes, job.kwargs).to(device)
    if cuda and settings["channels_last"]:
        core = core.to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for parameter in core.parameters():
        (no_decay if parameter.ndim <= 1 and not settings["weight_decay_norm_and_bias"] else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": settings["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if settings["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=settings["lr"], betas=(settings["momentum"], 0.999))
    else:
        optimizer = torch.optim.SGD(groups, lr=settings["lr"], momentum=settings["momentum"],
                                    nesterov=settings["nesterov"] and settings["momentum"] > 0)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=settings["label_smoothing"])

    rows: list[dict] = []
    state = {"step": 0, "eval_seconds": 0.0, "wall_seconds": 0.0, "loss_since_eval": 0.0, "steps_since_eval": 0,
             "train_flops": 0.0, "train_flops_measured": 0.0, "eval_flops": 0.0}
    fingerprint = job.fingerprint()
    resumed = load_checkpoint(job.checkpoint_path, fingerprint)
    if resumed is not None:
        core.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        torch.set_rng_state(resumed["torch_rng"])
        rows = resumed["rows"]
        state.update({key: resumed[key] for key in state})
        log.info("resumed from %s at step %d (%d evaluations)", job.checkpoint_path, state["step"], len(rows))
    dist.barrier()  # every process has read the checkpoint before process 0 may replace it

    model = core
    if dist.active:
        model = torch.nn.parallel.DistributedDataParallel(core, device_ids=[dist.local_rank] if cuda else None)
    if cuda and settings["compile"]:
        model = torch.compile(model)

    step = state["step"]
    started = time.perf_counter() - state["wall_seconds"]
    lr = learning_rate(max(step - 1, 0), total_steps, steps_per_epoch, settings)
    resolution = resolution_at_epoch(max(step - 1, 0) // steps_per_epoch, settings)
    last_checkpoint = time.perf_counter()
    recipe = settings["recipe"] or "custom"

    def snapshot() -> dict:
        return {"fingerprint": fingerprint, "model": core.state_dict(), "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(), "rows": rows,
                **state, "step": step, "wall_seconds": time.perf_counter() - started}

    def checkpoint(always: bool = True) -> None:
        nonlocal last_checkpoint
        if job.checkpoint_path is None:
            return
        if not always and time.perf_counter() - last_checkpoint < job.checkpoint_every_seconds:
            return
        last_checkpoint = time.perf_counter()
        if main_process:
            save_checkpoint(job.checkpoint_path, snapshot(), on_written=lambda: job.hook("checkpoint-written"))
        dist.barrier()

    def record() -> None:
        eval_start = time.perf_counter()
        metrics = evaluate(model, val_data, device, autocast, dist, on_batch=lambda: job.hook("evaluating"))
        state["eval_seconds"] += time.perf_counter() - eval_start
        state["eval_flops"] += eval_flops_each
        rows.append({
            "model": job.model_name, "arch": job.arch, "seed": job.seed, "step": step,
            "epoch": step / steps_per_epoch, "images_seen": step * settings["batch_size"],
            "recipe": recipe, "resolution": resolution,
            "train_flops": state["train_flops"], "train_pfs_days": flops.to_petaflop_s_days(state["train_flops"]),
            "train_flops_measured": state["train_flops_measured"],
            "train_pfs_days_measured": flops.to_petaflop_s_days(state["train_flops_measured"]),
            "eval_flops": state["eval_flops"],
            **metrics,
            "train_loss": state["loss_since_eval"] / state["steps_since_eval"] if state["steps_since_eval"]
            else float("nan"),
            "lr": lr, "wall_seconds": time.perf_counter() - started, "eval_seconds": state["eval_seconds"],
        })
        state["loss_since_eval"], state["steps_since_eval"] = 0.0, 0
        bar.set_postfix(top1=f"{metrics['val_top1']:.3f}", refresh=False)

    def metadata(**extra) -> dict:
        return {
            "model": job.model_name, "arch": job.arch, "seed": job.seed, "kwargs": job.kwargs,
            "num_classes": job.num_classes, "recipe": recipe,
            "fvcore_multiply_adds_per_image": {str(k): v for k, v in sorted(job.multiply_adds.items())},
            "measured_training_flops_per_image": {str(k): v for k, v in sorted(job.measured_flops.items())},
            "flop_convention": flops.CONVENTION, "training": settings, "steps_per_epoch": steps_per_epoch,
            "total_steps": total_steps, "threads": job.threads, **hardware(device, dist),
            "versions": package_versions(), **source_revision(), "resumed": resumed is not None, **extra,
        }

    terminated: list[int] = []
    previous_handler = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    bar = tqdm(total=total_steps, initial=step, desc=f"{job.model_name} seed {job.seed}",
               file=progress_stream or sys.stderr, mininterval=2.0, ascii=True, unit="step",
               disable=not main_process)
    try:
        if not rows:
            record()
            checkpoint(always=False)
        model.train()
        epoch, skip = divmod(step, steps_per_epoch)
        while step < total_steps:
            resolution = resolution_at_epoch(epoch, settings)
            decoder.output_size = (resolution, resolution)  # progressive resizing, as in FFCV's example
            train_data.next_epoch = epoch  # FFCV's order of an epoch depends on (seed, epoch) only
            for index, (images, labels) in enumerate(train_data):
                if index < skip:  # already trained on before the checkpoint
                    continue
                lr = learning_rate(step, total_steps, steps_per_epoch, settings)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with autocast():
                    loss = criterion(model(images), labels)
                stop, diverged = dist.any([terminated, not torch.isfinite(loss)], device)
                if diverged:
                    message = (f"{job.model_name} seed {job.seed}: non-finite loss {loss.item()} at step {step + 1} "
                               f"(lr {lr:g})")
                    if main_process and job.failed_curve_path and rows:
                        curves.write_curve(job.failed_curve_path, rows, metadata(stopped=message))
                        message += f"; the curve so far is in {job.failed_curve_path}"
                    raise NonFiniteLossError(message)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                state["train_flops"] += (flops.TRAINING_FLOP_PER_MULTIPLY_ADD * job.multiply_adds[resolution]
                                         * settings["batch_size"])
                state["train_flops_measured"] += job.measured_flops[resolution] * settings["batch_size"]
                state["loss_since_eval"] += loss.item()
                state["steps_since_eval"] += 1
                bar.update(1)
                if step in eval_at:
                    record()
                    stop = dist.any([terminated], device)[0]  # a SIGTERM during the evaluation counts now
                    checkpoint(always=stop)
                elif stop:
                    checkpoint()
                if stop:
                    raise TrainingInterrupted(
                        f"{job.model_name} seed {job.seed}: SIGTERM at step {step}; checkpointed to "
                        f"{job.checkpoint_path}, a rerun resumes there")
                if step >= total_steps:
                    break
            epoch, skip = epoch + 1, 0
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        bar.close()

    if main_process:
        curves.write_curve(curve_path, rows, metadata())
        remove_checkpoints(job.checkpoint_path)  # the curve is complete: nothing to resume
    dist.barrier()
    return rows


def _image_count(beton: str) -> int:
    from ffcv.reader import Reader

    return int(Reader(str(beton)).num_samples)
