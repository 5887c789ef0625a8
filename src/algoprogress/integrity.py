"""Damaged results: found by checks that only read, repaired by one explicit command.

Finding: when the workflow is parsed, ``problems`` reads every finished curve (its rows against the
hash saved with them) and the data files (present, of the size the manifest lists); the run stops
with one line per damaged file naming the command that repairs it. A training job checks its data's
SHA-256 before it trains and stops the same way. Nothing is moved, deleted or created then.

Repairing: ``repair`` (workflow/scripts/repair.py, ``make repair``) sets each damaged curve aside as
``<name>.corrupt``, so that the next run retrains exactly those curves (Snakemake then reruns the
analysis that reads them), and rewrites each damaged data file as prepare_data wrote it, so that no
finished curve is retrained.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from algoprogress.curves import corrupt_curves
from algoprogress.data import damaged_data_files, rewrite_damaged_data

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


def data_problem(problem: str, command: str) -> str:
    return (f"{problem}; run `{command}` to rewrite it as prepare_data wrote it, then rerun: "
            "no finished curve is retrained")


def problems(curve_paths, command: str, manifest_path: str | Path = MANIFEST) -> list[str]:
    """One line per damaged curve among ``curve_paths`` or damaged data file, each naming the file,
    what is wrong and ``command``, the command that repairs it. Reads only."""
    lines = [curve_problem(problem, command) for problem in corrupt_curves(curve_paths).values()]
    return lines + [data_problem(f"{path}: {problem}", command)
                    for path, problem in damaged_data_files(manifest_path).items()]


def repair(workers: int = 1) -> list[str]:
    """Repair the results under the current directory's ``results/``; one line per file repaired.

    Every curve file under results/curves that cannot be trusted is moved to ``<name>.corrupt`` (the
    next run retrains it and, since its input is then new, reruns the analysis); every data file that
    is missing or differs from the manifest's size or SHA-256 is rewritten (``rewrite_damaged_data``).
    Run it while no workflow runs in this directory.
    """
    done = []
    for path, problem in corrupt_curves(sorted(CURVES.rglob("*.parquet"))).items():
        os.replace(path, f"{path}.corrupt")
        done.append(f"{problem}; moved to {path}.corrupt, the next run retrains it")
    for path, problem in rewrite_damaged_data(MANIFEST, workers).items():
        done.append(f"{path}: {problem}; rewritten as prepare_data wrote it")
    return done
