"""Count FLOPs of one architecture at one or more resolutions, as JSON: fvcore's forward
multiply-adds per image, the training FLOPs by the paper's convention, and the FLOPs of a real
training step measured with torch's FlopCounterMode (the cross-check).

Snakemake rule `count_flops` (one file per model and resolution, so that a trial that adds a
resolution counts only that one); also a CLI:
    python workflow/scripts/count_flops.py --arch resnet18 --resolution 64 --resolution 128 \
        --num-classes 10 --out r18.json

A count is the same on any number of threads; under Snakemake the job uses its rule's `threads` (one), not
torch's default of every core, since other jobs run beside it.
"""

import json
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.architectures import ModelSourceError
from algoprogress.cli import entry, fail
from algoprogress.fileio import write_json
from algoprogress.flops import count_at_resolutions


def run(spec, out, threads=None):
    """Counting builds the model at each resolution on CPU: a user model that does not import or build
    fails here, in one line, before any training job of it starts (training jobs depend on this count)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    print(f"counting on {torch.get_num_threads()} CPU thread(s)", file=sys.stderr)
    try:
        counts = count_at_resolutions(spec["arch"], spec["num_classes"], spec["resolutions"], spec["kwargs"],
                                      source=spec.get("source"))
    except ModelSourceError as error:
        fail(f"{spec['arch']}: {error}")
    except Exception as error:  # e.g. a timm model that cannot take this resolution
        first = str(error).splitlines()[0][:300] if str(error) else ""
        fail(f"{spec['arch']} at {spec['resolutions']} px: the model does not build or run "
             f"({type(error).__name__}: {first})")
    write_json(out, counts)
    for resolution, count in counts["by_resolution"].items():
        print(f"{spec['arch']} at {resolution} px: {count['multiply_adds_per_image']:,} multiply-adds per image; "
              f"measured training step / convention = {count['measured_over_convention']:.3f}", file=sys.stderr)
        if count["disagreement"]:
            print(f"WARNING: {spec['arch']} at {resolution} px: {count['disagreement']}", file=sys.stderr)


def arguments(parser):
    parser.add_argument("--arch", required=True,
                        help="torchvision name, timm:<name>, or file:<path>:<callable> (path relative to here)")
    parser.add_argument("--resolution", type=int, action="append", required=True,
                        help="input side in pixels (repeat for several)")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--kwargs", default="{}", help="constructor keyword arguments as JSON")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's, every core)")


def from_args(args):
    return dict(spec={"arch": args.arch, "resolutions": args.resolution, "num_classes": args.num_classes,
                      "kwargs": json.loads(args.kwargs)}, out=args.out, threads=args.threads)


def from_snakemake(job):
    source = next(iter(getattr(job.input, "source", [])), None)  # a user model's file, resolved by the workflow
    return dict(spec={"arch": job.params.arch, "kwargs": job.params.kwargs, "num_classes": job.params.num_classes,
                      "resolutions": [job.params.resolution], "source": source}, out=job.output[0],
                threads=job.threads)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
