"""Benchmark: training throughput (images/s) and model FLOP utilisation with the FFCV loader.

Writes real JPEG files (bench/jpeg_folder.py) to an FFCV .beton with the ImageNet settings of
config/imagenet.yaml (longest side 500, half the images JPEG quality 90), then trains each
architecture for a number of steps exactly as a training job does on this machine (FFCV pipeline
ending on the GPU, channels-last, bf16 autocast, cudnn.benchmark; float32 on CPU), and reports the
median images/s over timed windows after warm-up.

MFU = images/s x training FLOPs per image (the paper's convention: 6 x fvcore multiply-adds at the
training resolution) / the device's peak dense bf16 FLOP/s (--peak-tflops; H100 SXM and H200: 989).

Goal (issue 3): ResNet-50 at 176 px >= 6,000 images/s on one H100.

    .venv/bin/python bench/train_throughput.py --arch resnet50 --arch resnet18 --resolution 176 \
        --batch-size 256 --steps 60 --peak-tflops 989
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jpeg_folder import write_jpeg_folder

from algoprogress.config import validate_config
from algoprogress.data import prepare_dataset
from algoprogress.flops import count_multiply_adds


def beton(folder: Path, images: int, workers: int) -> Path:
    path = folder / f"train-{images}.beton"
    if not path.exists():
        source = write_jpeg_folder(folder / "jpeg", images=images)
        config = validate_config({
            "dataset": {"source": "imagefolder", "train_path": str(source), "val_fraction": 0.01, "resolution": 224,
                        "max_side": 500, "write_mode": "proportion", "compress_probability": 0.5,
                        "jpeg_quality": 90},
            "models": [{"name": "resnet50", "published": "2015-12-10"},
                       {"name": "resnet18", "published": "2015-12-10"}],
        })
        prepare_dataset(config["dataset"], path, folder / "val.beton", folder / "manifest.json", workers)
    return path


def measure(arch: str, path: Path, resolution: int, batch_size: int, steps: int, warmup: int, workers: int,
            compile_model: bool) -> dict:
    import torch

    from algoprogress.architectures import build_model
    from algoprogress.loaders import train_loader

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True
    loader, _ = train_loader(str(path), batch_size, resolution, workers, 0, device, random_resized_crop=True,
                             flip=True, crop_min_scale=0.08)
    model = build_model(arch, 1000).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_model and cuda else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    times, done, epoch = [], 0, 0
    while done < steps + warmup:
        loader.next_epoch = epoch
        for images, labels in loader:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = criterion(step_model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter())
            done += 1
            if done >= steps + warmup:
                break
        epoch += 1
    timed = np.diff(times[warmup:])
    windows = [batch_size / float(np.mean(chunk)) for chunk in np.array_split(timed, min(5, len(timed)))]
    macs = count_multiply_adds(arch, 1000, resolution)["multiply_adds_per_image"]
    return {"arch": arch, "resolution": resolution, "batch_size": batch_size, "timed_steps": len(timed),
            "images_per_second": statistics.median(windows), "windows": windows,
            "training_flops_per_image": 6 * macs,
            "device": torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", action="append", default=None)
    parser.add_argument("--resolution", type=int, default=176)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="timed steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (numba, cudnn autotuning)")
    parser.add_argument("--images", type=int, default=4000, help="JPEG files to write")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (GPU)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak dense bf16 TFLOP/s, for MFU")
    parser.add_argument("--folder", default="bench/.data", help="where the JPEG files and .beton are kept")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    import torch

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = beton(folder, args.images, args.workers)
    results = []
    for arch in args.arch or ["resnet50", "resnet18"]:
        result = measure(arch, path, args.resolution, args.batch_size, args.steps, args.warmup, args.workers,
                         args.compile)
        achieved = result["images_per_second"] * result["training_flops_per_image"]
        result["achieved_tflops"] = achieved / 1e12
        result["mfu"] = achieved / (args.peak_tflops * 1e12) if args.peak_tflops else None
        results.append(result)
        mfu = f", MFU {result['mfu']:.1%}" if result["mfu"] is not None else ""
        print(f"{arch} at {args.resolution} px, batch {args.batch_size} on {result['device']}: "
              f"{result['images_per_second']:,.1f} images/s, {result['achieved_tflops']:.3f} TFLOP/s{mfu}")
    meta = {"date": dt.date.today().isoformat(), "machine": platform.node(), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(), "compile": args.compile, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
