"""Plot learning curves: the headline threshold's metric against cumulative training compute, every curve.

Snakemake rule `plot_learning_curves`; also a CLI:
    python workflow/scripts/plot_learning_curves.py --metric val_top1 --value 0.9 --out curves.png \
        results/curves/*/*/*.parquet
"""


import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.cli import entry, fail
from algoprogress.curves import CurveError, read_curves
from algoprogress.integrity import curve_problem_in_job
from algoprogress.plots import learning_curves_figure
from algoprogress.thresholds import resolved_values


def run(curve_files, threshold, out, thresholds_file=None):
    value = threshold["value"]
    if thresholds_file is not None:  # a threshold defined by the reference: its resolved value
        value = resolved_values(pd.read_parquet(thresholds_file)).get(threshold["name"], value)
    try:
        curves = read_curves(curve_files)
    except CurveError as error:
        fail(curve_problem_in_job(str(error)))
    learning_curves_figure(curves, threshold["metric"], float(value), out)


def arguments(parser):
    parser.add_argument("curves", nargs="+", help="curve Parquet files")
    parser.add_argument("--metric", default="val_top1", choices=["val_top1", "val_top5"])
    parser.add_argument("--value", type=float, required=True, help="threshold drawn as a line")
    parser.add_argument("--out", required=True, help="PNG to write")


def from_args(args):
    return dict(curve_files=args.curves, threshold={"name": "threshold", "metric": args.metric, "value": args.value},
                out=args.out)


def from_snakemake(job):
    return dict(curve_files=job.input.curves, threshold=job.params.threshold, out=job.output.figure,
                thresholds_file=job.input.thresholds)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
