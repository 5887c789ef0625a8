"""Architectures from timm and from the user's own file: checked while the workflow parses, built by the
first job (count_flops), counted by both FLOP counters (fused attention included), and added to a finished
run with only their own work planned."""

import hashlib
import shutil

import pytest
import torch

from algoprogress.architectures import ModelSourceError, build_model, check_arch, timm_models
from algoprogress.config import ConfigError, network_spec, validate_config
from algoprogress.flops import count_at_resolutions, count_multiply_adds
from tests.helpers import planned_jobs, snakemake, tiny_with, train_jobs

EXAMPLE = "file:examples/tiny_convnet.py:tiny_convnet"


def config_with(arch, **extra):
    return {"dataset": {"max_images_per_class": 30},
            "models": [{"name": "alexnet", "published": "2012-06-01"},
                       {"name": "mine", "arch": arch, "published": "2026-11-22", **extra}]}


def test_the_pinned_timm_list_is_the_installed_timm():
    import timm

    version, names = timm_models()
    assert version == timm.__version__ and set(names) == set(timm.list_models())


def test_unknown_names_and_malformed_files_are_one_line_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"models\[1\]\.arch: unknown timm model 'mobilenetv4_conv_smal' "
                                          r"\(timm [0-9.]+\); did you mean timm:mobilenetv4_conv_small"):
        validate_config(config_with("timm:mobilenetv4_conv_smal"))
    with pytest.raises(ConfigError, match=r"models\[1\]\.arch: 'file:nets.txt:net': expected file:<path to a \.py"):
        validate_config(config_with("file:nets.txt:net"))
    with pytest.raises(ConfigError, match=r"models\[1\]\.arch: unknown architecture 'resnet19'; did you mean"):
        validate_config(config_with("resnet19"))
    assert check_arch("timm:mobilenetv4_conv_small") is None and check_arch(EXAMPLE) is None


def test_a_user_file_is_part_of_the_models_spec(repo, tmp_path):
    config = validate_config(config_with(EXAMPLE))
    spec = network_spec(config, "mine", 10, repo)
    copy = tmp_path / "examples" / "tiny_convnet.py"
    copy.parent.mkdir()
    shutil.copy(repo / "examples" / "tiny_convnet.py", copy)
    assert network_spec(config, "mine", 10, tmp_path) == spec and len(spec["source_sha256"]) == 64
    copy.write_text(copy.read_text() + "\n# edited\n")
    assert network_spec(config, "mine", 10, tmp_path)["source_sha256"] != spec["source_sha256"]
    assert "source_sha256" not in network_spec(config, "alexnet", 10, repo)
    own = validate_config(config_with("mobilenet_v1"))  # an in-repo network: its file's digest (algoprogress.versions)
    own_file = repo / "src" / "algoprogress" / "nets" / "mobilenet_v1.py"
    assert network_spec(own, "mine", 10, repo)["source_sha256"] == hashlib.sha256(own_file.read_bytes()).hexdigest()
    with pytest.raises(ConfigError, match=r"models\[1\]\.arch: file '.*nowhere/examples/tiny_convnet.py' does not"):
        network_spec(config, "mine", 10, tmp_path / "nowhere")


def test_user_files_that_do_not_build_are_refused_in_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('half-written')\n")
    with pytest.raises(ModelSourceError, match=r"broken.py: does not import \(RuntimeError: half-written\)"):
        build_model("file:broken.py:net", 10, source=broken)
    not_a_model = tmp_path / "nets.py"
    not_a_model.write_text("def net(num_classes):\n    return 'a string'\n\ndef bad(num_classes, depth):\n"
                           "    raise ValueError(f'depth {depth} too deep')\n")
    with pytest.raises(ModelSourceError, match=r"nets.py: net: returned str, not a torch.nn.Module"):
        build_model("file:nets.py:net", 10, source=not_a_model)
    with pytest.raises(ModelSourceError, match=r"nets.py: bad: building the model failed \(ValueError: depth 9"):
        build_model("file:nets.py:bad", 10, {"depth": 9}, source=not_a_model)
    with pytest.raises(ModelSourceError, match=r"nets.py: missing: no such callable"):
        build_model("file:nets.py:missing", 10, source=not_a_model)


def test_the_example_builds_and_a_disagreement_of_the_counters_is_stated(repo):
    """The example is counted at each resolution; where the counters are more than 10% apart (in so small
    a net, the first convolution's input gradient, which training does not compute, is a large share)
    the count says so."""
    counts = count_at_resolutions(EXAMPLE, 10, [32, 64], {"width": 8}, source=repo / "examples" / "tiny_convnet.py")
    for count in counts["by_resolution"].values():
        ratio = count["measured_over_convention"]
        assert count["multiply_adds_per_image"] > 0 and 0.8 < ratio < 1.05
        assert (count["disagreement"] is not None) == (abs(ratio - 1) > 0.10)
        if count["disagreement"]:
            assert f"{ratio:.2f}x the convention's count" in count["disagreement"]
    assert counts["by_resolution"]["64"]["multiply_adds_per_image"] > counts["by_resolution"]["32"][
        "multiply_adds_per_image"]


def test_the_reports_flop_table_states_a_disagreement(repo, tmp_path):
    """workflow/scripts/flop_table.py (the report's `results/flop_counts.csv`): a row per model and resolution,
    the disagreement of a count more than 10% apart carried over, and a damaged count refused in one line."""
    import json
    import subprocess
    import sys

    import pandas as pd

    counts = count_at_resolutions(EXAMPLE, 10, [32], {"width": 8}, source=repo / "examples" / "tiny_convnet.py")
    counts["by_resolution"]["32"]["disagreement"] = "FlopCounterMode measures 1.50x the convention's count"
    for model in ("mine", "yours"):
        (tmp_path / model).mkdir()
        (tmp_path / model / "32px.json").write_text(json.dumps(counts))
    script = [sys.executable, str(repo / "workflow" / "scripts" / "flop_table.py"), "--out", str(tmp_path / "t.csv")]
    done = subprocess.run([*script, str(tmp_path / "mine" / "32px.json"), str(tmp_path / "yours" / "32px.json")],
                          capture_output=True, text=True, check=True)
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["model"].tolist() == ["mine", "yours"] and (table["resolution"] == 32).all()
    assert (table["disagreement"] == "FlopCounterMode measures 1.50x the convention's count").all()
    assert "WARNING: mine at 32 px: FlopCounterMode measures 1.50x" in done.stderr
    written = (tmp_path / "t.csv").read_bytes()
    (tmp_path / "yours" / "32px.json").write_text('{"arch": ')
    failed = subprocess.run([*script, str(tmp_path / "yours" / "32px.json")], capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'yours' / '32px.json'}: not a FLOP count (Expecting value: line 1 column 10 (char 9)); "
        "delete it and rerun: the workflow recounts it"]
    assert (tmp_path / "t.csv").read_bytes() == written


def test_fused_attention_is_counted(tmp_path):
    """fvcore has no handle for scaled_dot_product_attention: the one added counts L x S x (E + Ev) per
    batch and head, so a model that is attention alone has exactly that count."""
    source = tmp_path / "attention.py"
    source.write_text(
        "import torch\n"
        "class Attention(torch.nn.Module):\n"
        "    def __init__(self, num_classes):\n"
        "        super().__init__()\n"
        "        self.num_classes = num_classes\n"
        "    def forward(self, x):\n"  # x: (1, 3, R, R) -> 3 heads of R tokens of R features
        "        out = torch.nn.functional.scaled_dot_product_attention(x, x, x)\n"
        "        return out.mean(dim=(1, 2))[:, :self.num_classes]\n"
        "def attention(num_classes):\n"
        "    return Attention(num_classes)\n")
    counted = count_multiply_adds("file:attention.py:attention", 8, 16, source=source)
    assert counted["multiply_adds_per_image"] == 3 * 16 * 16 * (16 + 16)
    assert "aten::scaled_dot_product_attention" not in counted["uncounted_operators"]


def test_a_timm_model_with_attention_and_layer_scale_is_counted():
    """A timm ViT (fused attention, layer scale): fvcore's count (attention included) and FlopCounterMode
    within 10% of each other; nothing is downloaded (no pretrained weights)."""
    counts = count_at_resolutions("timm:vit_tiny_patch16_224", 10, [64], {"img_size": 64, "init_values": 1e-5})
    count = counts["by_resolution"]["64"]
    assert count["by_operator"].get("scaled_dot_product_attention", 0) > 0
    assert count["disagreement"] is None, count["measured_over_convention"]
    assert isinstance(build_model("timm:mobilenetv4_conv_small", 10), torch.nn.Module)


@pytest.mark.slow
def test_adding_a_user_architecture_plans_only_its_work(finished_run, snakemake_bin, workflow_copy, tmp_path):
    """The incremental rerun: a finished tiny run, the example architecture appended: only its FLOP count,
    its training and the analysis are planned. Once it is trained, editing its file plans the same again,
    and nothing of the other models. (The example is copied to an absolute path: the workflow copy is shared.)"""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    mine = tmp_path / "tiny_convnet.py"
    shutil.copy(workflow_copy / "examples" / "tiny_convnet.py", mine)
    entry = {"name": "tiny_convnet", "arch": f"file:{mine}:tiny_convnet", "published": "2026-11-22",
             "kwargs": {"width": 8}, "training": {"seeds": [0]}}  # one seed: one training job (a start-up) fewer
    configfile = tiny_with(workflow_copy, tmp_path, lambda config: config["models"].append(entry), "with_mine.yaml")
    seeds = {str(seed) for seed in entry["training"]["seeds"]}
    mine_curves = [f"results/curves/tiny_convnet/base/seed{seed}.parquet" for seed in sorted(seeds)]

    def plan():
        result = snakemake(snakemake_bin, workflow_copy, workdir, "-n", configfile=configfile)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-2000:]
        return planned_jobs(output), train_jobs(output)

    def assert_only_mine_planned():
        jobs, trained = plan()
        assert trained == {("tiny_convnet", "base", seed) for seed in seeds}
        assert jobs["count_flops"] == 1 and "prepare_data" not in jobs and jobs["thresholds"] == 1

    assert_only_mine_planned()
    trained = snakemake(snakemake_bin, workflow_copy, workdir, *mine_curves, configfile=configfile)
    assert trained.returncode == 0, trained.stderr[-2000:]
    mine.write_text(mine.read_text().replace("nn.ReLU(inplace=True)", "nn.GELU()"))
    assert_only_mine_planned()
