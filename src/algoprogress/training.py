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
``training.checkpoint_every_seconds``) and when it receives SIGTERM (how SLURM ends a job at its time limit
or on preemption); the previous checkpoint is kept beside it (``.prev``). A rerun resumes from the
newest readable checkpoint: the data order of every epoch is a function of (seed, epoch), so it
replays the same batches and, on CPU, produces the same curve, with no duplicate or missing
evaluation. A checkpoint made with other settings, or one that cannot be read (torn, corrupt), is
reported by path and not used.

``train`` reads on one screen; the steps it is made of are methods of ``TrainingRun``, the run's
position is a ``RunState``. Elsewhere: the schedules (``schedules``), the checkpoint file
(``checkpoints``), the torchrun process group (``distributed``), the metadata's versions and hardware
(``provenance``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from algoprogress import curves, flops, versions
from algoprogress.checkpoints import load_checkpoint, remove_checkpoints, save_checkpoint
from algoprogress.config import curve_settings
from algoprogress.distributed import Distributed
from algoprogress.provenance import hardware, package_versions, source_revision
from algoprogress.schedules import evaluation_steps, learning_rate, resolution_at_epoch

log = logging.getLogger(__name__)

# on a GPU, the host checks the loss every this many steps (``training.check_every_steps`` overrides)
CHECK_EVERY_ON_GPU = 16


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived: the state was checkpointed and the job should exit so that a retry resumes."""


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
    source_file: str | None = None  # a user model's file (a `file:` arch), resolved
    threads: int = 1
    checkpoint_path: str | None = None

    def fingerprint(self) -> dict:
        """What a checkpoint must match to be resumed: everything that determines the curve (so not the
        runtime settings: a job may resume with other workers or evaluation batches)."""
        return {"version": versions.TRAINING, "arch": self.arch, "seed": self.seed, "trial": self.trial,
                "kwargs": self.kwargs,
                "num_classes": self.num_classes, "settings": curve_settings(self.settings),
                "multiply_adds": {str(k): v for k, v in sorted(self.multiply_adds.items())}}


@dataclass
class RunState:
    """Where a run is: saved in every checkpoint (beside the model, optimizer and RNG) and resumed from."""

    step: int = 0  # optimisation steps taken
    train_flops: float = 0.0  # by the paper's convention (algoprogress.flops)
    train_flops_measured: float = 0.0  # by FlopCounterMode
    eval_flops: float = 0.0
    eval_seconds: float = 0.0
    wall_seconds: float = 0.0  # up to the last checkpoint; the live clock is TrainingRun.wall_seconds()
    loss_since_eval: float = 0.0
    steps_since_eval: int = 0
    rows: list[dict] = field(default_factory=list)  # the curve so far, one row per evaluation


def pick_device(local_rank: int = 0):
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def keep_threads(threads: int) -> None:
    """Set torch's thread count back to the job's: FFCV sets it to its worker count whenever a loader
    starts an epoch (before the first batch), and on CPU the thread count changes the summation order,
    hence the numbers; so that `workers` is a runtime setting only, it must not set torch's threads."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def evaluate(model, loader, device, autocast, dist: Distributed, threads: int = 1) -> dict:
    import torch

    model.eval()
    total, top1, top5, loss_sum = 0, 0, 0, 0.0
    with torch.no_grad(), autocast():
        for images, labels in loader:
            keep_threads(threads)
            logits = model(images).float()
            loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            k = min(5, logits.shape[1])
            hits = logits.topk(k, dim=1).indices.eq(labels[:, None])
            top1 += int(hits[:, 0].sum())
            top5 += int(hits.any(dim=1).sum())
            total += len(labels)
    model.train()
    total, top1, top5, loss_sum = dist.sum([total, top1, top5, loss_sum], device)
    return {"val_top1": top1 / total, "val_top5": top5 / total, "val_loss": loss_sum / total}


def train(job: TrainingJob, curve_path: str, progress_stream=None) -> list[dict]:
    """Train, evaluate on schedule, and write the curve atomically at ``curve_path``.

    A non-finite loss is an outcome, not a failure: the curve up to it is written with ``diverged``
    set (a retry would diverge again), and the analysis counts it as not reaching the threshold.
    """
    run = TrainingRun(job)
    state = run.state
    stopped = None
    with _sigterm_recorded() as terminated, run.progress_bar(progress_stream):
        if not state.rows:
            run.record_evaluation()
            run.checkpoint(always=False)
        for images, labels in run.batches():
            run.optimise(run.loss(images, labels))
            at_evaluation = state.step in run.eval_at
            stop = False
            if at_evaluation or state.step % run.check_every == 0 or (terminated and not run.dist.active):
                stop, non_finite_step = run.check(terminated)  # the one wait for the GPU in these steps
                if non_finite_step is not None:
                    stopped = run.divergence(non_finite_step)
                    break
            if at_evaluation:
                run.record_evaluation()
                stop = run.dist.any([terminated], run.device)[0]  # a SIGTERM during the evaluation counts now
                run.checkpoint(always=stop)
            elif stop:
                run.checkpoint()
            if stop:
                raise TrainingInterrupted(
                    f"{job.model_name} seed {job.seed}: SIGTERM at step {state.step}; checkpointed to "
                    f"{job.checkpoint_path}, a rerun resumes there")
    return run.finish(curve_path, stopped)


@contextlib.contextmanager
def _sigterm_recorded():
    """A list that receives SIGTERM instead of the default handler (which would end the process)."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


class TrainingRun:
    """One job's model, optimizer, data and ``RunState``, with the steps ``train`` is made of."""

    def __init__(self, job: TrainingJob):
        import torch

        self.job, self.settings = job, job.settings
        settings = job.settings
        self.dist = Distributed.from_environment()
        self.threads = max(1, job.threads)
        torch.set_num_threads(self.threads)
        torch.manual_seed(job.seed)
        np.random.seed(job.seed)
        self.device = pick_device(self.dist.local_rank)
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.bf16 = cuda and settings["precision"] == "bf16"
        # how often the host waits for the GPU to check the loss (and, under torchrun, SIGTERM): every step
        # on CPU, where nothing runs ahead; on a GPU every CHECK_EVERY_ON_GPU steps and before every
        # evaluation and checkpoint, so that the GPU runs ahead of Python in between
        self.check_every = settings.get("check_every_steps") or (CHECK_EVERY_ON_GPU if cuda else 1)
        self.loss_pending = None  # the summed training loss since the last check, on the device
        self.non_finite_at = None  # the first step with a non-finite loss since the last check (-1: none)
        self.recipe = settings["recipe"] or "custom"

        self._open_data()
        self.core = self._build_model()
        self.optimizer = self._build_optimizer()
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=settings["label_smoothing"])
        self.fingerprint = job.fingerprint()
        self.state = RunState()
        self.resumed = self._resume()
        self.dist.barrier()  # every process has read the checkpoint before process 0 may replace it
        self.model = self.core
        if self.dist.active:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.core, device_ids=[self.dist.local_rank] if cuda else None)
        if cuda and settings["compile"]:
            self.model = torch.compile(self.model)

        # the learning rate and resolution of the last step taken (what the next evaluation row reports)
        last = max(self.state.step - 1, 0)
        self.lr = learning_rate(last, self.total_steps, self.steps_per_epoch, settings)
        self.resolution = resolution_at_epoch(last // self.steps_per_epoch, settings)
        self.started = time.perf_counter() - self.state.wall_seconds
        self.last_checkpoint = time.perf_counter()
        self.bar = None

    # --- setup ------------------------------------------------------------------------------------
    def _open_data(self) -> None:
        from algoprogress.loaders import image_count, train_loader, val_loader

        job, settings, dist = self.job, self.settings, self.dist
        self.train_data, self.decoder = train_loader(
            job.train_beton, settings["batch_size"] // dist.world_size, resolution_at_epoch(0, settings),
            settings["workers"], job.seed, self.device, settings["random_resized_crop"], settings["flip"],
            distributed=dist.active, crop_min_scale=settings["crop_min_scale"],
        )
        val_images = image_count(job.val_beton)
        self.val_data = val_loader(
            job.val_beton, settings["eval_batch_size"], settings["eval_resolution"], settings["workers"],
            self.device, settings["eval_crop_ratio"],
            indices=np.arange(dist.rank, val_images, dist.world_size) if dist.active else None)
        self.steps_per_epoch = len(self.train_data)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{job.train_beton}: fewer training images than one batch of {settings['batch_size']}")
        self.total_steps = max(1, round(settings["epochs"] * self.steps_per_epoch))
        self.eval_at = set(evaluation_steps(self.steps_per_epoch, self.total_steps, settings["evals_per_epoch"],
                                            settings["first_eval_step"], settings.get("evals_per_doubling", 1)))
        self.eval_flops_each = (flops.FLOP_PER_MULTIPLY_ADD * job.multiply_adds[settings["eval_resolution"]]
                                * val_images)

    def _build_model(self):
        import torch

        from algoprogress.architectures import build_model

        core = build_model(self.job.arch, self.job.num_classes, self.job.kwargs, self.job.source_file)
        core = core.to(self.device)
        if self.device.type == "cuda" and self.settings["channels_last"]:
            core = core.to(memory_format=torch.channels_last)
        return core

    def _build_optimizer(self):
        """SGD or AdamW; weight decay on biases and norm parameters only if the recipe asks for it."""
        import torch

        settings = self.settings
        decay, no_decay = [], []
        for parameter in self.core.parameters():
            exempt = parameter.ndim <= 1 and not settings["weight_decay_norm_and_bias"]
            (no_decay if exempt else decay).append(parameter)
        groups = [{"params": decay, "weight_decay": settings["weight_decay"]},
                  {"params": no_decay, "weight_decay": 0.0}]
        if settings["optimizer"] == "adamw":
            return torch.optim.AdamW(groups, lr=settings["lr"], betas=(settings["momentum"], 0.999))
        return torch.optim.SGD(groups, lr=settings["lr"], momentum=settings["momentum"],
                               nesterov=settings["nesterov"] and settings["momentum"] > 0)

    def _resume(self) -> bool:
        import torch

        saved = load_checkpoint(self.job.checkpoint_path, self.fingerprint)
        if saved is None:
            return False
        self.core.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        self.state = RunState(**{f.name: saved[f.name] for f in dataclasses.fields(RunState)})
        log.info("resumed from %s at step %d (%d evaluations)", self.job.checkpoint_path, self.state.step,
                 len(self.state.rows))
        return True

    @contextlib.contextmanager
    def progress_bar(self, stream=None):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total_steps, initial=self.state.step,
                        desc=f"{self.job.model_name} seed {self.job.seed}", file=stream or sys.stderr,
                        mininterval=2.0, ascii=True, unit="step", disable=not self.dist.main_process)
        try:
            yield self.bar
        finally:
            self.bar.close()

    # --- the loop's steps -------------------------------------------------------------------------
    def autocast(self):
        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.started

    def batches(self):
        """The batches still to train on, epoch by epoch from the current step, until the budget is spent.
        A resumed run replays its epoch's order and skips the batches it had trained on."""
        epoch, skip = divmod(self.state.step, self.steps_per_epoch)
        while self.state.step < self.total_steps:
            self.resolution = resolution_at_epoch(epoch, self.settings)
            self.decoder.output_size = (self.resolution, self.resolution)  # progressive resizing, as in FFCV
            self.train_data.next_epoch = epoch  # FFCV's order of an epoch depends on (seed, epoch) only
            for index, batch in enumerate(self.train_data):
                if index < skip:
                    continue
                yield batch
                if self.state.step >= self.total_steps:
                    return
            epoch, skip = epoch + 1, 0

    def loss(self, images, labels):
        """The loss of one batch at this step's learning rate (set on the optimizer here)."""
        keep_threads(self.threads)
        self.lr = learning_rate(self.state.step, self.total_steps, self.steps_per_epoch, self.settings)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        with self.autocast():
            return self.criterion(self.model(images), labels)

    def optimise(self, loss) -> None:
        """One optimisation step, and the compute it cost. The loss is recorded on the device, with no
        wait for the GPU: summed for the curve's train_loss, and the first step whose loss is non-finite
        (``check`` reads both)."""
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        state, batch = self.state, self.settings["batch_size"]
        loss = loss.detach().float()
        self.loss_pending = loss if self.loss_pending is None else self.loss_pending + loss
        if self.non_finite_at is None:
            self.non_finite_at = torch.full((), -1, dtype=torch.int64, device=loss.device)
        self.non_finite_at = torch.where((self.non_finite_at < 0) & ~torch.isfinite(loss), state.step,
                                         self.non_finite_at)
        state.step += 1
        state.train_flops += flops.TRAINING_FLOP_PER_MULTIPLY_ADD * self.job.multiply_adds[self.resolution] * batch
        state.train_flops_measured += self.job.measured_flops[self.resolution] * batch
        state.steps_since_eval += 1
        self.bar.update(1)

    def check(self, terminated) -> tuple[bool, int | None]:
        """(stop, the 0-based index of the first step whose loss was non-finite, or None), agreed between
        the processes of a torchrun job; folds the device's loss sum into the run state."""
        bad = -1 if self.non_finite_at is None else int(self.non_finite_at)
        if self.loss_pending is not None:
            self.state.loss_since_eval += float(self.loss_pending)
        self.loss_pending = self.non_finite_at = None
        stop, diverged = self.dist.any([terminated, bad >= 0], self.device)
        if not diverged:
            return stop, None
        return stop, int(self.dist.minimum([bad if bad >= 0 else float("inf")], self.device)[0])

    def record_evaluation(self) -> None:
        """Evaluate on the validation split and append the curve's row for the current step."""
        state = self.state
        eval_start = time.perf_counter()
        metrics = evaluate(self.model, self.val_data, self.device, self.autocast, self.dist, threads=self.threads)
        state.eval_seconds += time.perf_counter() - eval_start
        state.eval_flops += self.eval_flops_each
        state.rows.append(self._curve_row(metrics))
        state.loss_since_eval, state.steps_since_eval = 0.0, 0
        self.bar.set_postfix(top1=f"{metrics['val_top1']:.3f}", refresh=False)

    def _curve_row(self, metrics: dict) -> dict:
        """One row of the curve (curves.CurveRow, as a dict for the checkpoint); ``diverged`` is known at
        the end (``finish`` sets it)."""
        job, state = self.job, self.state
        return dataclasses.asdict(curves.CurveRow(
            model=job.model_name, arch=job.arch, seed=job.seed, trial=job.trial, recipe=self.recipe,
            step=state.step, epoch=state.step / self.steps_per_epoch,
            images_seen=state.step * self.settings["batch_size"], resolution=self.resolution,
            train_flops=state.train_flops, train_pfs_days=flops.to_petaflop_s_days(state.train_flops),
            train_flops_measured=state.train_flops_measured,
            train_pfs_days_measured=flops.to_petaflop_s_days(state.train_flops_measured),
            eval_flops=state.eval_flops,
            **metrics,
            train_loss=state.loss_since_eval / state.steps_since_eval if state.steps_since_eval else float("nan"),
            lr=self.lr, wall_seconds=self.wall_seconds(), eval_seconds=state.eval_seconds,
        ))

    def checkpoint(self, always: bool = True) -> None:
        """Save the run (process 0); at evaluation points (``always=False``) at most once per
        ``checkpoint_every_seconds``."""
        job = self.job
        if job.checkpoint_path is None:
            return
        if not always and time.perf_counter() - self.last_checkpoint < self.settings["checkpoint_every_seconds"]:
            return
        self.last_checkpoint = time.perf_counter()
        if self.dist.main_process:
            import torch

            self.state.wall_seconds = self.wall_seconds()
            snapshot = {"fingerprint": self.fingerprint, "model": self.core.state_dict(),
                        "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                        **dataclasses.asdict(self.state)}
            save_checkpoint(job.checkpoint_path, snapshot)
        self.dist.barrier()

    def divergence(self, step_index: int) -> str:
        """The message of a non-finite loss (model, seed, step, learning rate), logged as a warning. The
        curve ends at its last evaluation before that step (every evaluation follows a check; the model
        after the step is not finite, so there is nothing more to evaluate), whatever ``check_every``."""
        job = self.job
        lr = learning_rate(step_index, self.total_steps, self.steps_per_epoch, self.settings)
        message = (f"{job.model_name} seed {job.seed}: non-finite loss at step {step_index + 1} (lr {lr:g}); "
                   f"the curve ends at step {self.state.rows[-1]['step']}, marked diverged")
        if self.dist.main_process:
            log.warning("%s", message)
        return message

    def finish(self, curve_path: str, stopped: str | None = None) -> list[dict]:
        """Write the curve (process 0), diverged if ``stopped`` says why; its checkpoints are then of no use."""
        rows = [{**row, "diverged": stopped is not None} for row in self.state.rows]
        if self.dist.main_process:
            curves.write_curve(curve_path, rows, self.metadata(stopped=stopped))
            remove_checkpoints(self.job.checkpoint_path)
        self.dist.barrier()
        return rows

    def metadata(self, **extra) -> dict:
        job = self.job
        return {
            "training_version": versions.TRAINING, "fingerprint": job.fingerprint(), "model": job.model_name,
            "arch": job.arch,
            "seed": job.seed, "trial": job.trial, "kwargs": job.kwargs,
            "num_classes": job.num_classes, "recipe": self.recipe,
            "fvcore_multiply_adds_per_image": {str(k): v for k, v in sorted(job.multiply_adds.items())},
            "measured_training_flops_per_image": {str(k): v for k, v in sorted(job.measured_flops.items())},
            "flop_convention": flops.CONVENTION, "training": self.settings, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps, "threads": job.threads, **hardware(self.device, self.dist),
            "versions": package_versions(), **source_revision(), "resumed": self.resumed, **extra,
        }
