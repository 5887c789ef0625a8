"""Benchmark: FFCV's loader against torchvision's ImageFolder with the PyTorch DataLoader.

The same JPEG files (bench/jpeg_folder.py), the same augmentation (random resized crop, scale 0.08-1, to the same side,
and a random horizontal flip), the same batch size and number of worker processes, the same output
(uint8 batches, N x 3 x side x side). One full pass over the images per repetition, the two loaders
alternating; the median images/s of each is reported. The first FFCV pass (numba compilation) and
the first DataLoader pass (page cache) are not counted. FFCV is measured with each way of storing
the images (--write-mode, repeatable): `jpg` (every image JPEG quality 90: the same decoding work as
the DataLoader), `proportion` (FFCV's ImageNet advice and config/imagenet.yaml's: half JPEG, half
raw pixels) and `raw`; each with FFCV's own crop and flip and with the seeded ones the training jobs use
(algoprogress.augmentations).

Goal (issue 6): FFCV at least 3x faster than the DataLoader on the 2-core machine.

    .venv/bin/python bench/loading.py --images 2000 --workers 2 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jpeg_folder import write_jpeg_folder


def ffcv_loader(path: Path, side: int, batch_size: int, workers: int, seeded: bool = False):
    """FFCV's loader with its own random crop and flip, or (``seeded``) with this project's, which the seed decides
    (algoprogress.augmentations: what the training jobs use)."""
    from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import RandomHorizontalFlip, Squeeze, ToTensor, ToTorchImage

    from algoprogress.augmentations import SeededRandomHorizontalFlip, SeededRandomResizedCrop

    augment = ([SeededRandomResizedCrop((side, side), 0, scale=(0.08, 1.0)), SeededRandomHorizontalFlip(0)] if seeded
               else [RandomResizedCropRGBImageDecoder((side, side), scale=(0.08, 1.0)), RandomHorizontalFlip()])
    return Loader(str(path), batch_size=batch_size, num_workers=workers, order=OrderOption.RANDOM, seed=0,
                  drop_last=False, pipelines={"image": [*augment, ToTensor(), ToTorchImage()],
                                              "label": [IntDecoder(), ToTensor(), Squeeze()]})


def torchvision_loader(root: Path, side: int, batch_size: int, workers: int):
    import torch
    from torchvision import datasets, transforms

    augment = transforms.Compose([transforms.RandomResizedCrop(side, scale=(0.08, 1.0), antialias=True),
                                  transforms.RandomHorizontalFlip(), transforms.PILToTensor()])
    return torch.utils.data.DataLoader(datasets.ImageFolder(str(root), transform=augment), batch_size=batch_size,
                                       shuffle=True, num_workers=workers, drop_last=False,
                                       persistent_workers=workers > 0)


def one_pass(loader) -> tuple[float, int]:
    started, count = time.perf_counter(), 0
    for images, _ in loader:
        assert images.dtype.itemsize == 1 and images.shape[1] == 3  # uint8, channels first
        count += len(images)
    return count / (time.perf_counter() - started), count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--side", type=int, default=176)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write-mode", action="append", choices=["jpg", "proportion", "raw", "smart"],
                        help="FFCV storage to measure (repeatable; default jpg, proportion, raw)")
    parser.add_argument("--folder", default="bench/.data")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)

    from algoprogress.config import validate_config
    from algoprogress.data import prepare_dataset

    folder = Path(args.folder)
    root = write_jpeg_folder(folder / "jpeg", images=args.images)
    betons = {}
    for mode in args.write_mode or ["jpg", "proportion", "raw"]:
        betons[mode] = folder / f"loading-{args.images}-{mode}.beton"
        if not betons[mode].exists():
            config = validate_config({
                "dataset": {"source": "imagefolder", "train_path": str(root), "val_fraction": 0.01,
                            "resolution": 224, "max_side": 500, "write_mode": mode, "jpeg_quality": 90,
                            "compress_probability": 0.5},
                "models": [{"name": "resnet50", "published": "2015-12-10"},
                           {"name": "resnet18", "published": "2015-12-10"}],
            })
            prepare_dataset(config["dataset"], betons[mode], folder / "loading-val.beton",
                            folder / "loading-manifest.json", args.workers)
    loaders = {f"ffcv{' seeded' if seeded else ''} ({mode})": ffcv_loader(path, args.side, args.batch_size,
                                                                          args.workers, seeded)
               for mode, path in betons.items() for seeded in (False, True)}
    loaders["torchvision"] = torchvision_loader(root, args.side, args.batch_size, args.workers)
    for loader in loaders.values():
        one_pass(loader)  # warm-up: numba compilation, worker start, page cache
    rates = {name: [] for name in loaders}
    for _ in range(args.repeats):
        for name, loader in loaders.items():
            rates[name].append(one_pass(loader)[0])
    medians = {name: statistics.median(values) for name, values in rates.items()}
    speedup = {name: medians[name] / medians["torchvision"] for name in medians if name != "torchvision"}
    print(f"{args.images} JPEG files, {args.side} px random resized crop + flip, batch {args.batch_size}, "
          f"{args.workers} workers, {args.repeats} passes each:")
    for name, values in rates.items():
        ratio = f"  {speedup[name]:.2f}x the DataLoader" if name in speedup else ""
        print(f"  {name:18s} median {medians[name]:8.1f} images/s "
              f"(min {min(values):.1f}, max {max(values):.1f}){ratio}")
    result = {"date": dt.date.today().isoformat(), "machine": platform.node(), "cpus": os.cpu_count(),
              "python": platform.python_version(),
              "versions": {n: md.version(n) for n in ("ffcv", "torch", "torchvision", "pillow", "numba")},
              "settings": vars(args), "rates": rates, "medians": medians, "speedup": speedup}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
