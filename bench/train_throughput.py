"""Benchmark: training throughput (images/s), model FLOP utilisation, and what limits each model.

Writes real JPEG files (bench/jpeg_folder.py) to an FFCV .beton with the ImageNet settings of
config/imagenet.yaml (longest side 500, half the images JPEG quality 90), then trains each
architecture as a training job does on a GPU (FFCV pipeline ending on the GPU, random resized crop
and flip, channels-last, bf16 autocast, cudnn.benchmark, SGD with momentum; float32 on CPU) and
measures, after warm-up steps (numba, cudnn autotuning, compilation):

- ``images_per_second``: with the FFCV loader, no host synchronisation inside the timed steps
  (the median over five windows, each ending with one ``torch.cuda.synchronize``);
- ``images_per_second_sync_each_step``: the same, with what ``algoprogress.training`` does every
  step (``loss.item()`` and the non-finite check, both of which wait for the GPU);
- ``images_per_second_synthetic``: one batch kept on the GPU and trained on repeatedly (no loader);
- a ``torch.profiler`` trace of a few synthetic steps: ``gpu_busy`` (kernel time / wall time) and
  ``matmul_conv_share`` (the share of kernel time in GEMM and convolution kernels).

What limits the model is then decided by measurement, in this order: ``loader`` if the rate with
the loader is below 90% of the synthetic rate; ``host (Python/launch)`` if the GPU is busy less
than 80% of a synthetic step; ``memory bandwidth`` if GEMM/convolution kernels take less than half
of the kernel time (the rest is elementwise, normalisation and reduction work, bound by memory);
``compute`` otherwise.

Achieved FLOP/s: images/s x training FLOPs per image, by the project's convention (6 x fvcore
multiply-adds, algoprogress.flops) and by the measured count (FlopCounterMode of a real training
step). MFU: achieved / the device's peak dense bf16 FLOP/s (--peak-tflops, or from the device's name:
H100 SXM and H200 989, H100 PCIe 756, A100 312).

Goal (issue 12): ResNet-50 at 176 px, bf16, channels-last, one H100: at least 6,000 images/s.

    python bench/train_throughput.py --arch resnet50 --resolution 176 --batch-size 256 --images 20000 \
        [--compile] --json results.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata as md
import json
import os
import platform
import re
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
from algoprogress.flops import TRAINING_FLOP_PER_MULTIPLY_ADD, count_multiply_adds, measure_training_step_flops

PAPER_AND_LATER = ["alexnet", "vgg11", "googlenet", "resnet18", "resnet50", "squeezenet1_1", "mobilenet_v1",
                   "mobilenet_v2", "shufflenet_v1", "shufflenet_v2_x1_0", "efficientnet_b0", "regnet_y_400mf",
                   "convnext_tiny", "vit_b_16"]
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0}
MATMUL_OR_CONV = re.compile(r"gemm|xmma|cutlass|nvjet|conv|fprop|dgrad|wgrad|winograd|fmha|flash|sdpa", re.I)
NOT_MATMUL = re.compile(r"bn_|batch_?norm|layer_?norm|elementwise|reduce|softmax", re.I)


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
        prepare_dataset(config["dataset"], path, folder / f"val-{images}.beton", folder / "manifest.json", workers)
    return path


def model_kwargs(arch: str, resolution: int) -> dict:
    return {"image_size": resolution} if arch.startswith("vit_") else {}


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():  # "H100 PCIe" before "H100"
        if key in device_name:
            return value
    return None


def profile_steps(step, steps: int = 6) -> dict:
    """GPU busy fraction and the GEMM/convolution share of kernel time over ``steps`` synthetic steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        started = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        wall_us = (time.perf_counter() - started) * 1e6
    # kernels only: the optimizer's GPU-side annotation ("Optimizer.step#SGD.step") spans kernels counted already
    kernels = [e for e in prof.key_averages()
               if e.device_type == torch.autograd.DeviceType.CUDA and not e.key.startswith("Optimizer.")]
    total = sum(e.self_device_time_total for e in kernels)
    matmul = sum(e.self_device_time_total for e in kernels
                 if MATMUL_OR_CONV.search(e.key) and not NOT_MATMUL.search(e.key))
    top = sorted(kernels, key=lambda e: -e.self_device_time_total)[:5]
    return {"gpu_busy": total / wall_us, "matmul_conv_share": matmul / total if total else None,
            "top_kernels": [{"name": e.key[:120], "share": e.self_device_time_total / total} for e in top]}


def limiter(result: dict) -> str:
    if result["images_per_second"] < 0.9 * result["images_per_second_synthetic"]:
        return "loader"
    profile = result.get("profile")
    if profile is None:
        return "n/a (no GPU profile)"
    if profile["gpu_busy"] < 0.8:
        return "host (Python/launch)"
    if profile["matmul_conv_share"] is not None and profile["matmul_conv_share"] < 0.5:
        return "memory bandwidth"
    return "compute"


def measure(arch: str, path: Path, resolution: int, batch_size: int, steps: int, warmup: int, workers: int,
            compile_model: bool) -> dict:
    import torch

    from algoprogress.architectures import build_model
    from algoprogress.loaders import train_loader

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    if cuda:  # the previous model's memory back, its peak forgotten
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.backends.cudnn.benchmark = True
    loader, _ = train_loader(str(path), batch_size, resolution, workers, 0, device, random_resized_crop=True,
                             flip=True, crop_min_scale=0.08)
    model = build_model(arch, 1000, model_kwargs(arch, resolution)).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_model and cuda else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-5)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    def train_step(images, labels, check: bool = False) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            output = step_model(images)
            loss = criterion(output.logits if hasattr(output, "logits") else output, labels)
        if check:  # what algoprogress.training does every step: both wait for the GPU
            float(loss.item())
            bool(torch.isfinite(loss))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def batches():
        epoch = 0
        while True:
            loader.next_epoch = epoch
            yield from loader
            epoch += 1

    def rate(source, check: bool = False) -> float:
        for _ in range(warmup):
            train_step(*next(source), check)
        sync()
        windows = []
        for chunk in np.array_split(np.arange(steps), 5):
            started = time.perf_counter()
            for _ in chunk:
                train_step(*next(source), check)
            sync()
            windows.append(len(chunk) * batch_size / (time.perf_counter() - started))
        return statistics.median(windows)

    stream = batches()
    with_loader = rate(stream)
    with_sync = rate(stream, check=True)
    fixed = next(stream)

    def repeat():
        while True:
            yield fixed

    synthetic = rate(repeat())
    profile = profile_steps(lambda: train_step(*fixed)) if cuda else None
    macs = count_multiply_adds(arch, 1000, resolution, model_kwargs(arch, resolution))["multiply_adds_per_image"]
    measured = measure_training_step_flops(arch, 1000, resolution, model_kwargs(arch, resolution))
    result = {"arch": arch, "resolution": resolution, "batch_size": batch_size, "timed_steps": steps,
              "compile": compile_model and cuda, "images_per_second": with_loader,
              "images_per_second_sync_each_step": with_sync, "images_per_second_synthetic": synthetic,
              "sync_each_step_cost": 1 - with_sync / with_loader,
              "training_flops_per_image": TRAINING_FLOP_PER_MULTIPLY_ADD * macs,
              "training_flops_per_image_measured": measured, "profile": profile,
              "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
              "device": torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)"}
    result["limited_by"] = limiter(result)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", action="append", default=None,
                        help="repeatable; default: the paper's architectures and three later ones")
    parser.add_argument("--resolution", type=int, default=176)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per rate")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (numba, cudnn autotuning)")
    parser.add_argument("--images", type=int, default=4000, help="JPEG files to write")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (GPU)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak dense bf16 TFLOP/s, for MFU (default: from the device's name)")
    parser.add_argument("--folder", default="bench/.data", help="where the JPEG files and .beton are kept")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    import torch

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = beton(folder, args.images, args.workers)
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    peak = args.peak_tflops or peak_tflops(device_name)
    meta = {"date": dt.date.today().isoformat(), "machine": platform.node(), "python": platform.python_version(),
            "versions": {n: md.version(n) for n in ("torch", "torchvision", "ffcv", "fvcore", "numba")},
            "cuda": torch.version.cuda, "device": device_name, "cpus": os.cpu_count(), "peak_bf16_tflops": peak,
            "compile": args.compile, "settings": vars(args), "results": []}
    for arch in args.arch or PAPER_AND_LATER:
        try:
            result = measure(arch, path, args.resolution, args.batch_size, args.steps, args.warmup, args.workers,
                             args.compile)
        except Exception as error:  # one model's failure (memory, compile) must not lose the others' figures
            print(f"{arch}: failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}", flush=True)
            meta["results"].append({"arch": arch, "error": f"{type(error).__name__}: {error}"[:2000]})
            continue
        for key, flops in (("", "training_flops_per_image"), ("_measured", "training_flops_per_image_measured")):
            achieved = result["images_per_second"] * result[flops]
            result[f"achieved_tflops{key}"] = achieved / 1e12
            result[f"mfu{key}"] = achieved / (peak * 1e12) if peak else None
        meta["results"].append(result)
        mfu = f", MFU {result['mfu']:.1%} ({result['mfu_measured']:.1%} measured count)" if peak else ""
        profile = result["profile"]
        busy = f", GPU busy {profile['gpu_busy']:.0%}, GEMM/conv {profile['matmul_conv_share']:.0%}" if profile else ""
        print(f"{arch} at {args.resolution} px, batch {args.batch_size}, compile {result['compile']} on "
              f"{result['device']}: {result['images_per_second']:,.0f} images/s (synthetic "
              f"{result['images_per_second_synthetic']:,.0f}; sync each step "
              f"{result['images_per_second_sync_each_step']:,.0f}, cost {result['sync_each_step_cost']:.1%}), "
              f"{result['achieved_tflops']:.1f} TFLOP/s{mfu}{busy}; limited by {result['limited_by']}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(meta, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
