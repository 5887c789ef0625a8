"""Train one architecture with one seed on the FFCV data and write its learning curve (Parquet).

Snakemake rule `train`; also a CLI:
    python workflow/scripts/train.py --config config/config.yaml --model resnet18 --seed 0 \
        --data-dir results/data --flops results/flops/resnet18.json --out curve.parquet
"""

import argparse
import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import config_or_fail, fail, log_to
from algoprogress.config import model_table
from algoprogress.fileio import read_json
from algoprogress.training import NonFiniteLossError, TrainingInterrupted, TrainingJob, train


def run(name, seed, spec, settings, train_beton, val_beton, flops_json, out, threads, checkpoint=None,
        checkpoint_every=60.0):
    counts = read_json(flops_json)
    job = TrainingJob(
        model_name=name, arch=spec["arch"], seed=int(seed), train_beton=str(train_beton),
        val_beton=str(val_beton), num_classes=spec["num_classes"], resolution=spec["resolution"],
        settings=settings, multiply_adds_per_image=counts["multiply_adds_per_image"],
        kwargs=spec["kwargs"], threads=threads, checkpoint_path=checkpoint, checkpoint_every_seconds=checkpoint_every,
    )
    try:
        rows = train(job, out)
    except (NonFiniteLossError, TrainingInterrupted) as error:
        fail(str(error))
    last = rows[-1]
    print(f"{name} seed {seed}: {len(rows)} evaluations, final val_top1 {last['val_top1']:.4f}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--model", required=True, help="a `models[].name` of the config")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", required=True, help="folder with train.beton, val.beton, manifest.json")
    parser.add_argument("--flops", required=True, help="JSON written by count_flops.py")
    parser.add_argument("--out", required=True, help="Parquet curve to write")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", help="checkpoint file: saved at evaluations and on SIGTERM, resumed from")
    parser.add_argument("--checkpoint-every", type=float, default=60.0,
                        help="seconds between checkpoints at evaluation points (default 60; SIGTERM always saves)")
    args = parser.parse_args(argv)
    log_to(None)
    config = config_or_fail(args.config)
    models = model_table(config)
    if args.model not in models:
        fail(f"--model: {args.model!r} is not a model of {args.config}")
    model = models[args.model]
    data = pathlib.Path(args.data_dir)
    manifest = read_json(data / "manifest.json")
    spec = {"arch": model["arch"], "kwargs": model["kwargs"], "resolution": config["dataset"]["resolution"],
            "num_classes": manifest["num_classes"]}
    run(args.model, args.seed, spec, model["resolved_training"], data / "train.beton", data / "val.beton",
        args.flops, args.out, args.threads, args.checkpoint, args.checkpoint_every)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.wildcards.model, snakemake.wildcards.seed, snakemake.params.spec, snakemake.params.training,
            snakemake.input.train, snakemake.input.val, snakemake.input.flops, snakemake.output.curve,
            snakemake.threads, snakemake.params.checkpoint_file)
    else:
        main()
