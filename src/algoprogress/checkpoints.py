"""The checkpoint file: a dict saved with torch.save, carrying a SHA-256 of its own contents.

A checkpoint is written atomically and the one it replaces is kept beside it (``<path>.prev``), so a
job killed mid-write still has a whole one. Reading checks, in order: that torch can load it with
``weights_only=True`` (no code runs), that its digest matches its contents, and that its
``fingerprint`` (everything that determines the curve) matches the job's; a checkpoint failing any
check is reported by path and not used.

A checkpoint has one writer at a time (``sole_writer``): a job holds a lock beside it while it trains, so a second
job for the same curve waits until the first has exited and then resumes from what it left.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from algoprogress.fileio import atomic_path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def sole_writer(checkpoint_path: str | Path | None):
    """Hold an exclusive lock on ``<checkpoint>.lock`` while the job runs (nothing where there is no checkpoint).

    Two jobs may train the same curve: a SLURM job resubmitted (a retry after a preemption, a time limit, a requeue,
    or a rerun after Snakemake itself died) while the first still runs or checkpoints during its KillWait; a rerun
    while a job of a killed Snakemake still runs as an orphan. The second waits here until the first has exited,
    then loads the newest checkpoint it left: a checkpoint never has two writers. ``flock`` locks are released by
    the kernel when their holder dies, SIGKILL included (on NFS, Linux takes them as POSIX locks, which the server
    keeps). The lock file stays (unlinking a lock file that another job may be waiting on would let a third take a
    second lock). Yields whether it had to wait."""
    if checkpoint_path is None:
        yield False
        return
    path = Path(f"{checkpoint_path}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s: another job still writes this checkpoint (an earlier submission of this job, still "
                        "running or checkpointing); waiting until it has exited, then resuming from it", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield True
            return
        yield False


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


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write atomically; the checkpoint it replaces is kept as ``<path>.prev``."""
    import torch

    path = Path(path)
    state = {**state, "digest": state_digest(state)}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
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
