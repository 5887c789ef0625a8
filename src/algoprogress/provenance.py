"""How a curve was made, for its metadata: package versions, the code's git revision, the hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from algoprogress.distributed import Distributed

REPOSITORY = Path(__file__).resolve().parents[2]


def package_versions() -> dict:
    import importlib.metadata as md

    names = ("torch", "torchvision", "ffcv", "fvcore", "numpy", "numba", "pandas", "pyarrow")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def source_revision() -> dict:
    """The git commit of the workflow's code, and whether it had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPOSITORY), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def cpu_model() -> str:
    """The CPU's model name as lscpu gives it: /proc/cpuinfo's "model name" (x86), else lscpu's "Model name" (Arm
    machines' cpuinfo has none: "Neoverse-V2"), else the architecture (platform.processor() is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                                 env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    for line in listing.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware(device, dist: Distributed) -> dict:
    """The device a curve was trained on, and the CPU's model either way: on a CPU its kernels make the numbers
    (the same seed gives another curve on an Intel Xeon than on an AMD EPYC), on a GPU box it decodes the data."""
    import torch

    if device.type == "cuda":
        used = {"device": "cuda", "gpu_model": torch.cuda.get_device_name(device), "gpus": dist.world_size,
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    else:
        used = {"device": "cpu", "gpus": 0, "processes": dist.world_size}
    return {**used, "cpu": cpu_model()}
