"""MobileNet v1 (Howard et al. 2017, arXiv:1704.04861), as in the paper's Table 1.

A 3x3 convolution then 13 depthwise-separable blocks (3x3 depthwise, 1x1 pointwise; batch norm and
ReLU after each), global average pooling and one linear layer. With width 1.0 at 224 px and 1,000
classes: 569 M multiply-adds and 4.2 M parameters (paper, Table 8); tests check both.
"""

from __future__ import annotations

import torch
from torch import nn

from algoprogress.nets import initialise

# (output channels, stride) of the depthwise-separable blocks, Table 1
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _conv_bn_relu(inputs: int, outputs: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.0):
        super().__init__()
        def width(channels):
            return max(8, int(channels * width_mult))

        layers = [_conv_bn_relu(3, width(32), 3, 2)]
        channels = width(32)
        for outputs, stride in BLOCKS:
            layers += [_conv_bn_relu(channels, channels, 3, stride, groups=channels),  # depthwise
                       _conv_bn_relu(channels, width(outputs), 1, 1)]  # pointwise
            channels = width(outputs)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        initialise(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
