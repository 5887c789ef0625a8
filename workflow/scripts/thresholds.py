"""Thresholds: the training compute at which each curve first reaches each threshold.

Resolves thresholds defined by the reference model (`value: reference`) from its calibration runs (with the
level's standard error, from the validation set's size in the data's manifest), then
writes one row per curve and threshold (CSV and Parquet; every run's row, with its `role` in the measurement
protocol and whether the model's compute is `measured` on it), and a per-model summary: the compute at
threshold (the median over the measured runs), the optimistic bound (the lower envelope over the trials of the
selection runs), the chosen trial, grid-edge flags and the price of the search. Each run's row also has its
compute at the level shifted by half of thresholds.LEVEL_STEP either way, from which the analysis takes each model's
sensitivity to the level.
Snakemake rule `thresholds`; also a CLI:
    python workflow/scripts/thresholds.py --config config/config.yaml --selection results/selection.json \
        --manifest results/data/manifest.json --out-dir results results/curves/*/*/*.parquet
"""

import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.config import sweep_plan
from algoprogress.curves import CurveError, read_curves
from algoprogress.fileio import atomic_path, read_json, write_csv
from algoprogress.integrity import curve_problem_in_job
from algoprogress.protocol import CALIBRATION, REFERENCE_LEVEL, measured_rows, measurement_plan, with_roles
from algoprogress.thresholds import compute_at_thresholds, protocol_per_model, resolve_thresholds, with_level_shifts


def validation_images(manifest):
    """The validation set's size from the data's manifest (the level's error depends on it); None, said, without."""
    if manifest and pathlib.Path(manifest).exists():
        return int(read_json(manifest)["val"]["images"])
    print(f"warning: {manifest}: no data manifest: a reference-defined level's error is not counted in the "
          "intervals", file=sys.stderr)
    return None


def resolved_thresholds(curves, thresholds, reference, protocol, manifest):
    """The thresholds with numbers for values (a reference-defined level from its calibration runs), said."""
    entry = protocol.get(reference, {})
    calibration = {"trial": entry.get("calibration_trial"), "seeds": entry.get(CALIBRATION, [])}
    needs_size = any(threshold["value"] == REFERENCE_LEVEL for threshold in thresholds)
    resolved = resolve_thresholds(curves, thresholds, reference, calibration,
                                  validation_images(manifest) if needs_size else None)
    for threshold in resolved:
        if "defined_as" in threshold:
            print(f"threshold {threshold['name']}: {threshold['defined_as']} = {threshold['value']:.4f} "
                  f"{threshold['metric']}", file=sys.stderr)
    return resolved


def run(curve_files, selection_file, thresholds, reference, protocol, plan, csv_out, parquet_out, by_model_out,
        manifest=None):
    try:
        curves = read_curves(curve_files)
    except CurveError as error:
        fail(curve_problem_in_job(str(error)))
    resolved = resolved_thresholds(curves, thresholds, reference, protocol, manifest)
    table = with_level_shifts(compute_at_thresholds(curves, resolved), curves, resolved)
    definitions = {threshold["name"]: threshold.get("defined_as", "a fixed value") for threshold in resolved}
    errors = {threshold["name"]: threshold["level_standard_error"] for threshold in resolved}
    table = table.assign(threshold_defined_as=table["threshold_name"].map(definitions),
                         level_standard_error=table["threshold_name"].map(errors))
    chosen = read_json(selection_file)["chosen"] if selection_file else {}  # none where no model has trials to choose
    table = with_roles(table, protocol)
    measured = measured_rows(table, protocol, chosen)
    table = table.assign(measured=table.index.isin(measured.index))
    missing = sorted({model for model in protocol if not table.loc[table["model"] == model, "measured"].any()})
    if missing:
        fail(f"no measured run of {', '.join(missing)} among the curves given (the chosen trial's confirmation runs)")
    summary = protocol_per_model(table, plan)
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
    parser.add_argument("--selection", help="selection.json written by select_trials.py (where a model has trials)")
    parser.add_argument("--out-dir", required=True, help="folder for thresholds.csv/.parquet, thresholds_by_model.csv")
    parser.add_argument("--manifest", default="results/data/manifest.json",
                        help="the data's manifest.json (the validation set's size: a reference-defined level's error)")


def from_args(args):
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    return dict(curve_files=args.curves, selection_file=args.selection, thresholds=config["thresholds"],
                reference=config["analysis"]["reference_model"], protocol=measurement_plan(config),
                plan=sweep_plan(config),
                csv_out=out / "thresholds.csv", parquet_out=out / "thresholds.parquet",
                by_model_out=out / "thresholds_by_model.csv", manifest=args.manifest)


def from_snakemake(job):
    selection = job.input.selection  # empty where no model has trials to choose (rules/common.smk: selection_file)
    return dict(curve_files=job.input.curves, selection_file=str(selection) if selection else None,
                thresholds=job.params.thresholds,
                reference=job.params.reference, protocol=job.params.protocol,
                plan=job.params.plan, csv_out=job.output.csv, parquet_out=job.output.parquet,
                by_model_out=job.output.by_model, manifest=job.params.manifest)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
