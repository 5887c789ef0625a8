"""Helpers shared by the stage scripts in workflow/scripts (each is also a standalone CLI).

A stage script holds its docstring (with its CLI usage), its ``run()``, and how its inputs map: from
its Snakemake job (``input``, ``output``, ``params``, ...) and from its command line. ``entry`` does
the rest, the same way for every stage.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from collections.abc import Callable
from typing import Any


def log_to(path: str | None) -> None:
    """Send stderr (progress bars, warnings, tracebacks) and logging to the rule's log file.

    A rule's log starts with where the job ran: the host and, under SLURM, the job id. Without a
    path (a stage run by hand) stderr stays the terminal.
    """
    if path:
        sys.stderr = open(path, "w", buffering=1)  # stays open for the job's lifetime
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


def entry(run: Callable[..., None], doc: str, arguments: Callable[[argparse.ArgumentParser], None],
          from_args: Callable[[argparse.Namespace], dict], from_snakemake: Callable[[Any], dict] | None = None,
          snakemake: Any = None, argv: list[str] | None = None) -> None:
    """Run a stage: as Snakemake's ``script:`` (``snakemake`` is the object it injects) or by hand.

    Either way the log is set up first (``log_to``), then ``run`` gets the keyword arguments that
    ``from_snakemake(snakemake)`` or ``from_args(parsed command line)`` build: the same names, taken from
    the job or derived by the algoprogress.config functions that rules/common.smk also calls.
    ``arguments`` adds the stage's flags to a parser whose ``--help`` shows ``doc``.
    """
    if snakemake is not None:
        log_to(snakemake.log[0])
        inputs = from_snakemake(snakemake)
    else:
        parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        arguments(parser)
        args = parser.parse_args(argv)
        log_to(None)
        inputs = from_args(args)
    run(**inputs)
