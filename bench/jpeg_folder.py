"""Real JPEG files for the benchmarks: an ImageFolder of ImageNet-like sizes (written once, reused).

Images are smooth random colour fields with noise and shapes (so that JPEG sizes and decoding costs
are like photographs', unlike pure noise), of varied sizes around ImageNet's mean (about 400 x 350),
saved as JPEG quality 90. Each image is a function of (seed, index) alone, so the folder is the same
whatever the number of processes that write it.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def write_image(root: Path, index: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng([seed, index])
    folder = root / f"class{index % classes:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    width, height = int(rng.integers(300, 500)), int(rng.integers(250, 450))
    small = rng.integers(0, 255, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(10, 80))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    image = image.filter(ImageFilter.GaussianBlur(1))
    noisy = np.asarray(image, dtype=np.int16) + rng.integers(-12, 12, (height, width, 3))
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / f"{index:06d}.jpg", quality=90)


def _write_range(root: Path, start: int, stop: int, classes: int, seed: int) -> None:
    for index in range(start, stop):
        write_image(root, index, classes, seed)


def write_jpeg_folder(root: str | Path, images: int = 2000, classes: int = 10, seed: int = 0,
                      processes: int | None = None) -> Path:
    root = Path(root)
    marker = root / f".complete-{images}-{classes}-{seed}"
    if marker.exists():
        return root
    processes = max(1, min(processes or os.cpu_count() or 1, images))
    bounds = np.linspace(0, images, processes + 1).astype(int)
    with ProcessPoolExecutor(processes) as pool:
        for done in [pool.submit(_write_range, root, int(a), int(b), classes, seed)
                     for a, b in zip(bounds[:-1], bounds[1:], strict=True)]:
            done.result()
    marker.touch()
    return root
