"""Count FLOPs of one architecture at one or more resolutions, as JSON: fvcore's forward
multiply-adds per image, the training FLOPs by the paper's convention, and the FLOPs of a real
training step measured with torch's FlopCounterMode (the cross-check).

Snakemake rule `count_flops` (one file per model and resolution, so that a trial that adds a
resolution counts only that one); also a CLI:
    python workflow/scripts/count_flops.py --arch resnet18 --resolution 64 --resolution 128 \
        --num-classes 10 --out r18.json
"""

import argparse
import json
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import log_to
from algoprogress.fileio import write_json
from algoprogress.flops import count_at_resolutions


def run(spec, out):
    counts = count_at_resolutions(spec["arch"], spec["num_classes"], spec["resolutions"], spec["kwargs"])
    write_json(out, counts)
    for resolution, count in counts["by_resolution"].items():
        print(f"{spec['arch']} at {resolution} px: {count['multiply_adds_per_image']:,} multiply-adds per image; "
              f"measured training step / convention = {count['measured_over_convention']:.3f}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, help="torchvision constructor name")
    parser.add_argument("--resolution", type=int, action="append", required=True,
                        help="input side in pixels (repeat for several)")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--kwargs", default="{}", help="constructor keyword arguments as JSON")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    log_to(None)
    spec = {"arch": args.arch, "resolutions": args.resolution, "num_classes": args.num_classes,
            "kwargs": json.loads(args.kwargs)}
    run(spec, args.out)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        params = snakemake.params
        run({"arch": params.arch, "kwargs": params.kwargs, "num_classes": params.num_classes,
             "resolutions": [params.resolution]}, snakemake.output[0])
    else:
        main()
