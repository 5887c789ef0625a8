"""Architectures of the paper that torchvision does not ship, written from their papers."""

from torch import nn


def initialise(model: nn.Module) -> None:
    """torchvision's initialisation of its convolutional classifiers: He-normal convolutions (fan out),
    batch norm at identity, small normal linear layers."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
