"""Damaged results: found by checks that only read, repaired by one explicit command.

Finding: when the workflow is parsed (in the small Snakemake environment, envs/snakemake.yaml: nothing here imports
a library), ``problems`` checks that every finished curve is a whole Parquet file (its frame: the magic bytes at
both ends and a footer that fits; a truncated or overwritten file fails) and that the data files are present and of
the size the manifest lists; the run stops with one line per damaged file naming the command that repairs it. The
jobs that read a curve check its rows against the hash saved with them (``curves.read_curve``), and a training job
checks its data's SHA-256 before it trains; either stops the same way. Nothing is moved, deleted or created then.

Repairing: ``repair`` (workflow/scripts/repair.py, ``make repair``) sets each damaged curve aside as
``<name>.corrupt`` (by the full check, the rows' hash included), so that the next run retrains exactly those curves
(Snakemake then reruns the analysis that reads them), and rewrites each damaged data file as prepare_data wrote it,
so that no finished curve is retrained.
"""

from __future__ import annotations

import os
import shlex
import struct
from pathlib import Path

from algoprogress.datafiles import damaged_data_files

RESULTS = Path("results")
CURVES = RESULTS / "curves"
MANIFEST = RESULTS / "data" / "manifest.json"


def repair_command(workflow_dir: str | Path, directory: str | Path) -> str:
    """The command that repairs the results of a run of the workflow at ``workflow_dir`` in
    ``directory`` (Snakemake's working directory): `make repair` in the workflow's own folder."""
    workflow_dir, directory = Path(workflow_dir).resolve(), Path(directory).resolve()
    if directory == workflow_dir:
        return "make repair"
    script = workflow_dir / "workflow" / "scripts" / "repair.py"
    return f"python {shlex.quote(str(script))} --directory {shlex.quote(str(directory))}"


def curve_problem(problem: str, command: str) -> str:
    return f"{problem}; run `{command}` to set it aside, then rerun: only it is retrained"


def repair_command_here() -> str:
    """``repair_command`` for a job of the workflow in this package's checkout, run in Snakemake's working
    directory."""
    return repair_command(Path(__file__).resolve().parents[2], os.getcwd())


def curve_problem_in_job(problem: str) -> str:
    """``curve_problem`` for a job (the jobs that read curves stop with it)."""
    return curve_problem(problem, repair_command_here())


def data_problem(problem: str, command: str) -> str:
    return (f"{problem}; run `{command}` to rewrite it as prepare_data wrote it, then rerun: "
            "no finished curve is retrained")


PARQUET_MAGIC = b"PAR1"


def parquet_frame_problem(path: str | Path) -> str | None:
    """What is wrong with the frame of the Parquet file at ``path`` ("PAR1", the data, the footer, the footer's
    length as 4 little-endian bytes, "PAR1"), or None where it is whole. Reads 8 bytes at each end."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        head = file.read(4)
        file.seek(max(size - 8, 0))
        tail = file.read(8)
    if size < 12 or head != PARQUET_MAGIC or tail[4:] != PARQUET_MAGIC:
        return f"{path}: unreadable curve (not a whole Parquet file: {size} bytes, truncated or overwritten)"
    if struct.unpack("<I", tail[:4])[0] > size - 12:
        return f"{path}: unreadable curve (its Parquet footer is longer than the file: truncated)"
    return None


def problems(curve_paths, command: str, manifest_path: str | Path = MANIFEST) -> list[str]:
    """One line per damaged curve among ``curve_paths`` (``parquet_frame_problem``) or damaged data file, each
    naming the file, what is wrong and ``command``, the command that repairs it. Reads only."""
    found = (parquet_frame_problem(path) for path in curve_paths if os.path.exists(path))
    lines = [curve_problem(problem, command) for problem in found if problem]
    return lines + [data_problem(f"{path}: {problem}", command)
                    for path, problem in damaged_data_files(manifest_path).items()]


def repair(workers: int = 1) -> list[str]:
    """Repair the results under the current directory's ``results/``; one line per file repaired.

    Every curve file under results/curves that cannot be trusted is moved to ``<name>.corrupt`` (the
    next run retrains it and, since its input is then new, reruns the analysis); every data file that
    is missing or differs from the manifest's size or SHA-256 is rewritten (``rewrite_damaged_data``).
    Run it while no workflow runs in this directory.
    """
    from algoprogress.curves import corrupt_curves  # pandas and pyarrow: the repair runs in the training environment
    from algoprogress.data import rewrite_damaged_data

    done = []
    for path, problem in corrupt_curves(sorted(CURVES.rglob("*.parquet"))).items():
        os.replace(path, f"{path}.corrupt")
        done.append(f"{problem}; moved to {path}.corrupt, the next run retrains it")
    for path, problem in rewrite_damaged_data(MANIFEST, workers).items():
        done.append(f"{path}: {problem}; rewritten as prepare_data wrote it")
    return done
