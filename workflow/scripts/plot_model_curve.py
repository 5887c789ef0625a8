"""Plot one model's learning curves: accuracy against cumulative compute, each threshold's line, and
the crossings (from thresholds.csv) marked.

Snakemake rule `plot_model_curve`; also a CLI:
    python workflow/scripts/plot_model_curve.py --config config/config.yaml --thresholds results/thresholds.csv \
        --out resnet18.png results/curves/resnet18/*.parquet
"""

import argparse

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.cli import config_or_fail, fail, log_to
from algoprogress.curves import CurveError, read_curves
from algoprogress.plots import model_curve_figure
from algoprogress.thresholds import with_resolved_values


def run(curve_files, thresholds_csv, thresholds, out):
    try:
        curves = read_curves(curve_files)
    except CurveError as error:
        fail(str(error))
    crossings = pd.read_csv(thresholds_csv)
    thresholds = with_resolved_values(thresholds, crossings)
    model_curve_figure(curves, crossings.loc[crossings["model"].isin(curves["model"].unique())], thresholds, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("curves", nargs="+", help="the model's curve Parquet files (one per seed)")
    parser.add_argument("--config", required=True, help="workflow config YAML (its `thresholds`)")
    parser.add_argument("--thresholds", required=True, help="thresholds.csv of the run")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    log_to(None)
    config = config_or_fail(args.config)
    run(args.curves, args.thresholds, config["thresholds"], args.out)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.input.curves, snakemake.input.thresholds, snakemake.params.thresholds, snakemake.output.figure)
    else:
        main()
