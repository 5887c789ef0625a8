"""Thresholds: the training compute at which each curve first reaches each threshold.

Resolves thresholds defined by the reference model (`value: reference`) from its curves, then writes
one row per curve and threshold (CSV and Parquet; every trial's row), and a per-model summary: the
lower envelope over trials per seed, the seeds combined by their median, the winning trials, grid-edge
flags and the price of the search.
Snakemake rule `thresholds`; also a CLI:
    python workflow/scripts/thresholds.py --config config/config.yaml --out-dir results results/curves/*/*/*.parquet
"""

import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.config import sweep_plan
from algoprogress.curves import CurveError, read_curves
from algoprogress.fileio import atomic_path, write_csv
from algoprogress.thresholds import compute_at_thresholds, per_model, resolve_thresholds


def run(curve_files, thresholds, reference, plan, csv_out, parquet_out, by_model_out):
    try:
        curves = read_curves(curve_files)
    except CurveError as error:
        fail(f"{error}; move it aside (or delete it) and rerun: the workflow retrains it")
    resolved = resolve_thresholds(curves, thresholds, reference)
    for threshold in resolved:
        if "defined_as" in threshold:
            print(f"threshold {threshold['name']}: {threshold['defined_as']} = {threshold['value']:.4f} "
                  f"{threshold['metric']}", file=sys.stderr)
    table = compute_at_thresholds(curves, resolved)
    summary = per_model(table, plan)
    for row in summary.loc[summary["winner_at_grid_edge"]].itertuples():
        print(f"warning: {row.threshold_name}: {row.model}'s winning trial ({row.winning_trials}) is at the edge "
              f"of its grid ({row.grid_edges}): the optimum may lie outside the grid", file=sys.stderr)
    for row in summary.loc[summary["crossed_at_first_evaluation"]].itertuples():
        print(f"warning: {row.threshold_name}: {row.model} meets the threshold at its first evaluation: too low "
              "for this model", file=sys.stderr)
    write_csv(csv_out, table)
    with atomic_path(parquet_out) as temporary:
        table.to_parquet(temporary, index=False)
    write_csv(by_model_out, summary)
    print(summary.to_string(index=False), file=sys.stderr)


def arguments(parser):
    parser.add_argument("curves", nargs="+", help="curve Parquet files")
    parser.add_argument("--config", required=True, help="workflow config YAML (its `thresholds` are used)")
    parser.add_argument("--out-dir", required=True, help="folder for thresholds.csv/.parquet, thresholds_by_model.csv")


def from_args(args):
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    return dict(curve_files=args.curves, thresholds=config["thresholds"],
                reference=config["analysis"]["reference_model"], plan=sweep_plan(config),
                csv_out=out / "thresholds.csv", parquet_out=out / "thresholds.parquet",
                by_model_out=out / "thresholds_by_model.csv")


def from_snakemake(job):
    return dict(curve_files=job.input.curves, thresholds=job.params.thresholds, reference=job.params.reference,
                plan=job.params.plan, csv_out=job.output.csv, parquet_out=job.output.parquet,
                by_model_out=job.output.by_model)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
