"""FFCV loaders, as pipelines of stages (after FFCV's ImageNet example).

On CUDA the order is FFCV's: decode -> flip -> to tensor -> to device -> to image (channels_last)
-> normalise on the GPU. On CPU, normalisation comes right after decoding (and flipping): in the
example's order FFCV's ``Loader`` never returns on CPU (FFCV issue #350).
"""

from __future__ import annotations

import numpy as np

# ImageNet statistics on the 0-255 scale, as FFCV's NormalizeImage expects.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


def _image_pipeline(decoder, device, flip_seed: int | None) -> list:
    """The image's stages; with ``flip_seed``, random horizontal flips that seed decides."""
    from ffcv.transforms import NormalizeImage, ToDevice, ToTensor, ToTorchImage

    from algoprogress.augmentations import SeededRandomHorizontalFlip

    stages = [decoder] + ([SeededRandomHorizontalFlip(flip_seed)] if flip_seed is not None else [])
    if device.type == "cuda":
        return stages + [
            ToTensor(),
            ToDevice(device, non_blocking=True),
            ToTorchImage(),
            NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, np.float32),
        ]
    return stages + [NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, np.float32), ToTensor(), ToTorchImage()]


def _label_pipeline(device) -> list:
    from ffcv.fields.decoders import IntDecoder
    from ffcv.transforms import Squeeze, ToDevice, ToTensor

    stages = [IntDecoder(), ToTensor(), Squeeze()]
    return stages + ([ToDevice(device, non_blocking=True)] if device.type == "cuda" else [])


def train_loader(
    path: str,
    batch_size: int,
    resolution: int,
    workers: int,
    seed: int,
    device,
    random_resized_crop: bool = False,
    flip: bool = False,
    distributed: bool = False,
    crop_min_scale: float = 0.35,
):
    """(loader, decoder): shuffled (seeded, so a rerun sees the same order), full batches only; random crops and
    flips, if asked for, decided by the seed too (``augmentations``), so a rerun sees the same images.

    Setting ``decoder.output_size`` before an epoch changes the training resolution (progressive
    resizing, as in FFCV's ImageNet example). With ``distributed``, each process of a torchrun job
    gets its share of every batch (FFCV's distributed order; ``batch_size`` is per process).
    """
    from ffcv.fields.decoders import CenterCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption

    from algoprogress.augmentations import SeededRandomResizedCrop

    if random_resized_crop:
        decoder = SeededRandomResizedCrop((resolution, resolution), seed, scale=(crop_min_scale, 1.0))
    else:
        decoder = CenterCropRGBImageDecoder((resolution, resolution), ratio=1.0)
    loader = Loader(
        str(path),
        batch_size=batch_size,
        num_workers=workers,
        order=OrderOption.RANDOM,
        seed=seed,
        drop_last=True,
        distributed=distributed,
        pipelines={"image": _image_pipeline(decoder, device, seed if flip else None), "label": _label_pipeline(device)},
    )
    return loader, decoder


def val_loader(path: str, batch_size: int, resolution: int, workers: int, device, crop_ratio: float = 1.0,
               indices=None):
    """Validation images in file order (``indices``: a subset, e.g. one process's share), centre crop
    of ``crop_ratio`` of the shorter side, resized to ``resolution``."""
    from ffcv.fields.decoders import CenterCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption

    decoder = CenterCropRGBImageDecoder((resolution, resolution), ratio=crop_ratio)
    return Loader(
        str(path),
        batch_size=batch_size,
        num_workers=workers,
        order=OrderOption.SEQUENTIAL,
        drop_last=False,
        indices=indices,
        pipelines={"image": _image_pipeline(decoder, device, flip_seed=None), "label": _label_pipeline(device)},
    )


def image_count(path: str) -> int:
    """The number of images in a ``.beton`` file (its header)."""
    from ffcv.reader import Reader

    return int(Reader(str(path)).num_samples)
