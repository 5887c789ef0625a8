"""Benchmark: wall time of the whole bundled experiment (`make run`'s Snakemake call), per stage.

Runs the workflow from an empty results folder in a scratch directory, then reads Snakemake's
per-job benchmark files and prints Markdown tables with the machine, versions and date (to add as a row of
docs/timing.md), also to ``--out`` where given.

    .venv/bin/python bench/make_run_timing.py [--cores N] [--out FILE] [--configfile FILE]

The goal: at most 10 minutes on a 2-core machine without GPU.
"""

import argparse
import datetime as dt
import glob
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, not installed

from algoprogress.provenance import cpu_model

REPO = Path(__file__).resolve().parents[1]


def versions() -> str:
    import importlib.metadata as md

    names = ["snakemake", "torch", "torchvision", "ffcv", "fvcore", "numpy", "numba", "statsmodels"]
    return ", ".join(f"{n} {md.version(n)}" for n in names)


def fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", default=str(os.cpu_count()))
    parser.add_argument("--configfile", default=None, help="extra config (default: the bundled one only)")
    parser.add_argument("--out", help="also write the tables to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="algoprogress-bench-"))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", args.cores]
    if args.configfile:
        command += ["--configfile", args.configfile]
    started = time.perf_counter()
    finished = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if finished.returncode != 0:
        sys.exit(f"the workflow failed (exit {finished.returncode}) in {workdir}:\n{finished.stderr[-4000:]}")
    total = time.perf_counter() - started

    rows = []
    for path in sorted(glob.glob(str(workdir / "results" / "benchmarks" / "**" / "*.tsv"), recursive=True)):
        job = Path(path).relative_to(workdir / "results" / "benchmarks").with_suffix("")
        stage = job.parts[0]
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        rows.append({"stage": stage, "job": str(job), "seconds": seconds})
    jobs = pd.DataFrame(rows)
    stages = jobs.groupby("stage", sort=False)["seconds"].agg(["count", "sum"]).reset_index()
    trend = pd.read_json(workdir / "results" / "trend.json", typ="series")
    thresholds = pd.read_csv(workdir / "results" / "thresholds.csv")

    lines = [
        "# Timing of `make run` (the bundled experiment)",
        "",
        f"Measured by `bench/make_run_timing.py` on {dt.date.today().isoformat()}: one run from an empty",
        "results folder, set-up excluded; per-job seconds from Snakemake's `benchmark:` files.",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu_model()}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, no GPU used"
        if not _cuda() else f"- Machine: {os.cpu_count()} cores ({cpu_model()}), GPU {_cuda()}",
        f"- Python {platform.python_version()}; {versions()}",
        f"- `snakemake --cores {args.cores}`" + (f" --configfile {args.configfile}" if args.configfile else ""),
        "",
        f"**Total wall time: {total:.0f} s ({total / 60:.1f} min)**; goal: at most 600 s on 2 cores.",
        "",
        "| stage | jobs | seconds (sum over jobs) |",
        "|---|---:|---:|",
        *[f"| {r.stage} | {r.count} | {r.sum:.1f} |" for r in stages.itertuples()],
        "",
        "| job | seconds |",
        "|---|---:|",
        *[f"| {r.job} | {r.seconds:.1f} |" for r in jobs.itertuples()],
        "",
        "Result of that run (the headline: "
        f"{trend['headline']['threshold']}, {trend['headline']['set']}, window {trend['headline']['window']}): "
        f"doubling time {fmt(trend['doubling_time_months'])} months (published interval "
        f"{fmt(trend['interval']['doubling_time_months_low'])}-{fmt(trend['interval']['doubling_time_months_high'])}"
        f", OLS "
        f"{fmt(trend['doubling_time_months_low'])}-{fmt(trend['doubling_time_months_high'])}, bootstrap "
        f"{fmt(trend['bootstrap']['doubling_time_months_low'])}-"
        f"{fmt(trend['bootstrap']['doubling_time_months_high'])}), "
        f"n = {trend['n']}, R² = {fmt(trend.get('r_squared'), '.2f')}, efficiency factor "
        f"{trend['reference_model']} → {trend.get('best_model')}: {fmt(trend.get('efficiency_factor'))}x (the "
        f"trend's {fmt(trend['interval']['efficiency_factor_trend'])}x, "
        f"{fmt(trend['interval']['efficiency_factor_low'])}-{fmt(trend['interval']['efficiency_factor_high'])}); "
        "curves that reached each threshold: "
        + ", ".join(f"{name} {int(group['reached'].sum())} of {len(group)}"
                    for name, group in thresholds.groupby("threshold_name", sort=False)) + ".",
        "",
    ]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


def _cuda() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    except Exception:
        return ""


if __name__ == "__main__":
    main()
