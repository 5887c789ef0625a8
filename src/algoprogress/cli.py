"""Helpers shared by the stage scripts in workflow/scripts (each is also a standalone CLI)."""

from __future__ import annotations

import logging
import sys


def log_to(path: str | None) -> None:
    """Send stderr (progress bars, warnings, tracebacks) and logging to the rule's log file."""
    if path:
        sys.stderr = open(path, "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)


def fail(message: str) -> None:
    """End a stage with one line on stderr (and in the log) and a non-zero exit status."""
    print(f"error: {message}", file=sys.stderr)
    if sys.stderr is not sys.__stderr__:
        print(f"error: {message}", file=sys.__stderr__)
    raise SystemExit(1)
