"""Training compute, by one convention (Hernandez & Brown 2020, after Amodei & Hernandez 2018).

* fvcore counts the **multiply-adds** of one forward pass of one image (batch of one, eval mode)
  at the training resolution and class count. It counts convolutions, linear layers, matrix
  products and batch-norm; element-wise operations (ReLU, additions, pooling) are not counted.
* One multiply-add is **2 FLOP**.
* A training step costs **3x** the forward pass (forward, plus a backward of about twice the
  forward).
* Training FLOPs after N training images = 2 x 3 x multiply-adds per image x N.
  Evaluation passes are not training compute and are not included.

So ``train_flops = TRAINING_FLOP_PER_MULTIPLY_ADD * multiply_adds_per_image * images_seen``.
"""

from __future__ import annotations

import logging

FLOP_PER_MULTIPLY_ADD = 2
TRAINING_PASSES_PER_FORWARD = 3
TRAINING_FLOP_PER_MULTIPLY_ADD = FLOP_PER_MULTIPLY_ADD * TRAINING_PASSES_PER_FORWARD
PETAFLOP_S_DAY = 1e15 * 24 * 3600

CONVENTION = (
    "train_flops = 2 FLOP per multiply-add x 3 (forward + backward) x fvcore forward "
    "multiply-adds per image x images seen; evaluation excluded"
)


def training_flops(multiply_adds_per_image: float, images_seen):
    """Training FLOPs after ``images_seen`` training images (scalar or array)."""
    return TRAINING_FLOP_PER_MULTIPLY_ADD * multiply_adds_per_image * images_seen


def to_petaflop_s_days(flops):
    return flops / PETAFLOP_S_DAY


def count_multiply_adds(arch: str, num_classes: int, resolution: int, kwargs: dict | None = None) -> dict:
    """fvcore's forward multiply-add count of one image, with what it left uncounted."""
    import fvcore
    import torch
    from fvcore.nn import FlopCountAnalysis

    from algoprogress.architectures import build_model

    torch.manual_seed(0)
    model = build_model(arch, num_classes, kwargs).eval()
    image = torch.zeros(1, 3, resolution, resolution)
    analysis = FlopCountAnalysis(model, image)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    total = int(analysis.total())
    return {
        "arch": arch,
        "num_classes": num_classes,
        "resolution": resolution,
        "kwargs": kwargs or {},
        "multiply_adds_per_image": total,
        "training_flops_per_image": training_flops(total, 1),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "by_operator": {op: int(n) for op, n in sorted(analysis.by_operator().items())},
        "uncounted_operators": sorted(analysis.unsupported_ops()),
        "counter": f"fvcore {getattr(fvcore, '__version__', 'unknown')}",
        "convention": CONVENTION,
    }
