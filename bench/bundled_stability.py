"""Benchmark: does the bundled experiment give the same answer whatever the seed and the thread count?

Runs the whole workflow (the bundled `config/config.yaml`) once per seed and per thread count of the
training jobs (`training.workers`, which sets the job's threads), each from an empty results folder in a
scratch directory, and records each run's headline: doubling time with its intervals, efficiency factor,
the reference's resolved level, whether the reference reaches it and stays at or above it after its
crossing, and each model's winning trial. Writes a Markdown report with the machine, versions and date.

    .venv/bin/python bench/bundled_stability.py [--seeds 0 1 2] [--threads 1 2] [--out docs/stability.md]

The goal (issue: sweeps and the lower envelope): the reference reaches the threshold in every run and
the headline does not hinge on the CPU, the seed or the thread count.
"""

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from make_run_timing import cpu_model, fmt, versions  # noqa: E402


def run_once(seed: int, threads: int, cores: str, finished: Path | None = None) -> dict:
    """One run of the bundled experiment with its seeds moved by ``seed`` (selection seed `seed`, confirmation
    seed `seed + 1`, calibration seeds 1000 + 2 x `seed` and the next) and `training.workers: threads` (or the
    results of such a run already `finished`, e.g. by bench/make_run_timing.py --keep)."""
    workdir = finished or Path(tempfile.mkdtemp(prefix="algoprogress-stability-"))
    wall = float("nan")
    if finished is None:
        override = workdir / "override.yaml"
        bundled = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        models = [{**model, "training": {**model.get("training", {}), "confirmation_seeds": [seed + 1]}}
                  for model in bundled["models"]]
        calibration = {**bundled["analysis"]["calibration"], "seeds": [1000 + 2 * seed, 1001 + 2 * seed]}
        override.write_text(yaml.safe_dump({"training": {"seeds": [seed], "workers": threads}, "models": models,
                                            "analysis": {"calibration": calibration}}))
        command = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory",
                   str(workdir), "--cores", cores, "--configfile", str(REPO / "config" / "config.yaml"),
                   str(override)]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
    results = workdir / "results"
    trend = json.loads((results / "trend.json").read_text())
    name = trend["headline"]["threshold"]
    definition = trend["thresholds"][name]["definition"]
    level, metric = definition["resolved_value"], definition["metric"]
    reference = trend["reference_model"]
    by_model = pd.read_csv(results / "thresholds_by_model.csv")
    by_model = by_model.loc[by_model["threshold_name"] == name].set_index("model")
    # every curve of the reference that reaches the level: do its evaluations stay at or above it?
    dips = []
    for path in sorted((results / "curves" / reference).glob("*/seed*.parquet")):
        values = pd.read_parquet(path)[metric].to_numpy()
        reached = (values >= level).nonzero()[0]
        if len(reached) and (values[reached[0]:] < level).any():
            dips.append(f"{path.parent.name}/{path.stem}: {values[reached[0]:].min():.3f}")
    run = {
        "seed": seed, "threads": threads, "wall_seconds": wall, "threshold": name, "level": level,
        "metric": metric, "reference": reference, "reference_reached": bool(by_model.loc[reference, "reached"]),
        "reference_dips": dips, "trend": trend,
        "winners": {model: (row.winning_trials if row.reached else "not reached", row.train_flops_median)
                    for model, row in by_model.iterrows()},
    }
    if finished is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return run


def report(runs: list[dict], cores: str) -> str:
    first = runs[0]
    lines = [
        "# Stability of the bundled experiment across seeds and thread counts",
        "",
        f"Measured by `bench/bundled_stability.py` on {dt.date.today().isoformat()}: the bundled "
        "`config/config.yaml` run whole, from an empty results folder, once per seed (`training.seeds`) and per "
        "thread count of each training job (`training.workers`).",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu_model()}), no GPU used",
        f"- Python {platform.python_version()}; {versions()}",
        f"- `snakemake --cores {cores}`",
        f"- Headline: {first['threshold']} ({first['metric']} at the reference's own level), "
        f"{first['trend']['headline']['set']}, window {first['trend']['headline']['window']}",
        "",
        "| seed | threads | wall s | level | reference reaches it | stays at or above after | doubling time "
        "(months) | OLS interval | bootstrap interval | efficiency factor | best model | n |",
        "|---:|---:|---:|---:|---|---|---:|---|---|---:|---|---:|",
    ]
    for run in runs:
        trend = run["trend"]
        boot = trend["bootstrap"]
        lines.append(
            f"| {run['seed']} | {run['threads']} | {fmt(run['wall_seconds'], '.0f')} | {run['level']:.3f} | "
            f"{'yes' if run['reference_reached'] else 'NO'} | "
            f"{'yes' if not run['reference_dips'] else 'NO: ' + '; '.join(run['reference_dips'])} | "
            f"{fmt(trend['doubling_time_months'])} | {fmt(trend['doubling_time_months_low'])}-"
            f"{fmt(trend['doubling_time_months_high'])} | {fmt(boot.get('doubling_time_months_low'))}-"
            f"{fmt(boot.get('doubling_time_months_high'))} | {fmt(trend['efficiency_factor'])}x | "
            f"{trend['best_model']} | {trend['n']} |")
    models = list(first["winners"])
    lines += ["", "Winning trial per model and run (compute to the level in FLOP, this project's convention):", "",
              "| seed | threads | " + " | ".join(models) + " |", "|---:|---:|" + "---|" * len(models)]
    for run in runs:
        cells = [f"{run['winners'][m][0]} ({run['winners'][m][1]:.2g})" if run["winners"][m][0] != "not reached"
                 else "not reached" for m in models]
        lines.append(f"| {run['seed']} | {run['threads']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--cores", default=str(os.cpu_count()))
    parser.add_argument("--out", default=str(REPO / "docs" / "stability.md"))
    parser.add_argument("--finished", type=Path,
                        help="folder of a finished run of the bundled config as it stands (its seed and threads), "
                             "used instead of running that combination again")
    args = parser.parse_args()
    bundled = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["training"]
    runs = []
    for threads in args.threads:
        for seed in args.seeds:
            reuse = args.finished if [seed] == bundled["seeds"] and threads == bundled["workers"] else None
            runs.append(run_once(seed, threads, args.cores, reuse))
            print(f"seed {seed}, {threads} threads: {runs[-1]['trend']['doubling_time_months']} months, "
                  f"{runs[-1]['trend']['efficiency_factor']}x, {runs[-1]['wall_seconds']:.0f} s", flush=True)
            Path(args.out).write_text(report(runs, args.cores))
    print(report(runs, args.cores))


if __name__ == "__main__":
    main()
