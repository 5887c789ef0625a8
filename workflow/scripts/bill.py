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
from algoprogress.cli import entry, fail
from algoprogress.config import ConfigError, load_config
from algoprogress.datafiles import DataError, count_classes
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


def classes(config, manifest, given):
    """The class count: the data manifest's, else --num-classes, else counted from the config's data set."""
    if os.path.exists(manifest):
        return read_json(manifest)["num_classes"]
    if given is not None:
        return given
    try:
        return count_classes(config["dataset"])
    except DataError as error:
        fail(f"{error}; give --num-classes N")


def run(config, manifest, train_images, num_classes, images_per_second, throughput, utilisation, peak_tflops,
        max_images_per_second, flops_cache, csv):
    """The bill of the config at ``config``; the arguments are the command line's flags."""
    try:
        validated = load_config(config, check_paths=False)
        images = training_images(validated, manifest, train_images)
        counter = MultiplyAddCounter(classes(validated, manifest, num_classes), flops_cache)
        if utilisation is not None and not 0 < utilisation <= 1:
            raise BillError(f"--utilisation: {utilisation} is not in (0, 1]")
        rate = utilisation * peak_tflops * 1e12 if utilisation else None
        table = bill(validated, images, counter, throughputs(validated, images_per_second, throughput), rate,
                     max_images_per_second)
    except (ConfigError, BillError) as error:
        fail(str(error))
    print(f"{config}: {images:,} training images per epoch"
          + (f"; GPU-hours at {utilisation:.0%} of {peak_tflops:g} TFLOP/s where no throughput is given"
             if utilisation else ""), file=sys.stderr)
    print(format_bill(table))
    if csv:
        write_csv(csv, table)


def arguments(parser):
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


if __name__ == "__main__":
    # not a Snakemake rule: the flags are run()'s arguments as they are
    entry(run, __doc__, arguments, vars)
