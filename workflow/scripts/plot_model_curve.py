"""Plot one model's learning curves: accuracy against cumulative compute, each threshold's line, and
the crossings (from thresholds.csv) marked.

Snakemake rule `plot_model_curve`; also a CLI:
    python workflow/scripts/plot_model_curve.py --config config/config.yaml --thresholds results/thresholds.csv \
        --out resnet18.png results/curves/resnet18/*.parquet
"""


import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.curves import CurveError, read_curves
from algoprogress.integrity import curve_problem_in_job
from algoprogress.plots import model_curve_figure
from algoprogress.thresholds import with_resolved_values


def run(curve_files, thresholds_csv, thresholds, out):
    try:
        curves = read_curves(curve_files)
    except CurveError as error:
        fail(curve_problem_in_job(str(error)))
    crossings = pd.read_csv(thresholds_csv)
    thresholds = with_resolved_values(thresholds, crossings)
    model_curve_figure(curves, crossings.loc[crossings["model"].isin(curves["model"].unique())], thresholds, out)


def arguments(parser):
    parser.add_argument("curves", nargs="+", help="the model's curve Parquet files (one per seed)")
    parser.add_argument("--config", required=True, help="workflow config YAML (its `thresholds`)")
    parser.add_argument("--thresholds", required=True, help="thresholds.csv of the run")
    parser.add_argument("--out", required=True, help="PNG to write")


def from_args(args):
    config = config_or_fail(args.config)
    return dict(curve_files=args.curves, thresholds_csv=args.thresholds, thresholds=config["thresholds"], out=args.out)


def from_snakemake(job):
    return dict(curve_files=job.input.curves, thresholds_csv=job.input.thresholds, thresholds=job.params.thresholds,
                out=job.output.figure)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
