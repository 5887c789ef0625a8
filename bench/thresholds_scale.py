"""Benchmark: thresholds, fits and the bootstrap for many curves (goal: 10,000 curves x 200 evaluations,
1,000 bootstrap draws, <= 10 s on the 2-core machine); the threshold sweep timed apart.

Synthetic curves (saturating accuracy with noise and some NaN evaluations; 50 models x 200 seeds),
2 thresholds, then the per-model summary (envelope, median over seeds) and every fit with its
bootstrap, timed end to end; then the threshold sweep of the headline (20 values); the median of
several repetitions.

    .venv/bin/python bench/thresholds_scale.py [--curves 10000] [--evaluations 200] [--repeats 5] [--draws 1000]
"""

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, not installed

from algoprogress.analysis import analyse_measured, threshold_sweep
from algoprogress.config import analysis_settings
from algoprogress.provenance import cpu_model
from algoprogress.thresholds import compute_at_thresholds


def synthetic_curves(n_curves: int, n_evals: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    n_models = 50
    model = np.repeat(np.arange(n_curves) % n_models, n_evals)
    curve_id = np.repeat(np.arange(n_curves), n_evals)
    step = np.tile(np.arange(n_evals), n_curves)
    speed = rng.uniform(0.5, 5, n_curves)[curve_id] * (1 + model / n_models)
    accuracy = 1 - np.exp(-speed * step / n_evals) + rng.normal(0, 0.02, len(step))
    accuracy[rng.random(len(step)) < 0.01] = np.nan
    flops_per_step = 10 ** rng.uniform(9, 12, n_models)[model]
    frame = pd.DataFrame({
        "model": pd.Categorical([f"m{m}" for m in model]), "seed": curve_id // n_models, "step": step,
        "epoch": step / 10, "images_seen": step * 64, "train_flops": step * flops_per_step,
        "val_top1": accuracy, "val_top5": np.minimum(1, accuracy + 0.1), "wall_seconds": step * 0.5,
    })
    frame["model"] = frame["model"].astype(str)
    dates = {f"m{m}": (dt.date(2012, 1, 1) + dt.timedelta(days=int(m * 60))).isoformat() for m in range(n_models)}
    return frame, dates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curves", type=int, default=10_000)
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1000, help="bootstrap draws")
    args = parser.parse_args()
    curves, dates = synthetic_curves(args.curves, args.evaluations)
    thresholds = [{"name": "low", "metric": "val_top1", "value": 0.8, "interpolation": "log-linear"},
                  {"name": "high", "metric": "val_top5", "value": 0.95, "interpolation": "log-linear"}]
    analysis = analysis_settings({"reference_model": "m0", "bootstrap": {"draws": args.draws}})
    times, sweep_times = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        table = compute_at_thresholds(curves, thresholds)
        result, _, _ = analyse_measured(table, dates, thresholds, analysis)
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
        sweep = threshold_sweep(curves, thresholds[0], dates, analysis)
        sweep_times.append(time.perf_counter() - started)
    cpu = cpu_model()
    print(f"{args.curves} curves x {args.evaluations} evaluations ({len(curves):,} rows), 2 thresholds, "
          f"per-model summary, every fit and its bootstrap ({args.draws} draws, "
          f"levels: {' + '.join(result['bootstrap']['levels'])}): median {statistics.median(times):.2f} s over "
          f"{args.repeats} runs (min {min(times):.2f}, max {max(times):.2f}); threshold sweep ({len(sweep)} values): "
          f"median {statistics.median(sweep_times):.2f} s; {cpu}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}; {dt.date.today()}")


if __name__ == "__main__":
    main()
