"""The tiny experiment on a real single-node SLURM, through profiles/slurm, compared with a local run.

The fixture installs Debian's slurm-wlm and munge where missing (it needs root), writes a minimal
/etc/slurm/slurm.conf (jobs do not see SLURM_CONF, so it must be there), starts munged, slurmctld and
slurmd, and stops what it started afterwards. It never touches a SLURM configuration it did not write.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import snakemake

CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# algoprogress test cluster"
TEMPLATE = Path(__file__).parent / "slurm" / "slurm.conf.template"


def run(*command, check=True, timeout=600):
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=timeout)


def install_slurm():
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"], check=True, env=env,
                   capture_output=True, timeout=900)


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def node_idle():
    result = run("sinfo", "-h", "-o", "%t", check=False, timeout=10)
    return result.returncode == 0 and result.stdout.strip() in {"idle", "mix", "alloc"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(pid: int | None):
    """SIGTERM a daemon and wait until it has exited (slurmctld saves its state first)."""
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), 60, f"process {pid} to exit")


def pid_of(name: str) -> int | None:
    result = run("pgrep", "-x", "-n", name, check=False)
    return int(result.stdout.split()[0]) if result.returncode == 0 else None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("starting a SLURM cluster needs root")
    if CONF.exists() and MARKER not in CONF.read_text():
        pytest.skip(f"{CONF} belongs to another SLURM installation: not touching it")
    install_slurm()
    state = tmp_path_factory.mktemp("slurm")
    for sub in ("slurmctld", "slurmd"):
        (state / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 1024
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(MARKER + "\n" + TEMPLATE.read_text().format(
        host=host, state=state, cpus=os.cpu_count(), memory_mb=memory_mb))

    if pid_of("slurmctld") or pid_of("slurmd"):
        pytest.skip("a SLURM daemon is already running here: not starting a second one")
    started = []
    try:
        if pid_of("munged") is None:
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            run("munged", "--force")
            started.append(pid_of("munged"))
        run("slurmctld")
        started.append(pid_of("slurmctld"))
        run("slurmd")
        started.append(pid_of("slurmd"))
        wait_for(node_idle, 60, "the SLURM node to come up")
        yield {"host": host, "state": state}
    finally:
        subprocess.run(["scancel", "--user", "root"], capture_output=True, timeout=30)
        for pid in reversed(started):  # slurmd, slurmctld, then munged if it was ours
            stop(pid)
        CONF.unlink(missing_ok=True)


# What a cluster's profile leaves to the site, set for the one test node (CPU only: no GPUs).
TEST_OVERRIDES = [
    "--default-resources", "slurm_partition=debug", "slurm_account=algoprogress-test", "runtime=30",
    "mem_mb=2000", "cpus_per_task=1",
    "--set-resources", "train:gpu=0", "train:mem_mb=4000", "train:cpus_per_task=2",
    "prepare_data:mem_mb=4000", "prepare_data:cpus_per_task=2",
    "--slurm-status-command", "squeue",  # no accounting database here, so no sacct
    "--slurm-init-seconds-before-status-checks", "1",
    "--slurm-keep-successful-logs",
    "--jobs", "2",
]


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, snakemake_bin, workflow_copy, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-run")
    result = snakemake(snakemake_bin, workflow_copy, workdir, "--profile", str(workflow_copy / "profiles" / "slurm"),
                       *TEST_OVERRIDES)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return workdir, result.stdout + result.stderr


@pytest.mark.slow
def test_every_job_ran_as_a_slurm_job(slurm_run):
    workdir, output = slurm_run
    submitted = [line for line in output.splitlines() if "submitted with SLURM jobid" in line]
    rule_logs = sorted((workdir / "logs").rglob("*.log"))
    assert len(rule_logs) >= 12 and len(submitted) == len(rule_logs)
    for log in rule_logs:
        first = log.read_text().splitlines()[0]
        assert "SLURM job " in first, f"{log} did not run under SLURM: {first}"
    assert list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))


@pytest.mark.slow
def test_slurm_results_equal_a_local_run(slurm_run, finished_run):
    workdir, _ = slurm_run
    timing = ["wall_seconds", "eval_seconds"]
    for local_curve in sorted((finished_run / "results" / "curves").rglob("*.parquet")):
        relative = local_curve.relative_to(finished_run)
        local = pd.read_parquet(local_curve).drop(columns=timing)
        remote = pd.read_parquet(workdir / relative).drop(columns=timing)
        pd.testing.assert_frame_equal(local, remote)
    local = pd.read_csv(finished_run / "results" / "thresholds.csv").drop(columns="wall_seconds")
    remote = pd.read_csv(workdir / "results" / "thresholds.csv").drop(columns="wall_seconds")
    pd.testing.assert_frame_equal(local, remote)
    local_trend = json.loads((finished_run / "results" / "trend.json").read_text())
    remote_trend = json.loads((workdir / "results" / "trend.json").read_text())
    assert remote_trend["doubling_time_months"] == pytest.approx(local_trend["doubling_time_months"])
