"""Real JPEG files for the benchmarks: an ImageFolder of ImageNet-like sizes (written once, reused).

Images are smooth random colour fields with noise and shapes (so that JPEG sizes and decoding costs
are like photographs', unlike pure noise), of varied sizes around ImageNet's mean (about 400 x 350),
saved as JPEG quality 90.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def write_jpeg_folder(root: str | Path, images: int = 2000, classes: int = 10, seed: int = 0) -> Path:
    root = Path(root)
    marker = root / f".complete-{images}-{classes}-{seed}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for index in range(images):
        label = index % classes
        folder = root / f"class{label:03d}"
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
    marker.touch()
    return root
