"""Count FLOPs: fvcore's forward multiply-adds of one image for one architecture, as JSON.

Snakemake rule `count_flops`; also a CLI:
    python workflow/scripts/count_flops.py --arch resnet18 --resolution 64 --num-classes 10 --out r18.json
"""

import argparse
import json
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import log_to
from algoprogress.fileio import write_json
from algoprogress.flops import count_multiply_adds


def run(spec, out):
    counts = count_multiply_adds(spec["arch"], spec["num_classes"], spec["resolution"], spec["kwargs"])
    write_json(out, counts)
    print(f"{spec['arch']}: {counts['multiply_adds_per_image']:,} multiply-adds per image", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, help="torchvision constructor name")
    parser.add_argument("--resolution", type=int, required=True, help="input side in pixels")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--kwargs", default="{}", help="constructor keyword arguments as JSON")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    log_to(None)
    spec = {"arch": args.arch, "resolution": args.resolution, "num_classes": args.num_classes,
            "kwargs": json.loads(args.kwargs)}
    run(spec, args.out)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.params.spec, snakemake.output[0])
    else:
        main()
