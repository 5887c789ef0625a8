import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import WORKFLOW_FILES, snakemake

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"

# Tests run on pytest-xdist workers (pyproject.toml), in groups that each run whole on one worker: the tests that
# share the finished tiny run (a session fixture, built once per worker that needs it, and tied to that worker's
# workflow copy: Snakemake records the absolute paths of its code inputs) form one group, and the other tests
# one group per module (a module's fixtures built once). Groups start longest first; the SLURM module, mostly
# waiting for its cluster, starts at once beside the others' work.
# pytest-xdist's own `--dist loadgroup` does not work with pytest 9 (it renames node ids through an attribute
# pytest 9 no longer reads), so the workers write each test's group to a file and the scheduler below reads it.
SHARED_RUN_GROUP = "finished_run"
# (the groups' sums of test times in a run under a CPU quota of 1.25 CPUs, bench/test_suite_elsewhere.sh, 2026-11-29:
# SLURM ~530 s before its preemption joined its run, the finished run ~500, test_resume ~220, test_faults ~150,
# test_data ~95, test_training ~65, test_bill ~60, test_workflow ~25, test_imagenet ~25, the rest under 25 each)
LONGEST_FIRST = ["test_slurm", SHARED_RUN_GROUP, "test_resume", "test_faults", "test_data", "test_training",
                 "test_bill", "test_workflow", "test_imagenet", "test_thresholds_properties", "test_sweeps",
                 "test_flops", "test_config"]
GROUPS_FILE = "ALGOPROGRESS_TEST_GROUPS"


def test_group(item) -> str:
    return SHARED_RUN_GROUP if "finished_run" in item.fixturenames else item.module.__name__.rsplit(".", 1)[-1]


def start_order(group: str) -> int:
    return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_configure(config):
    # Three workers share two cores, and each job the tests start is a one-thread job (training and FLOP counts
    # set their threads; Snakemake declares one for the rest): torch and MKL work outside such a job (the
    # workers' own FLOP counts, the bill's) keeps to one thread too instead of every core, which on two busy
    # cores only adds synchronisation (four modules whose work is mostly in-process FLOP counts: 16% less CPU).
    # Set before torch is imported; the workers and every process they start inherit it (a training job's
    # numbers depend on its thread count, which the job sets itself, whatever this says).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        fd, path = tempfile.mkstemp(prefix="algoprogress-test-groups-", suffix=".json")
        os.close(fd)
        os.environ[GROUPS_FILE] = path  # the workers, started later, inherit it
        config.add_cleanup(lambda: Path(path).unlink(missing_ok=True))


def pytest_collection_modifyitems(config, items):
    path = os.environ.get(GROUPS_FILE)
    if path and getattr(config, "workerinput", {}).get("workerid") == "gw0":  # every worker collects the same
        Path(path).write_text(json.dumps({item.nodeid: test_group(item) for item in items}))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        """pytest-xdist's scope scheduling, a scope being a test's group, the longest groups handed out first."""

        groups = None

        def _split_scope(self, nodeid):
            if self.groups is None:  # read once every worker has collected
                self.groups = json.loads(Path(os.environ[GROUPS_FILE]).read_text())
            return self.groups.get(nodeid, nodeid)

        def _assign_work_unit(self, node):
            # the next unit handed out is the queue's longest group (a scope is a group's name)
            self.workqueue.move_to_end(min(self.workqueue, key=start_order), last=False)
            super()._assign_work_unit(node)

    return ByGroup(config, log)


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
    copy = tmp_path_factory.mktemp("workflow")
    for name in WORKFLOW_FILES:
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


@pytest.fixture(scope="session")
def finished_run(snakemake_bin, workflow_copy, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    result = snakemake(snakemake_bin, workflow_copy, workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir
