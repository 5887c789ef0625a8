"""Repair damaged results, so that the next run of the workflow redoes exactly what was damaged.

The workflow refuses to start while a finished curve or a data file is damaged, and names this
command (a training job that finds its data damaged does the same). It:
  - moves each curve under results/curves that is unreadable or differs from the hash saved with its
    rows aside (`<name>.corrupt`): the next run retrains exactly those curves and redoes the analysis;
  - rewrites each .beton that is missing or differs from the manifest's size or SHA-256, as
    prepare_data wrote it (the settings the manifest records; the same images, split and labels,
    checked against the manifest): the next run retrains no finished curve.
Run it where the workflow runs (Snakemake's working directory), while no run is under way:
    python workflow/scripts/repair.py                  # or `make repair`
    python workflow/scripts/repair.py --directory /scratch/my-run
"""

import argparse
import os
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import fail, log_to
from algoprogress.data import DataError
from algoprogress.integrity import repair


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", default=".",
                        help="the run's working directory, holding results/ (Snakemake's --directory; "
                             "default: here)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes that decode and write images when a data file is rewritten "
                             "(default: one per core)")
    args = parser.parse_args(argv)
    log_to(None)
    try:
        os.chdir(args.directory)
    except OSError as error:
        fail(f"--directory: {args.directory}: {error.strerror}")
    try:
        done = repair(args.workers)
    except DataError as error:
        fail(str(error))
    except OSError as error:  # e.g. no space left: every rewrite is atomic, the damaged file stays
        fail(f"{error.filename}: {error.strerror or error}; run the repair again")
    for line in done:
        print(line, file=sys.stderr)
    print(f"repaired {len(done)} file(s)" if done else "nothing to repair", file=sys.stderr)


if __name__ == "__main__":
    main()
