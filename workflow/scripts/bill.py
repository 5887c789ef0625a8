"""The bill before the run: for the planned training jobs of a config (every trial of every model,
every seed), the training images, the training compute in FLOP and petaflop/s-days (the project's
convention: 6 x fvcore multiply-adds per image x images, at each epoch's resolution) and, at the
throughput you give, GPU-hours; per model and in total. Nothing trains.

Not a Snakemake rule (it must price a plan before anything runs, on any machine); a CLI:
    python workflow/scripts/bill.py --config config/imagenet.yaml --train-images 1281167 \
        --num-classes 1000 --images-per-second 3000 --throughput alexnet=12000

Training images per epoch come from results/data/manifest.json when it exists, else --train-images
(computed from the config for the bundled MNIST source). The image folders of the config need not
exist here. fvcore counts on CPU, cached under --flops-cache (default: results/flops if present).
"""

import argparse
import os
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.bill import (
    H100_BF16_DENSE_PEAK_TFLOPS,
    BillError,
    MultiplyAddCounter,
    bill,
    format_bill,
    training_images,
)
from algoprogress.cli import fail, log_to
from algoprogress.config import ConfigError, load_config
from algoprogress.data import DataError, count_classes
from algoprogress.fileio import read_json, write_csv


def throughputs(config, everyone, per_model):
    """Images per second per GPU of each model: --throughput model=N over --images-per-second N."""
    names = [model["name"] for model in config["models"]]
    rates = {name: everyone for name in names} if everyone is not None else {}
    for item in per_model:
        name, _, value = item.partition("=")
        if name not in names:
            fail(f"--throughput: {name!r} is not a model of the config (models: {', '.join(names)})")
        try:
            rates[name] = float(value)
        except ValueError:
            fail(f"--throughput {item!r}: expected model=images-per-second")
    return rates


def num_classes(config, manifest, given):
    if os.path.exists(manifest):
        return read_json(manifest)["num_classes"]
    if given is not None:
        return given
    try:
        return count_classes(config["dataset"])
    except DataError as error:
        fail(f"{error}; give --num-classes N")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--manifest", default="results/data/manifest.json",
                        help="data manifest to take the image and class counts from, if it exists")
    parser.add_argument("--train-images", type=int, help="training images per epoch (without a manifest)")
    parser.add_argument("--num-classes", type=int, help="classes (without a manifest or the image folders)")
    parser.add_argument("--images-per-second", type=float, help="training images per second per GPU, every model")
    parser.add_argument("--throughput", action="append", default=[], metavar="MODEL=N",
                        help="training images per second per GPU of one model (repeat; overrides the above)")
    parser.add_argument("--utilisation", type=float,
                        help="share of the GPU's peak FLOP/s reached in training, for models without a throughput "
                             "(e.g. 0.15)")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_PEAK_TFLOPS,
                        help=f"the GPU's peak TFLOP/s (default: H100 SXM dense bf16, {H100_BF16_DENSE_PEAK_TFLOPS})")
    parser.add_argument("--max-images-per-second", type=float,
                        help="with --utilisation: no model trains faster than this (what the loader feeds one GPU)")
    parser.add_argument("--flops-cache", default="results/flops" if os.path.isdir("results/flops") else None,
                        help="folder of cached FLOP counts (default: results/flops if present)")
    parser.add_argument("--csv", help="also write the bill as CSV")
    args = parser.parse_args(argv)
    log_to(None)
    try:
        config = load_config(args.config, check_paths=False)
        images = training_images(config, args.manifest, args.train_images)
        counter = MultiplyAddCounter(num_classes(config, args.manifest, args.num_classes), args.flops_cache)
        if args.utilisation is not None and not 0 < args.utilisation <= 1:
            raise BillError(f"--utilisation: {args.utilisation} is not in (0, 1]")
        rate = args.utilisation * args.peak_tflops * 1e12 if args.utilisation else None
        table = bill(config, images, counter, throughputs(config, args.images_per_second, args.throughput), rate,
                     args.max_images_per_second)
    except (ConfigError, BillError) as error:
        fail(str(error))
    print(f"{args.config}: {images:,} training images per epoch"
          + (f"; GPU-hours at {args.utilisation:.0%} of {args.peak_tflops:g} TFLOP/s where no throughput is given"
             if args.utilisation else ""), file=sys.stderr)
    print(format_bill(table))
    if args.csv:
        write_csv(args.csv, table)


if __name__ == "__main__":
    main()
