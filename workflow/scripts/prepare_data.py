"""Prepare data: write the train/validation FFCV .beton files and their manifest.

Snakemake rule `prepare_data`; also a CLI:
    python workflow/scripts/prepare_data.py --config config/config.yaml --out-dir results/data
"""

import argparse
import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import config_or_fail, fail, log_to
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="workflow config YAML (its `dataset` section is used)")
    parser.add_argument("--out-dir", required=True, help="folder for train.beton, val.beton, manifest.json")
    parser.add_argument("--workers", type=int, default=2, help="writer processes")
    args = parser.parse_args(argv)
    log_to(None)
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    run(config["dataset"], out / "train.beton", out / "val.beton", out / "manifest.json", args.workers)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.config["dataset"], snakemake.output.train, snakemake.output.val,
            snakemake.output.manifest, snakemake.threads)
    else:
        main()
