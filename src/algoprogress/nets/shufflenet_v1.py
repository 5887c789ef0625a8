"""ShuffleNet v1 (Zhang et al. 2017, arXiv:1707.01083), as in the paper's Table 1 and Figure 2.

A 3x3 convolution (24 channels, stride 2) and 3x3 max pooling, then three stages of 4, 8 and 4
ShuffleNet units, global average pooling and one linear layer. A unit: 1x1 group convolution to a
quarter of its output width, channel shuffle, 3x3 depthwise convolution, 1x1 group convolution; the
first unit of a stage has stride 2, an average-pooled shortcut and concatenation. As in the paper,
the first 1x1 convolution of the first stage is not grouped (its input has only 24 channels), and
there is no ReLU after the depthwise convolution. With 3 groups and width 1x at 224 px and 1,000
classes: 140 M multiply-adds (Table 2); a test checks it.
"""

from __future__ import annotations

import torch
from torch import nn

from algoprogress.nets import initialise

# output channels of stages 2-4 for width 1x, by number of groups (Table 1)
STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
                  8: (384, 768, 1536)}
STAGE_REPEATS = (4, 8, 4)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


class ShuffleUnit(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int, groups: int, group_first: bool):
        super().__init__()
        self.stride, self.groups = stride, groups
        branch_out = outputs - inputs if stride == 2 else outputs  # stride 2 concatenates the shortcut
        mid = outputs // 4
        first_groups = groups if group_first else 1
        self.compress = nn.Sequential(nn.Conv2d(inputs, mid, 1, groups=first_groups, bias=False),
                                      nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
        self.shuffle_groups = first_groups
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
                                       nn.BatchNorm2d(mid))
        self.expand = nn.Sequential(nn.Conv2d(mid, branch_out, 1, groups=groups, bias=False),
                                    nn.BatchNorm2d(branch_out))
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.compress(x)
        if self.shuffle_groups > 1:
            branch = channel_shuffle(branch, self.shuffle_groups)
        branch = self.expand(self.depthwise(branch))
        if self.stride == 2:
            return torch.relu(torch.cat([self.shortcut(x), branch], 1))
        return torch.relu(x + branch)


class ShuffleNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, groups: int = 3, width_mult: float = 1.0):
        super().__init__()
        if groups not in STAGE_CHANNELS:
            raise ValueError(f"groups: {groups} is not one of the paper's {sorted(STAGE_CHANNELS)}")
        stem = int(24 * width_mult)
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        units, channels = [], stem
        for stage, (width, repeats) in enumerate(zip(STAGE_CHANNELS[groups], STAGE_REPEATS, strict=True)):
            outputs = int(width * width_mult)
            for index in range(repeats):
                units.append(ShuffleUnit(channels, outputs, 2 if index == 0 else 1, groups,
                                         group_first=not (stage == 0 and index == 0)))
                channels = outputs
        self.stages = nn.Sequential(*units)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        initialise(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.stages(self.stem(x))), 1))
