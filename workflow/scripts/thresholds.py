"""Thresholds: the training compute at which each curve first reaches each threshold.

Writes one row per curve and threshold (CSV and Parquet), and a per-model summary over seeds.
Snakemake rule `thresholds`; also a CLI:
    python workflow/scripts/thresholds.py --config config/config.yaml --out-dir results results/curves/*/*.parquet
"""

import argparse
import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.cli import config_or_fail, fail, log_to
from algoprogress.curves import CurveError, read_curves
from algoprogress.fileio import atomic_path, write_csv
from algoprogress.thresholds import compute_at_thresholds, per_model


def run(curve_files, thresholds, csv_out, parquet_out, by_model_out):
    try:
        table = compute_at_thresholds(read_curves(curve_files), thresholds)
    except CurveError as error:
        fail(f"{error}; move it aside (or delete it) and rerun: the workflow retrains it")
    summary = pd.concat(
        [per_model(group).assign(threshold_name=name) for name, group in table.groupby("threshold_name", sort=False)],
        ignore_index=True,
    )
    write_csv(csv_out, table)
    with atomic_path(parquet_out) as temporary:
        table.to_parquet(temporary, index=False)
    write_csv(by_model_out, summary)
    print(table.to_string(index=False), file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("curves", nargs="+", help="curve Parquet files")
    parser.add_argument("--config", required=True, help="workflow config YAML (its `thresholds` are used)")
    parser.add_argument("--out-dir", required=True, help="folder for thresholds.csv/.parquet, thresholds_by_model.csv")
    args = parser.parse_args(argv)
    log_to(None)
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    run(args.curves, config["thresholds"], out / "thresholds.csv", out / "thresholds.parquet",
        out / "thresholds_by_model.csv")


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.input.curves, snakemake.params.thresholds, snakemake.output.csv, snakemake.output.parquet,
            snakemake.output.by_model)
    else:
        main()
