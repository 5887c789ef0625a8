import pytest
import torchvision

from algoprogress.flops import (
    PETAFLOP_S_DAY,
    TRAINING_FLOP_PER_MULTIPLY_ADD,
    count_multiply_adds,
    to_petaflop_s_days,
    training_flops,
)


def test_convention_is_two_flop_per_multiply_add_times_three():
    assert TRAINING_FLOP_PER_MULTIPLY_ADD == 6
    assert training_flops(1_000, 64) == 384_000
    assert to_petaflop_s_days(PETAFLOP_S_DAY) == 1.0


@pytest.mark.parametrize("arch", ["alexnet", "resnet18", "mobilenet_v2"])
def test_fvcore_forward_count_agrees_with_torchvision_metadata(arch):
    """torchvision's `_ops` (GFLOPS) counts one multiply-add as one operation at 224 px, 1000 classes."""
    published = torchvision.models.get_model_weights(arch).DEFAULT.meta["_ops"] * 1e9
    counted = count_multiply_adds(arch, 1000, 224)["multiply_adds_per_image"]
    assert counted == pytest.approx(published, rel=0.05)


def test_count_depends_on_resolution_and_classes():
    small = count_multiply_adds("resnet18", 10, 64)
    large = count_multiply_adds("resnet18", 10, 128)
    assert 3.5 < large["multiply_adds_per_image"] / small["multiply_adds_per_image"] < 4.5
    assert small["parameters"] == sum(p.numel() for p in torchvision.models.resnet18(num_classes=10).parameters())
    assert "aten::add_" in small["uncounted_operators"]


def test_a_count_keeps_to_the_threads_it_is_given(repo, tmp_path):
    """count_flops on one thread in an environment that offers two (the suite's own sets one: tests/conftest.py);
    under Snakemake the job is given its rule's threads, one. The count is the same on any number."""
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "count.json"
    result = subprocess.run([sys.executable, str(repo / "workflow" / "scripts" / "count_flops.py"), "--arch",
                             "squeezenet1_1", "--resolution", "32", "--num-classes", "10", "--out", str(out),
                             "--threads", "1"], env={**os.environ, "OMP_NUM_THREADS": "2"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "counting on 1 CPU thread(s)" in result.stderr
    assert "Warning" not in result.stderr, result.stderr  # fvcore's import warned that torch.jit.script is deprecated
    counted = json.loads(out.read_text())["by_resolution"]["32"]["multiply_adds_per_image"]
    assert counted == count_multiply_adds("squeezenet1_1", 10, 32)["multiply_adds_per_image"]
