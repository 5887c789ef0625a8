"""The tiny experiment (one seed per model) on a real single-node SLURM, through profiles/slurm, one of its
training jobs preempted and resumed there; that curve retrained locally, uninterrupted, equal to SLURM's.

The fixture installs Debian's slurm-wlm and munge where missing (it needs root), writes a minimal
/etc/slurm/slurm.conf (jobs do not see SLURM_CONF, so it must be there), starts munged, slurmctld and
slurmd, and stops what it started afterwards. It never touches a SLURM configuration it did not write.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import one_seed, snakemake, snakemake_command, tiny_with, trained

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


def process_state(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process, from /proc/<pid>/stat; None if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], fields[19]  # fields 3 and 22 of proc(5)


def alive(pid: int, since: str) -> bool:
    """Whether the process started at ``since`` still runs: not if its pid now names another process, nor if it
    is a zombie (exited, not yet reaped by whoever adopted it), but yes if only its leader thread has ended while
    other threads go on (that too shows as a zombie)."""
    state = process_state(pid)
    if state is None or state[1] != since:
        return False
    try:
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state[0] != "Z" or threads > 1


# slurmd waits up to 120 s for its own threads on SIGTERM (_wait_for_all_threads(120) in slurmd.c); CI once waited
# out the 60 s this used to allow for one daemon (its log did not say which), failing a run whose tests had passed
EXIT_SECONDS = 150


def stop(name: str, pid: int, since: str, log: Path | None = None):
    """SIGTERM a daemon and wait until it has exited (slurmctld saves its state first); one that outlasts its own
    shutdown bound is killed, with a warning that quotes the end of its log. ``since``: its start time, so that a
    pid taken over by another process is never signalled."""
    if not alive(pid, since):
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not alive(pid, since), EXIT_SECONDS, f"{name} (process {pid}) to exit")
    except TimeoutError:
        if alive(pid, since):  # checked again just before: it may have exited at last
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid, since), 30, f"{name} (process {pid}) to exit after SIGKILL")
        tail = log.read_text(errors="replace").splitlines()[-5:] if log and log.exists() else []
        warnings.warn(f"{name} (process {pid}) had not exited {EXIT_SECONDS} s after SIGTERM and was killed; "
                      f"its log ends: {' | '.join(tail)}", stacklevel=2)


def started(name: str, pid_file: Path, log: Path | None = None) -> tuple:
    """The daemon the pid file names, once it has written it, as stop() takes it: (name, pid, start time, log). The
    pid file, not the process list: a daemon forks on its way (into the background; slurmctld also into
    slurmscriptd), and a process that bears its name for a moment was once taken for it and the daemon left running
    after the tests, so that the next suite skipped every SLURM test."""
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip().isdigit(), 60, f"{name}'s pid file {pid_file}")
    pid = int(pid_file.read_text())
    state = process_state(pid)
    if state is None:
        raise RuntimeError(f"{name} did not start (see {log})" if log else f"{name} did not start")
    return name, pid, state[1], log


def pid_of(name: str) -> int | None:
    """A running process of that name, if any."""
    result = run("pgrep", "-x", "-o", name, check=False)
    return int(result.stdout.split()[0]) if result.returncode == 0 else None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("starting a SLURM cluster needs root")
    if CONF.exists() and MARKER not in CONF.read_text():
        pytest.skip(f"{CONF} belongs to another SLURM installation: not touching it")
    install_slurm()
    if pid_of("slurmctld") or pid_of("slurmd"):
        pytest.skip("a SLURM daemon is already running here: not starting a second one")
    state = tmp_path_factory.mktemp("slurm")
    for sub in ("slurmctld", "slurmd"):
        (state / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 1024
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(MARKER + "\n" + TEMPLATE.read_text().format(
        host=host, state=state, cpus=os.cpu_count(), memory_mb=memory_mb))

    daemons = []
    try:
        if pid_of("munged") is None:
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            run("munged", "--force", "--pid-file", str(state / "munged.pid"))
            daemons.append(started("munged", state / "munged.pid"))
        run("slurmctld")
        daemons.append(started("slurmctld", state / "slurmctld.pid", state / "slurmctld.log"))
        run("slurmd")
        daemons.append(started("slurmd", state / "slurmd.pid", state / "slurmd.log"))
        wait_for(node_idle, 60, "the SLURM node to come up")
        yield {"host": host, "state": state}
    finally:
        problems = []
        try:
            with contextlib.suppress(subprocess.SubprocessError, OSError):  # the daemons are stopped anyway
                subprocess.run(["scancel", "--user", "root"], capture_output=True, timeout=30)
            for daemon in reversed(daemons):  # slurmd, slurmctld, then munged if it was ours: each, whatever happens
                try:
                    stop(*daemon)
                except (TimeoutError, OSError) as error:
                    problems.append(f"{daemon[0]}: {error}")
        finally:
            CONF.unlink(missing_ok=True)
        if problems:
            raise RuntimeError("stopping the test cluster: " + "; ".join(problems))


# What a cluster's profile leaves to the site, set for the one test node (CPU only: no GPUs).
TEST_OVERRIDES = [
    "--default-resources", "slurm_partition=debug", "slurm_account=algoprogress-test", "runtime=30",
    "mem_mb=2000", "cpus_per_task=1",
    "--set-resources", "train:gpu=0", "train:mem_mb=4000", "train:cpus_per_task=1",  # two side by side, as locally
    "prepare_data:mem_mb=4000", "prepare_data:cpus_per_task=2",
    "--slurm-status-command", "squeue",  # no accounting database here, so no sacct
    "--slurm-init-seconds-before-status-checks", "1",
    "--slurm-keep-successful-logs",
    "--jobs", "2",
]


@pytest.fixture(scope="module")
def one_seed_config(workflow_copy, tmp_path_factory):
    return tiny_with(workflow_copy, tmp_path_factory.mktemp("slurm-config"), one_seed)


# The training jobs SLURM ends mid-training, each once: MobileNetV2 cancelled as a time limit or a preemption ends a
# job (SIGTERM to every process of the job, the batch script included, SIGKILL after KillWait; its dropout puts a
# random-number state into the checkpoint it resumes from), ShuffleNetV2 0.5 requeued (scontrol requeue: the same
# SLURM job ended the same way and started again)
CANCELLED_MODEL, REQUEUED_MODEL = "mobilenet_v2", "shufflenet_v2_x0_5"


def curve(model):
    return Path("results", "curves", model, "base", "seed0.parquet")


def train_log(model):
    return Path("logs", "train", model, "base", "seed0.log")


def wildcards(model):
    """The plugin's name for a training job's wildcards, in its SLURM comment and the folder of its SLURM log."""
    return f"{model}_base_0"


def running_slurm_jobs(comment_part: str) -> list[str]:
    """Ids of the running SLURM jobs whose comment (the plugin's "rule_<rule>_wildcards_<values>") has the part."""
    listed = run("squeue", "-h", "-t", "RUNNING", "-o", "%i %k", check=False, timeout=10).stdout.splitlines()
    return [line.split()[0] for line in listed if comment_part in line]


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, snakemake_bin, workflow_copy, one_seed_config, tmp_path_factory):
    """The tiny experiment (one seed) through the SLURM profile, during which SLURM ends each training job once it
    has taken some steps: MobileNetV2's cancelled (SIGTERM to the whole job, SIGKILL after the test cluster's 15 s
    KillWait; the job fails and the profile's retries resubmit it), ShuffleNetV2's requeued (the same job runs
    again). Each checkpoints on the SIGTERM and resumes there."""
    workdir = tmp_path_factory.mktemp("slurm-run")
    command = snakemake_command(snakemake_bin, workflow_copy, workdir, "--profile",
                                str(workflow_copy / "profiles" / "slurm"), *TEST_OVERRIDES, configfile=one_seed_config)
    output = tmp_path_factory.mktemp("slurm-run-output") / "snakemake.out"
    with open(output, "w") as sink:
        snakemake_run = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)

    def under_way(model):
        # its progress bar shows steps done (from step 1 on: the bar prints about every 2 s, and the first print
        # after a step taken leaves the most time for the signal)
        assert snakemake_run.poll() is None, output.read_text()[-4000:]
        log = workdir / train_log(model)
        return log.exists() and any(f" {done}/" in log.read_text() for done in range(1, 40))

    def end(model, *command):
        wait_for(lambda: under_way(model), 600, f"{model}'s training job to take some steps")
        jobs = running_slurm_jobs(f"rule_train_wildcards_{wildcards(model)}")
        assert len(jobs) == 1, f"{jobs}: {model}'s training job should be running (ended before the signal?)"
        run(*command, jobs[0])
        return jobs[0]

    try:
        requeued = end(REQUEUED_MODEL, "scontrol", "requeue")
        end(CANCELLED_MODEL, "scancel")
        assert snakemake_run.wait(timeout=900) == 0, output.read_text()[-4000:]
    finally:
        if snakemake_run.poll() is None:
            snakemake_run.terminate()
    return workdir, output.read_text(), requeued


@pytest.mark.slow
def test_every_job_ran_as_a_slurm_job(slurm_run, workflow_copy):
    """Each job of data, FLOP counting, training and per-model figures is a SLURM job of its own; the
    analysis rules grouped by the profile share fewer SLURM jobs than they are (published_trend, ready
    from the start, goes first on its own)."""
    workdir, output, _ = slurm_run
    profile = yaml.safe_load((workflow_copy / "profiles" / "slurm" / "config.yaml").read_text())
    grouped = {entry.split("=")[0] for entry in profile["groups"]}
    submitted = [line for line in output.splitlines() if "submitted with SLURM jobid" in line]
    rule_logs = sorted((workdir / "logs").rglob("*.log"))
    rule_of = {log: log.relative_to(workdir / "logs").parts[0].removesuffix(".log") for log in rule_logs}
    alone = [log for log in rule_logs if rule_of[log] not in grouped]
    assert len(rule_logs) >= 12 and {rule_of[log] for log in rule_logs} >= grouped
    group_jobs = [line for line in submitted if "group_analysis" in line]
    retried = 1  # the cancelled training job, submitted twice (the requeued one is one submission)
    assert len(submitted) == len(alone) + retried + len(group_jobs) and 1 <= len(group_jobs) < len(grouped)
    for log in rule_logs:
        first = log.read_text().splitlines()[0]
        assert "SLURM job " in first, f"{log} did not run under SLURM: {first}"
    assert list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))


@pytest.mark.slow
def test_a_cancelled_training_job_checkpoints_within_killwait_and_its_retry_resumes(slurm_run):
    """Row: SLURM ends a training job as at a time limit or on preemption (SIGTERM to the batch script and the job
    step, SIGKILL 15 s later): the training checkpointed where it was before the kill, the job failed, the profile's
    retries resubmitted it, and the resubmission resumed there (that its curve is the uninterrupted one: the local
    comparison below)."""
    workdir, output, _ = slurm_run
    submissions = [line for line in output.splitlines()
                   if "submitted with SLURM jobid" in line and f"rule_train/{wildcards(CANCELLED_MODEL)}/" in line]
    assert len(submissions) == 2, output[-4000:]  # the cancelled job and its retry
    folder = workdir / ".snakemake" / "slurm_logs" / "rule_train" / wildcards(CANCELLED_MODEL)
    slurm_logs = sorted(folder.glob("*.log"))
    stopped = [log for log in slurm_logs if "SIGTERM at step" in log.read_text()]
    assert len(slurm_logs) == 2 and len(stopped) == 1 and "a rerun resumes there" in stopped[0].read_text()
    assert "resumed from" in (workdir / train_log(CANCELLED_MODEL)).read_text()


@pytest.mark.slow
def test_a_requeued_training_job_resumes_in_the_same_slurm_job(slurm_run):
    """Row: `scontrol requeue` of a running training job: SLURM ends it (SIGTERM, SIGKILL after KillWait) and runs
    the same job again, which Snakemake waits for as one job; the training resumed from the checkpoint it wrote."""
    workdir, output, requeued = slurm_run
    submissions = [line for line in output.splitlines()
                   if "submitted with SLURM jobid" in line and f"rule_train/{wildcards(REQUEUED_MODEL)}/" in line]
    assert len(submissions) == 1 and f"jobid {requeued}" in submissions[0], output[-4000:]
    log = (workdir / train_log(REQUEUED_MODEL)).read_text()
    assert "resumed from" in log, log[-3000:]


@pytest.mark.slow
def test_slurm_results_equal_a_local_run(slurm_run, snakemake_bin, workflow_copy, one_seed_config, tmp_path):
    """A copy of the SLURM run retrains the two interrupted curves locally, uninterrupted, and redoes the thresholds
    and the trend from them (the figures are left out): the same curves (so each job ended and resumed ended as an
    uninterrupted one), the same thresholds and the same trend as under SLURM."""
    slurm_dir, _, _ = slurm_run
    local_dir = tmp_path / "local"
    shutil.copytree(slurm_dir, local_dir, symlinks=True)
    models = [CANCELLED_MODEL, REQUEUED_MODEL]
    for model in models:
        (local_dir / curve(model)).unlink()
    targets = [*(str(curve(model)) for model in models), "results/thresholds.csv", "results/trend.json"]
    result = snakemake(snakemake_bin, workflow_copy, local_dir, *targets, configfile=one_seed_config)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert trained(output) == sorted((model, "0") for model in models)
    assert "rule thresholds:" in output and "rule trend:" in output
    timing = ["wall_seconds", "eval_seconds"]
    for model in models:
        assert "resumed from" not in (local_dir / train_log(model)).read_text()
        remote = pd.read_parquet(slurm_dir / curve(model)).drop(columns=timing)
        local = pd.read_parquet(local_dir / curve(model)).drop(columns=timing)
        pd.testing.assert_frame_equal(local, remote)
    local = pd.read_csv(local_dir / "results" / "thresholds.csv").drop(columns="wall_seconds")
    remote = pd.read_csv(slurm_dir / "results" / "thresholds.csv").drop(columns="wall_seconds")
    pd.testing.assert_frame_equal(local, remote)
    local_trend = json.loads((local_dir / "results" / "trend.json").read_text())
    remote_trend = json.loads((slurm_dir / "results" / "trend.json").read_text())
    assert remote_trend["doubling_time_months"] == pytest.approx(local_trend["doubling_time_months"])
