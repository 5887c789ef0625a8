"""The threshold question: the headline's doubling time (its set and window, OLS interval) as a function
of the threshold value, over the metric's measurable range -> threshold_sweep.csv and a figure.

Snakemake rule `threshold_sweep`; also a CLI:
    python workflow/scripts/threshold_sweep.py --config config/config.yaml --thresholds results/thresholds.parquet \
        --out-dir results results/curves/*/*/*.parquet
"""

import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.analysis import threshold_sweep
from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.config import headline_choice, headline_threshold, publication_dates, sweep_plan
from algoprogress.curves import CurveError, read_curves
from algoprogress.fileio import write_csv
from algoprogress.integrity import curve_problem_in_job
from algoprogress.plots import threshold_sweep_figure
from algoprogress.protocol import measured_curves
from algoprogress.thresholds import resolved_values


def run(curve_files, thresholds_file, published, threshold, analysis_cfg, plan, csv_out, figure_out):
    try:
        curves = read_curves(curve_files)
    except CurveError as error:
        fail(curve_problem_in_job(str(error)))
    table = pd.read_parquet(thresholds_file)
    values = resolved_values(table)
    threshold = {**threshold, "value": values.get(threshold["name"], threshold["value"])}
    sweep = threshold_sweep(measured_curves(curves, table), threshold, published, analysis_cfg, plan)
    if sweep.empty:
        print(f"note: no threshold range of {threshold['metric']} where at least "
              f"{(analysis_cfg.get('threshold_sweep') or {}).get('min_models', 3)} models can be compared",
              file=sys.stderr)
    write_csv(csv_out, sweep)
    headline = headline_choice(analysis_cfg, [threshold["name"]])
    threshold_sweep_figure(sweep, [threshold], f"Doubling time against the threshold ({headline['set']}, window "
                           f"{headline['window']})", figure_out)
    print(sweep.to_string(index=False), file=sys.stderr)


def arguments(parser):
    parser.add_argument("curves", nargs="+", help="curve Parquet files")
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--thresholds", required=True, help="thresholds.parquet of the run (resolved values)")
    parser.add_argument("--out-dir", required=True, help="folder for threshold_sweep.csv and threshold_sweep.png")


def from_args(args):
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    return dict(curve_files=args.curves, thresholds_file=args.thresholds, published=publication_dates(config),
                threshold=headline_threshold(config), analysis_cfg=config["analysis"], plan=sweep_plan(config),
                csv_out=out / "threshold_sweep.csv", figure_out=out / "threshold_sweep.png")


def from_snakemake(job):
    return dict(curve_files=job.input.curves, thresholds_file=job.input.thresholds, published=job.params.published,
                threshold=job.params.threshold, analysis_cfg=job.params.analysis, plan=job.params.plan,
                csv_out=job.output.csv, figure_out=job.output.figure)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
