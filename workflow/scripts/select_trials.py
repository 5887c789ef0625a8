"""Select trials: per model, the trial its confirmation runs train (algoprogress.protocol).

From the selection runs (every trial on the model's `seeds`) and, for a reference-defined level, the
reference's calibration runs: the headline threshold resolved, each trial's median compute at it over the
selection seeds, and the trial with the least chosen. A model with one trial has it chosen. Writes
selection.json: the threshold it served (name, resolved value) and, per model, the chosen trial and what
each trial needed. The workflow's checkpoint: confirmation runs are planned from this file.
Snakemake rule `select_trials` (a checkpoint); also a CLI:
    python workflow/scripts/select_trials.py --config config/config.yaml --out results/selection.json \
        results/curves/*/*/*.parquet
"""

import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.config import headline_threshold
from algoprogress.curves import CurveError, read_curves
from algoprogress.fileio import write_json
from algoprogress.integrity import curve_problem_in_job
from algoprogress.protocol import CALIBRATION, SELECTION, choose_trials, for_selection, measurement_plan
from algoprogress.thresholds import compute_at_threshold, resolve_thresholds


def run(curve_files, threshold, reference, protocol, out):
    try:
        curves = read_curves(curve_files)
    except CurveError as error:
        fail(curve_problem_in_job(str(error)))
    entry = protocol.get(reference, {})
    resolved = resolve_thresholds(curves, [threshold], reference,
                                  {"trial": entry.get("calibration_trial"), "seeds": entry.get(CALIBRATION, [])})[0]
    selection = pd.concat([curves.loc[(curves["model"] == model) & curves["seed"].isin(plan[SELECTION])]
                           for model, plan in protocol.items()])
    if not resolved["value"] == resolved["value"]:  # NaN: no calibration run has an evaluation
        fail(f"threshold {resolved['name']}: its level could not be resolved ({resolved.get('defined_as')})")
    table = compute_at_threshold(selection, resolved["metric"], resolved["value"],
                                 resolved.get("interpolation", "log-linear"), resolved["name"],
                                 resolved.get("crossing", "monotone"))
    chosen = choose_trials(table, protocol)
    for model, choice in chosen.items():
        if protocol[model]["chooses"]:
            print(f"{model}: trial {choice['trial']} chosen on seeds {protocol[model][SELECTION]} "
                  f"(median compute at {resolved['name']}: {choice['medians']})", file=sys.stderr)
    write_json(out, {"threshold": {"name": resolved["name"], "metric": resolved["metric"],
                                   "value": resolved["value"], "defined_as": resolved.get("defined_as")},
                     "chosen": chosen})


def arguments(parser):
    parser.add_argument("curves", nargs="+", help="curve Parquet files: the selection and calibration runs")
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--out", required=True, help="the selection.json to write")


def from_args(args):
    config = config_or_fail(args.config)
    return dict(curve_files=args.curves, threshold=headline_threshold(config),
                reference=config["analysis"]["reference_model"], protocol=for_selection(measurement_plan(config)),
                out=args.out)


def from_snakemake(job):
    return dict(curve_files=job.input.curves, threshold=job.params.threshold, reference=job.params.reference,
                protocol=job.params.protocol, out=job.output.json)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
