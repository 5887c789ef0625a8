"""Small file helpers: writes that are all-or-nothing, and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final: str | Path):
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds.

    A crash, a kill or a full disk leaves either the old file or none at ``final``, never a torn
    one; the temporary file is removed on failure.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.partial-{os.getpid()}")
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_json(path: str | Path, data) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path):
    with open(path) as handle:
        return json.load(handle)


def sha256_of_file(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def write_csv(path: str | Path, frame) -> None:
    """A pandas table as CSV (no index), written all-or-nothing."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)
