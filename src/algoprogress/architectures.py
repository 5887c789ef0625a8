"""Architectures by name: torchvision's image classifiers and the paper's two that torchvision lacks
(MobileNet v1, ShuffleNet v1; ``algoprogress.nets``), built for a given class count.

The names are listed here, without importing torchvision, so that a config can be checked while the
Snakefile parses (its environment need not have PyTorch). A test keeps the list equal to
``torchvision.models.list_models(module=torchvision.models)`` of the pinned torchvision.
"""

from __future__ import annotations

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


def build_model(arch: str, num_classes: int, kwargs: dict | None = None):
    """A freshly initialised (untrained) model; ``kwargs`` go to the torchvision constructor."""
    if arch not in KNOWN_ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}")
    if arch in OWN_ARCHITECTURES:
        import importlib

        module, name = OWN_ARCHITECTURES[arch].split(":")
        constructor = getattr(importlib.import_module(f"algoprogress.nets.{module}"), name)
        return constructor(num_classes=num_classes, **(kwargs or {}))
    import torchvision

    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **(kwargs or {}))
