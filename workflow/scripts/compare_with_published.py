"""Compare with published results: the measured headline threshold's points beside a published table,
each as efficiency factor over its own reference, against publication date.

Snakemake rule `compare_with_published`; also a CLI:
    python workflow/scripts/compare_with_published.py --config config/config.yaml \
        --table resources/published/hernandez_brown_2020.csv --thresholds results/thresholds.parquet --out fig.png
"""

import argparse
import pathlib

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.analysis import comparison_points, read_published_table
from algoprogress.cli import config_or_fail, fail, log_to
from algoprogress.plots import measured_vs_published_figure


def run(table_file, thresholds_file, published_dates, threshold, out):
    try:
        table = read_published_table(table_file)
    except ValueError as error:
        fail(str(error))
    measured, published, name = comparison_points(table, pd.read_parquet(thresholds_file), published_dates,
                                                  threshold["name"])
    measured_vs_published_figure(measured, f"measured: {threshold['name']}", published,
                                 f"published: {name} ({pathlib.Path(table_file).stem})", out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="workflow config YAML (model dates, headline threshold)")
    parser.add_argument("--table", required=True, help="published CSV")
    parser.add_argument("--thresholds", required=True, help="thresholds.parquet of the run")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    log_to(None)
    config = config_or_fail(args.config)
    dates = {m["name"]: m["published"] for m in config["models"]}
    run(args.table, args.thresholds, dates, config["thresholds"][0], args.out)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.input.table, snakemake.input.thresholds, snakemake.params.published,
            snakemake.params.threshold, snakemake.output.figure)
    else:
        main()
