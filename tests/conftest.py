import os
import platform
import shutil
from pathlib import Path

import pytest

from tests.helpers import copy_workflow, snakemake

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"

def pytest_configure(config):
    # Three workers share two cores, and each job the tests start is a one-thread job (training and FLOP counts
    # set their threads; Snakemake declares one for the rest): torch and MKL work outside such a job (the
    # workers' own FLOP counts, the bill's) keeps to one thread too instead of every core, which on two busy
    # cores only adds synchronisation. Set before torch is imported; the workers and every process they start
    # inherit it (a training job's numbers depend on its thread count, which the job sets itself).
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """pytest-xdist's `--dist loadgroup` (pyproject.toml) runs each group whole on one worker, so that an expensive
    fixture is built once: the tests that share the finished tiny run form one group, and the other tests of a
    module one group each (their module's fixtures). Groups are handed out in the order of their first test
    (`--no-loadscope-reorder`): the SLURM tests first (they mostly wait for their cluster, the longest group in wall
    time, and started last the suite would end waiting for them alone), then the finished run's group (the next
    longest), then the rest in file order."""
    for item in items:
        group = "finished_run" if "finished_run" in item.fixturenames else item.module.__name__.rsplit(".", 1)[-1]
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: (item.module.__name__ != "tests.test_slurm",  # stable: the rest in file order
                                 "finished_run" not in item.fixturenames))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # Every timing is a figure of one CPU kind (docs/timing.md): the last lines of a run, CI's included, say which.
    if not hasattr(config, "workerinput"):
        from algoprogress.provenance import cpu_model

        machine = f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        terminalreporter.write_line(f"machine: {machine}")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def snakemake_bin() -> str:
    found = shutil.which("snakemake", path=os.pathsep.join([str(Path(os.sys.executable).parent), os.environ["PATH"]]))
    assert found, "snakemake is not installed in this environment"
    return found


@pytest.fixture(scope="session")
def mnist_betons(tmp_path_factory):
    """A small real FFCV data set: 30 MNIST digits per class, 64 px, split 20/10 per class."""
    from algoprogress.config import validate_config
    from algoprogress.data import prepare_dataset

    out = tmp_path_factory.mktemp("mnist")
    config = validate_config({
        "dataset": {"max_images_per_class": 30, "val_fraction": 1 / 3},
        "models": [{"name": "resnet18", "published": "2015-12-10"}, {"name": "alexnet", "published": "2012-06-01"}],
    })
    manifest = prepare_dataset(config["dataset"], out / "train.beton", out / "val.beton", out / "manifest.json", 2)
    return out, manifest


@pytest.fixture(scope="session")
def workflow_copy(repo, tmp_path_factory):
    """The workflow's files copied, so that a test may edit its code without touching the repository."""
    copy = copy_workflow(repo, tmp_path_factory.mktemp("workflow"))
    return copy


@pytest.fixture(scope="session")
def finished_run(snakemake_bin, workflow_copy, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    result = snakemake(snakemake_bin, workflow_copy, workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir
