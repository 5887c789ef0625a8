"""Helpers shared by the test modules."""

import functools
import re
import shutil
import subprocess

import numpy as np
import yaml
from PIL import Image

WORKFLOW_FILES = ["Snakefile", "rules", "workflow", "src", "config", "envs", "profiles", "resources", "report",
                  "tests/data", "examples"]


def copy_workflow(repo, destination):
    """The workflow's files (what a clone holds for running it) copied to ``destination``."""
    for name in WORKFLOW_FILES:
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def configfiles(value):
    return [str(path) for path in value] if isinstance(value, (list, tuple)) else [str(value)]


def snakemake_command(snakemake_bin, workflow, workdir, *args, configfile=None, cores=2):
    """The command line that runs the workflow at ``workflow`` (the repository or a copy) in ``workdir`` on the tiny
    config (or ``configfile``); ``args`` (targets among them) come before the config files."""
    return [snakemake_bin, "-s", str(workflow / "Snakefile"), "--directory", str(workdir), "--cores", str(cores), *args,
            "--configfile", *configfiles(configfile or workflow / "tests" / "data" / "tiny.yaml")]


def snakemake(snakemake_bin, workflow, workdir, *args, configfile=None, timeout=900):
    """Run the `snakemake` executable with ``snakemake_command``'s command line to its end, output captured."""
    command = snakemake_command(snakemake_bin, workflow, workdir, *args, configfile=configfile)
    return run(command, timeout=timeout)


def run(command, timeout=900):
    """A command run to its end, its output captured as text."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def tiny_with(workflow, folder, change, name="tiny.yaml"):
    """The workflow's tiny config changed by ``change(config)``, written to ``folder/name``."""
    config = yaml.safe_load((workflow / "tests" / "data" / "tiny.yaml").read_text())
    change(config)
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def one_seed(config):
    """A `tiny_with` change: one seed per model (every rule of the workflow, one training job per model)."""
    config["training"]["seeds"] = [0]


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a dry run (empty when nothing is to be done)."""
    jobs, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            inside, jobs = True, {}
        elif inside and line.startswith("total"):
            inside = False
        elif inside and line.strip() and not line.startswith(("job", "-")):
            rule, count = line.split()
            jobs[rule] = int(count)
    return jobs


def train_jobs(output: str) -> set[tuple[str, str, str]]:
    """(model, trial, seed) of each planned train job."""
    return set(re.findall(r"rule train:.*?wildcards: model=([^,]+), trial=([^,]+), seed=(\d+)", output, re.DOTALL))


def trained(output):
    """(model, seed) of the base-trial training jobs a Snakemake run's output shows."""
    return sorted(set(re.findall(r"wildcards: model=(\S+), trial=base, seed=(\d+)", output)))


def write_image_folder(root, broken=False, classes=("cat", "dog"), per_class=6, size=(40, 50)):
    """Real image files of several kinds: RGB JPEG, greyscale JPEG, CMYK JPEG, PNG saved as .jpg."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size[0] + i, size[1], 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            kind = i % 4
            if kind == 0:
                image.save(root / name / f"{i}.jpg", quality=90)
            elif kind == 1:
                image.convert("L").save(root / name / f"{i}.jpg")
            elif kind == 2:
                image.convert("CMYK").save(root / name / f"{i}.jpg")
            else:
                image.save(root / name / f"{i}.jpg", format="PNG")  # PNG content, JPEG name
    if broken:
        (root / classes[-1] / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@functools.cache
def _shufflenet_settings_and_costs():
    from algoprogress.config import validate_config
    from algoprogress.flops import count_at_resolutions, per_image_costs

    settings = validate_config({"models": [{"name": "resnet18", "published": "2015-12-10"},
                                           {"name": "alexnet", "published": "2012-06-01"}]})["models"][0]
    return settings["resolved_training"], per_image_costs(count_at_resolutions("shufflenet_v2_x0_5", 10, [64]))


def short_job(folder, seed=0, checkpoint=None, **overrides):
    """A short in-process training job on the `mnist_betons` fixture's data (``folder``): ShuffleNetV2 0.5, one
    epoch of 10 steps, evaluated after steps 0, 2, 4, 5, 8 and 10 (FLOPs counted once per test process)."""
    from algoprogress.training import TrainingJob

    defaults, (macs, measured) = _shufflenet_settings_and_costs()
    settings = {**defaults, "epochs": 1, "batch_size": 20, "evals_per_epoch": 2, "first_eval_step": 2,
                "eval_batch_size": 50, **overrides}
    return TrainingJob("tiny-shuffle", "shufflenet_v2_x0_5", seed, str(folder / "train.beton"),
                       str(folder / "val.beton"), 10, settings, macs, measured, {}, threads=1,
                       checkpoint_path=checkpoint)
