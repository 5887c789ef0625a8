"""Helpers shared by the stage scripts in workflow/scripts (each is also a standalone CLI)."""

from __future__ import annotations

import logging
import os
import platform
import sys


def log_to(path: str | None) -> None:
    """Send stderr (progress bars, warnings, tracebacks) and logging to the rule's log file.

    A rule's log starts with where the job ran: the host and, under SLURM, the job id. Without a
    path (a stage run by hand) stderr stays the terminal.
    """
    if path:
        sys.stderr = open(path, "w", buffering=1)  # noqa: SIM115 - stays open for the job's lifetime
        where = f"host {platform.node()}"
        if os.environ.get("SLURM_JOB_ID"):
            where += f", SLURM job {os.environ['SLURM_JOB_ID']}"
        print(f"running on {where}", file=sys.stderr)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)


def fail(message: str) -> None:
    """End a stage with one line on stderr (and in the log) and a non-zero exit status."""
    print(f"error: {message}", file=sys.stderr)
    if sys.stderr is not sys.__stderr__:
        print(f"error: {message}", file=sys.__stderr__)
    raise SystemExit(1)


def config_or_fail(path: str) -> dict:
    """The validated config at ``path``, or the stage ends with the one-line config error."""
    from algoprogress.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as error:
        fail(str(error))
