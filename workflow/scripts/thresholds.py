"""Thresholds: the training compute at which each curve first reaches the threshold -> CSV.

Snakemake rule `thresholds`; also a CLI:
    python workflow/scripts/thresholds.py --metric val_top1 --value 0.9 --out thresholds.csv results/curves/*/*.parquet
"""

import argparse
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import log_to
from algoprogress.curves import read_curves
from algoprogress.fileio import atomic_path
from algoprogress.thresholds import compute_at_threshold


def run(curve_files, threshold, out):
    table = compute_at_threshold(
        read_curves(curve_files), threshold["metric"], threshold["value"],
        threshold.get("interpolation", "log-linear"), threshold["name"],
    )
    with atomic_path(out) as temporary:
        table.to_csv(temporary, index=False)
    print(table.to_string(index=False), file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("curves", nargs="+", help="curve Parquet files")
    parser.add_argument("--metric", default="val_top1", choices=["val_top1", "val_top5"])
    parser.add_argument("--value", type=float, required=True, help="threshold, a fraction in (0, 1]")
    parser.add_argument("--interpolation", default="log-linear", choices=["none", "log-linear"])
    parser.add_argument("--name", default="threshold", help="label of the threshold")
    parser.add_argument("--out", required=True, help="CSV to write")
    args = parser.parse_args(argv)
    threshold = {"metric": args.metric, "value": args.value, "interpolation": args.interpolation, "name": args.name}
    run(args.curves, threshold, args.out)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.input.curves, snakemake.params.threshold, snakemake.output.csv)
    else:
        main()
