"""Compare with published results: the measured headline threshold's points beside a published table,
each as efficiency factor over its own reference, against publication date.

Snakemake rule `compare_with_published`; also a CLI:
    python workflow/scripts/compare_with_published.py --config config/config.yaml \
        --table resources/published/hernandez_brown_2020.csv --thresholds results/thresholds.parquet --out fig.png
"""

import pathlib

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.analysis import comparison_points, model_points, read_published_table
from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.config import headline_threshold, publication_dates
from algoprogress.plots import measured_vs_published_figure
from algoprogress.thresholds import per_model


def run(table_file, thresholds_file, published_dates, threshold, dataset, out):
    try:
        table = read_published_table(table_file)
    except ValueError as error:
        fail(str(error))
    measured_table = pd.read_parquet(thresholds_file)
    rows = per_model(measured_table.loc[measured_table["threshold_name"] == threshold["name"]])
    measured, published, name = comparison_points(table, model_points(rows, published_dates))
    measured_vs_published_figure(measured, f"measured on {dataset}: {threshold['name']}", published,
                                 f"published: {name} ({pathlib.Path(table_file).stem})", out,
                                 f"Measured ({dataset}) and published results, each relative to its earliest model")


def arguments(parser):
    parser.add_argument("--config", required=True, help="workflow config YAML (model dates, headline threshold)")
    parser.add_argument("--table", required=True, help="published CSV")
    parser.add_argument("--thresholds", required=True, help="thresholds.parquet of the run")
    parser.add_argument("--out", required=True, help="PNG to write")


def from_args(args):
    config = config_or_fail(args.config)
    return dict(table_file=args.table, thresholds_file=args.thresholds, published_dates=publication_dates(config),
                threshold=headline_threshold(config), dataset=config["dataset"]["name"], out=args.out)


def from_snakemake(job):
    return dict(table_file=job.input.table, thresholds_file=job.input.thresholds,
                published_dates=job.params.published, threshold=job.params.threshold, dataset=job.params.dataset,
                out=job.output.figure)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
