"""Training compute, by one convention (Hernandez & Brown 2020, after Amodei & Hernandez 2018).

* fvcore counts the **multiply-adds** of one forward pass of one image (batch of one, eval mode)
  at the training resolution and class count. It counts convolutions, linear layers, matrix
  products and batch-norm; element-wise operations (ReLU, additions, pooling) are not counted.
* One multiply-add is **2 FLOP**.
* A training step costs **3x** the forward pass (forward, plus a backward of about twice the
  forward).
* Training FLOPs after N training images = 2 x 3 x multiply-adds per image x N.
  Evaluation passes are not training compute and are not included.

So ``train_flops = TRAINING_FLOP_PER_MULTIPLY_ADD * multiply_adds_per_image * images_seen``, summed
over training steps at the resolution of each (progressive resizing changes the cost per image).

Cross-check: torch's ``FlopCounterMode`` measures the FLOPs of a real training step (model in
training mode, forward, cross-entropy, backward) at every training resolution; it counts 2 FLOP per
multiply-add and includes the backward pass, so it is directly comparable with the convention (it
counts matrix products and convolutions only; the backward pass skips the input gradient of the
first layer, so it is usually a few percent below 3x the forward). torch's own formula for the
convolution backward ignores ``groups`` in the weight gradient and so overcounts depthwise and group
convolutions by their group count (MobileNet v2: 20x the forward instead of about 2x); here the
backward of a convolution is counted as what it computes: one forward-sized product per gradient
asked for (input, weight).

Fused attention: fvcore has no handle for ``aten::scaled_dot_product_attention`` (timm's and
torchvision's transformers call it), so one is added here: for queries (..., L, E), keys
(..., S, E) and values (..., S, Ev), L x S x (E + Ev) multiply-adds per batch and head (the two
matrix products; the softmax is element-wise, not counted). Models that re-parameterise for inference
(MobileOne, RepViT, FastViT) are counted as built, in their training form: training compute is
what the convention measures. Where the two counters disagree by more than ``DISAGREEMENT`` (10%),
count_flops says so and the count records ``disagreement``.
"""

from __future__ import annotations

import logging
import warnings

from algoprogress import versions

FLOP_PER_MULTIPLY_ADD = 2
TRAINING_PASSES_PER_FORWARD = 3
TRAINING_FLOP_PER_MULTIPLY_ADD = FLOP_PER_MULTIPLY_ADD * TRAINING_PASSES_PER_FORWARD
PETAFLOP_S_DAY = 1e15 * 24 * 3600

CONVENTION = (
    "train_flops = 2 FLOP per multiply-add x 3 (forward + backward) x fvcore forward "
    "multiply-adds per image x images seen; evaluation excluded"
)


DISAGREEMENT = 0.10


def _attention_multiply_adds(inputs, outputs):
    """fvcore handle of aten::scaled_dot_product_attention: L x S x (E + Ev) per batch and head."""
    from fvcore.nn.jit_handles import get_shape

    query, key, value = (get_shape(inputs[i]) for i in range(3))
    batch_heads = 1
    for size in query[:-2]:
        batch_heads *= size
    length, source, embedding, value_embedding = query[-2], key[-2], query[-1], value[-1]
    return batch_heads * length * source * (embedding + value_embedding)


def training_flops(multiply_adds_per_image: float, images_seen):
    """Training FLOPs after ``images_seen`` training images (scalar or array)."""
    return TRAINING_FLOP_PER_MULTIPLY_ADD * multiply_adds_per_image * images_seen


def to_petaflop_s_days(flops):
    return flops / PETAFLOP_S_DAY


def _convolution_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                                _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """Each gradient of a convolution (input, weight) costs what its forward costs, groups included."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def measure_training_step_flops(arch: str, num_classes: int, resolution: int, kwargs: dict | None = None,
                                batch: int = 2, source=None) -> float:
    """FLOPs per image of one real training step (forward, loss, backward) by torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from algoprogress.architectures import build_model

    torch.manual_seed(0)
    model = build_model(arch, num_classes, kwargs, source).train()
    images = torch.randn(batch, 3, resolution, resolution)
    labels = torch.arange(batch) % num_classes
    fixed = {torch.ops.aten.convolution_backward: _convolution_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=fixed) as counter:
        output = model(images)
        logits = output.logits if hasattr(output, "logits") else output
        torch.nn.functional.cross_entropy(logits, labels).backward()
    return counter.get_total_flops() / batch


def count_at_resolutions(arch: str, num_classes: int, resolutions, kwargs: dict | None = None,
                         source=None) -> dict:
    """fvcore's count and the FlopCounterMode cross-check at each resolution (the count_flops output);
    ``source``: a user model's file (algoprogress.architectures)."""
    resolutions = sorted({int(r) for r in resolutions})
    by_resolution = {}
    for resolution in resolutions:
        counts = count_multiply_adds(arch, num_classes, resolution, kwargs, source)
        measured = measure_training_step_flops(arch, num_classes, resolution, kwargs, source=source)
        ratio = measured / counts["training_flops_per_image"] if counts["training_flops_per_image"] else float("nan")
        by_resolution[str(resolution)] = {
            "multiply_adds_per_image": counts["multiply_adds_per_image"],
            "training_flops_per_image": counts["training_flops_per_image"],
            "measured_training_flops_per_image": measured,
            "measured_over_convention": ratio,
            "disagreement": None if abs(ratio - 1) <= DISAGREEMENT else (
                f"FlopCounterMode measures {ratio:.2f}x the convention's count (more than "
                f"{DISAGREEMENT:.0%} apart; operators fvcore left uncounted: "
                f"{', '.join(counts['uncounted_operators']) or 'none'})"),
            "by_operator": counts["by_operator"],
            "uncounted_operators": counts["uncounted_operators"],
        }
    import torch

    return {
        "arch": arch,
        "num_classes": num_classes,
        "kwargs": kwargs or {},
        "parameters": counts["parameters"],
        "by_resolution": by_resolution,
        "counter": counts["counter"],
        "cross_check": f"torch.utils.flop_counter.FlopCounterMode (torch {torch.__version__}), one training step",
        "convention": CONVENTION,
        "version": versions.FLOP_COUNT,
    }


def merge_counts(counts: list[dict]) -> dict:
    """Several count_flops outputs (the workflow writes one per resolution) as one: their
    ``by_resolution`` entries together. They must count the same network."""
    network = [(c["arch"], c["num_classes"], c["kwargs"]) for c in counts]
    if any(other != network[0] for other in network[1:]):
        raise ValueError(f"FLOP counts of different networks cannot be merged: {sorted(set(map(str, network)))}")
    by_resolution = {r: entry for c in counts for r, entry in c["by_resolution"].items()}
    return {**counts[0], "by_resolution": {r: by_resolution[r] for r in sorted(by_resolution, key=int)}}


def per_image_costs(counts: dict) -> tuple[dict[int, int], dict[int, float]]:
    """(fvcore multiply-adds, measured training FLOPs) per image, by resolution, from count_flops' JSON."""
    table = counts["by_resolution"]
    return ({int(r): v["multiply_adds_per_image"] for r, v in table.items()},
            {int(r): v["measured_training_flops_per_image"] for r, v in table.items()})


def count_multiply_adds(arch: str, num_classes: int, resolution: int, kwargs: dict | None = None,
                        source=None) -> dict:
    """fvcore's forward multiply-add count of one image, with what it left uncounted."""
    import fvcore
    import torch

    with warnings.catch_warnings():  # fvcore.nn scripts its focal loss at import, which torch calls deprecated
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is ", category=FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    from algoprogress.architectures import build_model

    torch.manual_seed(0)
    model = build_model(arch, num_classes, kwargs, source).eval()
    image = torch.zeros(1, 3, resolution, resolution)
    analysis = FlopCountAnalysis(model, image).set_op_handle("aten::scaled_dot_product_attention",
                                                              _attention_multiply_adds)
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


def count_table(counts_by_model: dict[str, list[dict]]):
    """One row per model and resolution from count_flops' JSON files: both counters, their ratio,
    the operators fvcore left uncounted and the disagreement (over 10%) if any (the report's table)."""
    import pandas as pd

    rows = []
    for model, counts in counts_by_model.items():
        merged = merge_counts(counts)
        for resolution, entry in merged["by_resolution"].items():
            rows.append({
                "model": model,
                "arch": merged["arch"],
                "resolution": int(resolution),
                "parameters": merged["parameters"],
                "multiply_adds_per_image": entry["multiply_adds_per_image"],
                "training_flops_per_image": entry["training_flops_per_image"],
                "measured_training_flops_per_image": entry["measured_training_flops_per_image"],
                "measured_over_convention": entry["measured_over_convention"],
                "uncounted_operators": " ".join(entry["uncounted_operators"]),
                "disagreement": entry.get("disagreement") or "",
            })
    columns = ["model", "arch", "resolution", "parameters", "multiply_adds_per_image", "training_flops_per_image",
               "measured_training_flops_per_image", "measured_over_convention", "uncounted_operators",
               "disagreement"]
    return pd.DataFrame(rows, columns=columns)
