"""Give each training job GPUs of its own on a machine that Snakemake's local executor schedules.

Snakemake's local executor limits how many jobs request a ``gpu`` at once but never says which GPU
a job should use (it does not set CUDA_VISIBLE_DEVICES). Each training job therefore claims GPUs
itself: it takes an exclusive ``fcntl`` lock on one file per GPU (so claims by concurrent jobs, or
by concurrent Snakemake runs, never overlap), sets CUDA_VISIBLE_DEVICES to the GPUs it holds, and
releases them when it ends; the kernel releases the locks of a killed job. Under SLURM the job's
allocation already isolates its GPUs, so nothing is locked there.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = "/tmp/algoprogress-gpu-locks"


def machine_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES if set, else every GPU nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [entry.strip() for entry in visible.split(",") if entry.strip() and entry.strip() != "-1"]
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines() if line.strip()]


def count_machine_gpus() -> int:
    return len(machine_gpus())


@contextlib.contextmanager
def claim(count: int, available: list[str] | None = None, lock_dir: str | Path | None = None,
          poll_seconds: float = 5.0):
    """Hold ``count`` GPUs exclusively for the block; yield their ids (empty on a machine without GPUs).

    Sets CUDA_VISIBLE_DEVICES to the ids held for the block (restored after), so that CUDA (and
    torchrun's workers) see only them.
    Waits while fewer than ``count`` are free.
    """
    available = machine_gpus() if available is None else list(available)
    if not available or os.environ.get("SLURM_JOB_ID"):
        yield available[:count]
        return
    if count > len(available):
        raise RuntimeError(f"the job needs {count} GPUs and this machine has {len(available)}")
    lock_dir = Path(lock_dir or os.environ.get("ALGOPROGRESS_GPU_LOCK_DIR", DEFAULT_LOCK_DIR))
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[tuple[str, int]] = []
    waited = False
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        while len(held) < count:
            for gpu in available:
                if len(held) == count or any(gpu == g for g, _ in held):
                    continue
                descriptor = os.open(lock_dir / f"gpu-{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(descriptor)
                    continue
                held.append((gpu, descriptor))
            if len(held) < count:  # release what was taken, so that two waiting jobs never deadlock
                for _, descriptor in held:
                    os.close(descriptor)
                held.clear()
                if not waited:
                    log.info("waiting for %d free GPU(s) of %s", count - len(held), ",".join(available))
                    waited = True
                time.sleep(poll_seconds)
        ids = [gpu for gpu, _ in held]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        log.info("using GPU(s) %s", ",".join(ids))
        yield ids
    finally:
        for _, descriptor in held:
            os.close(descriptor)  # closing releases the lock
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
