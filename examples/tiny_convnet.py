"""An architecture of your own, measured beside the library's: a small convolutional network.

Add it to a config as

    - name: tiny_convnet
      arch: "file:examples/tiny_convnet.py:tiny_convnet"   # relative to the workflow directory
      published: "2026-11-22"
      kwargs: {width: 32}

The workflow calls ``tiny_convnet(num_classes=..., **kwargs)`` and trains what it returns, from
scratch (count_flops builds it first, on CPU, at each training resolution: a file that does not import
or a model that does not build stops there, in one line). The file's content is part of the model's
settings: editing it recounts and retrains this model, and only it. This is code you chose to run.
"""

from torch import nn


def tiny_convnet(num_classes: int, width: int = 16) -> nn.Module:
    def block(channels_in: int, channels_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
                             nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True), nn.MaxPool2d(2))

    return nn.Sequential(block(3, width), block(width, 2 * width), block(2 * width, 4 * width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))
