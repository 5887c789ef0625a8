"""Train one trial of one architecture with one seed on the FFCV data and write its learning curve
(Parquet).

Snakemake rule `train`; also a CLI (--flops once per resolution file, or a file with several):
    python workflow/scripts/train.py --config config/config.yaml --model resnet18 --trial base --seed 0 \
        --data-dir results/data --flops results/flops/resnet18/64px.json --out curve.parquet

The job claims its GPUs (training.gpus of them; one process per GPU under torchrun when more than
one), checks the .beton files against the manifest's hashes (a damaged file stops the job with one
line naming it and the repair command, workflow/scripts/repair.py), resumes from its checkpoint if
one exists, and checkpoints on SIGTERM. A model that diverges (non-finite loss) is a result, not a
failure: its curve up to that point is written, marked `diverged`, and the job succeeds.
"""

import pathlib
import sys

import algoprogress_path  # makes src/ importable

from algoprogress.architectures import ModelSourceError, source_file
from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.config import ConfigError, model_table, network_spec, trial_training
from algoprogress.datafiles import DataError, count_classes, verify_data_files
from algoprogress.fileio import read_json
from algoprogress.flops import merge_counts, per_image_costs
from algoprogress.integrity import data_problem, repair_command_here
from algoprogress.launch import TrainingFailed, run_training
from algoprogress.schedules import flop_resolutions
from algoprogress.training import TrainingInterrupted, TrainingJob

# relative paths of user model files (`file:` archs) are relative to the workflow directory
WORKFLOW_DIR = pathlib.Path(algoprogress_path.SRC).parent


def verify_or_fail(manifest, train_beton, val_beton):
    """Train on nothing but the data the manifest lists: a damaged file ends the job with one line."""
    try:
        verify_data_files(manifest, {"train": train_beton, "val": val_beton})
    except DataError as error:
        fail(data_problem(str(error), repair_command_here()))


def run(name, trial, seed, spec, settings, train_beton, val_beton, manifest, flops_jsons, out, threads,
        checkpoint=None, verify=True, source=None):
    if verify:
        verify_or_fail(manifest, train_beton, val_beton)
    try:
        multiply_adds, measured = per_image_costs(merge_counts([read_json(path) for path in flops_jsons]))
        missing = set(flop_resolutions(settings)) - set(multiply_adds)
        if missing:
            raise DataError(f"{', '.join(map(str, flops_jsons))}: no FLOP count at {sorted(missing)} px; "
                            "rerun count_flops")
        job = TrainingJob(
            model_name=name, trial=trial, arch=spec["arch"], seed=int(seed), train_beton=str(train_beton),
            val_beton=str(val_beton), num_classes=spec["num_classes"], settings=settings,
            multiply_adds=multiply_adds, measured_flops=measured, kwargs=spec["kwargs"],
            threads=max(1, threads // settings["gpus"]), checkpoint_path=checkpoint,
            source_file=None if source is None else str(source),
        )
        run_training(job, out, processes=settings["gpus"])
    except (DataError, ModelSourceError, TrainingInterrupted, TrainingFailed) as error:
        fail(str(error))
    except OSError as error:  # e.g. no space left: the curve is written whole or not at all
        fail(f"{error.filename or out}: {error.strerror or error}; no curve was written")
    print(f"{name} trial {trial} seed {seed}: wrote {out}", file=sys.stderr)


def arguments(parser):
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--model", required=True, help="a `models[].name` of the config")
    parser.add_argument("--trial", default="base", help="a trial of the model's sweep (default: base, no sweep)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", required=True, help="folder with train.beton, val.beton, manifest.json")
    parser.add_argument("--flops", required=True, action="append",
                        help="JSON written by count_flops.py (repeat for one file per resolution)")
    parser.add_argument("--out", required=True, help="Parquet curve to write")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", help="checkpoint file: saved at evaluations and on SIGTERM, resumed from")
    parser.add_argument("--checkpoint-every", type=float,
                        help="seconds between checkpoints at evaluation points (default: the config's "
                             "training.checkpoint_every_seconds; SIGTERM always saves)")
    parser.add_argument("--no-verify", action="store_true", help="skip the .beton hash check")


def from_args(args):
    config = config_or_fail(args.config)
    models = model_table(config)
    if args.model not in models:
        fail(f"--model: {args.model!r} is not a model of {args.config}")
    trials = [trial["name"] for trial in models[args.model]["trials"]]
    if args.trial not in trials:
        fail(f"--trial: {args.trial!r} is not a trial of {args.model} (trials: {', '.join(trials)})")
    try:
        spec = network_spec(config, args.model, count_classes(config["dataset"]), WORKFLOW_DIR)
    except (DataError, ConfigError) as error:
        fail(str(error))
    settings = dict(trial_training(config, args.model, args.trial))
    if args.checkpoint_every is not None:
        settings["checkpoint_every_seconds"] = args.checkpoint_every
    data = pathlib.Path(args.data_dir)
    return dict(name=args.model, trial=args.trial, seed=args.seed, spec=spec, settings=settings,
                train_beton=data / "train.beton", val_beton=data / "val.beton", manifest=data / "manifest.json",
                flops_jsons=args.flops, out=args.out, threads=args.threads, checkpoint=args.checkpoint,
                verify=not args.no_verify, source=source_file(spec["arch"], WORKFLOW_DIR))


def from_snakemake(job):
    # params.training holds the results settings only (what reruns the job when it changes); the job
    # runs with the trial's full settings, runtime keys included, from the validated config
    return dict(name=job.wildcards.model, trial=job.wildcards.trial, seed=job.wildcards.seed, spec=job.params.spec,
                settings=trial_training(job.config, job.wildcards.model, job.wildcards.trial),
                train_beton=job.input.train, val_beton=job.input.val, manifest=job.input.manifest,
                flops_jsons=list(job.input.flops), out=job.output.curve, threads=job.threads,
                checkpoint=job.params.checkpoint_file, verify=job.config["dataset"]["verify_hash"],
                source=next(iter(getattr(job.input, "source", [])), None))


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
