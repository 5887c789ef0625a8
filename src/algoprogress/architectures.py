"""Architectures by name, built untrained for a given class count. A model's ``arch`` is one of:

- a torchvision image classifier (``resnet18``) or one of the paper's two that torchvision lacks
  (``mobilenet_v1``, ``shufflenet_v1``; ``algoprogress.nets``);
- ``timm:<name>``, a model of PyTorch Image Models (``timm:mobilenetv4_conv_small``), never with
  pretrained weights;
- ``file:<path>:<callable>``, a callable in the user's own Python file that takes ``num_classes`` and
  keyword arguments and returns a ``torch.nn.Module`` (the path relative to the workflow directory, or
  absolute). Running it runs the user's code: it is code the user chose to run, like the config.

The torchvision and timm names are listed here without importing either (``timm_models.txt`` holds
timm's list, pinned with its version), so that a config is checked while the Snakefile parses. Tests
keep both lists equal to the installed libraries'.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from pathlib import Path

TORCHVISION_CLASSIFIERS = (
    "alexnet",
    "convnext_base",
    "convnext_large",
    "convnext_small",
    "convnext_tiny",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_l",
    "efficientnet_v2_m",
    "efficientnet_v2_s",
    "googlenet",
    "inception_v3",
    "maxvit_t",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "regnet_x_16gf",
    "regnet_x_1_6gf",
    "regnet_x_32gf",
    "regnet_x_3_2gf",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_8gf",
    "regnet_y_128gf",
    "regnet_y_16gf",
    "regnet_y_1_6gf",
    "regnet_y_32gf",
    "regnet_y_3_2gf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_8gf",
    "resnet101",
    "resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "resnext50_32x4d",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "swin_b",
    "swin_s",
    "swin_t",
    "swin_v2_b",
    "swin_v2_s",
    "swin_v2_t",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vit_b_16",
    "vit_b_32",
    "vit_h_14",
    "vit_l_16",
    "vit_l_32",
    "wide_resnet101_2",
    "wide_resnet50_2",
)

# name -> "module:class" in algoprogress.nets; constructors take num_classes and keyword arguments
OWN_ARCHITECTURES = {
    "mobilenet_v1": "mobilenet_v1:MobileNetV1",
    "shufflenet_v1": "shufflenet_v1:ShuffleNetV1",
}

KNOWN_ARCHITECTURES = tuple(sorted(TORCHVISION_CLASSIFIERS + tuple(OWN_ARCHITECTURES)))

TIMM_PREFIX, FILE_PREFIX = "timm:", "file:"
_TIMM_LIST = Path(__file__).with_name("timm_models.txt")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ModelSourceError(ValueError):
    """A user's model file that cannot be imported, or whose callable does not build a model."""


@functools.lru_cache(maxsize=1)
def timm_models() -> tuple[str, tuple[str, ...]]:
    """(timm version, its model names) as pinned in timm_models.txt."""
    lines = _TIMM_LIST.read_text().splitlines()
    return lines[0].split()[2].rstrip(":"), tuple(line for line in lines[1:] if line)


def split_file_arch(arch: str) -> tuple[str, str]:
    """``file:<path>:<callable>`` -> (path, callable)."""
    path, _, name = arch[len(FILE_PREFIX):].rpartition(":")
    return path, name


def _did_you_mean(name: str, choices, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, choices, n=3)
    return f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""


def check_arch(arch: str) -> str | None:
    """Why ``arch`` cannot name an architecture (one line), or None; imports neither torch nor timm."""
    if arch.startswith(TIMM_PREFIX):
        name = arch[len(TIMM_PREFIX):]
        version, names = timm_models()
        if name not in names:
            return f"unknown timm model {name!r} (timm {version}){_did_you_mean(name, names, TIMM_PREFIX)}"
        return None
    if arch.startswith(FILE_PREFIX):
        path, name = split_file_arch(arch)
        if not path.endswith(".py") or not _IDENTIFIER.match(name):
            return f"{arch!r}: expected file:<path to a .py file>:<callable name>"
        return None
    if arch not in KNOWN_ARCHITECTURES:
        return (f"unknown architecture {arch!r}{_did_you_mean(arch, KNOWN_ARCHITECTURES)} "
                "(or timm:<name>, or file:<path>:<callable>)")
    return None


def source_file(arch: str, base_dir: str | Path) -> Path | None:
    """The user file a ``file:`` architecture names, resolved against ``base_dir`` (None for others)."""
    if not arch.startswith(FILE_PREFIX):
        return None
    path = Path(split_file_arch(arch)[0])
    return path if path.is_absolute() else Path(base_dir) / path


def own_source_file(arch: str) -> Path | None:
    """The file in ``algoprogress.nets`` an in-repo architecture is defined in (None for others)."""
    if arch not in OWN_ARCHITECTURES:
        return None
    return Path(__file__).with_name("nets") / f"{OWN_ARCHITECTURES[arch].split(':')[0]}.py"


def source_digest(path: str | Path) -> str:
    """SHA-256 of a model file's content (a user's, or an in-repo network's): part of the model's params, so
    changing the file retrains that model."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _build_from_file(arch: str, num_classes: int, kwargs: dict, source: str | Path | None):
    import importlib.util

    import torch

    path, name = split_file_arch(arch)
    location = Path(source) if source is not None else Path(path)
    where = f"{location}: {name}"
    try:
        spec = importlib.util.spec_from_file_location(f"algoprogress_user_model_{location.stem}", location)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:  # the user's code: any failure is reported in one line
        raise ModelSourceError(f"{location}: does not import ({type(error).__name__}: {error})") from None
    constructor = getattr(module, name, None)
    if not callable(constructor):
        raise ModelSourceError(f"{where}: no such callable in the file")
    try:
        model = constructor(num_classes=num_classes, **kwargs)
    except Exception as error:
        raise ModelSourceError(f"{where}: building the model failed ({type(error).__name__}: {error})") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelSourceError(f"{where}: returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_model(arch: str, num_classes: int, kwargs: dict | None = None, source: str | Path | None = None):
    """A freshly initialised (untrained) model; ``kwargs`` go to the constructor. ``source``: where a
    ``file:`` architecture's file is (its path as written is relative to the workflow directory)."""
    problem = check_arch(arch)
    if problem:
        raise ValueError(problem)
    if arch.startswith(FILE_PREFIX):
        return _build_from_file(arch, num_classes, kwargs or {}, source)
    if arch.startswith(TIMM_PREFIX):
        import timm

        return timm.create_model(arch[len(TIMM_PREFIX):], pretrained=False, num_classes=num_classes, **(kwargs or {}))
    if arch in OWN_ARCHITECTURES:
        import importlib

        module, name = OWN_ARCHITECTURES[arch].split(":")
        constructor = getattr(importlib.import_module(f"algoprogress.nets.{module}"), name)
        return constructor(num_classes=num_classes, **(kwargs or {}))
    import torchvision

    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **(kwargs or {}))
