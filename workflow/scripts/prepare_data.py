"""Prepare data: write the train/validation FFCV .beton files and their manifest.

Snakemake rule `prepare_data`; also a CLI:
    python workflow/scripts/prepare_data.py --config config/config.yaml --out-dir results/data
"""

import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import config_or_fail, entry, fail
from algoprogress.data import DataError, prepare_dataset


def run(dataset_cfg, train, val, manifest, workers):
    try:
        result = prepare_dataset(dataset_cfg, train, val, manifest, workers=workers)
    except DataError as error:
        fail(str(error))
    except OSError as error:  # e.g. no space left: nothing partial is left behind (atomic writes)
        fail(f"{error.filename or train}: {error.strerror or error}; nothing was written")
    print(f"wrote {result['train']['images']} training and {result['val']['images']} validation images",
          file=sys.stderr)


def arguments(parser):
    parser.add_argument("--config", required=True, help="workflow config YAML (its `dataset` section is used)")
    parser.add_argument("--out-dir", required=True, help="folder for train.beton, val.beton, manifest.json")
    parser.add_argument("--workers", type=int, default=2, help="writer processes")


def from_args(args):
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    return dict(dataset_cfg=config["dataset"], train=out / "train.beton", val=out / "val.beton",
                manifest=out / "manifest.json", workers=args.workers)


def from_snakemake(job):
    return dict(dataset_cfg=job.config["dataset"], train=job.output.train, val=job.output.val,
                manifest=job.output.manifest, workers=job.threads)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
