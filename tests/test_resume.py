"""A training job killed (SIGKILL) or ended (SIGTERM, as SLURM does at a time limit) resumes from its
checkpoint to the same curve as an uninterrupted run: same evaluation points and, on CPU with the same
seed, the same metrics; with random crops and flips, which the seed decides."""

import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from algoprogress.checkpoints import load_checkpoint, previous_checkpoint, save_checkpoint
from algoprogress.fileio import write_json
from algoprogress.flops import count_at_resolutions

MODEL = "shufflenet_v2_x0_5"
SAME = ["step", "epoch", "images_seen", "train_flops", "val_top1", "val_top5", "val_loss", "train_loss", "lr"]


@pytest.fixture(scope="module")
def job_files(mnist_betons, tmp_path_factory):
    folder, _ = mnist_betons
    root = tmp_path_factory.mktemp("resume")
    config = {
        "dataset": {"max_images_per_class": 30},
        "training": {"epochs": 4, "batch_size": 20, "evals_per_epoch": 2, "first_eval_step": 2, "eval_batch_size": 100,
                     "lr": 0.05, "random_resized_crop": True, "flip": True},  # the ImageNet recipes' augmentations
        "models": [{"name": MODEL, "published": "2018-07-30"}, {"name": "resnet18", "published": "2015-12-10"}],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    write_json(root / "flops.json", count_at_resolutions(MODEL, 10, [64]))
    return folder, root


def command(repo, folder, root, out, checkpoint, config=None):
    return [sys.executable, str(repo / "workflow" / "scripts" / "train.py"),
            "--config", str(config or root / "config.yaml"),
            "--model", MODEL, "--seed", "1", "--data-dir", str(folder), "--flops", str(root / "flops.json"),
            "--out", str(out), "--threads", "1", "--checkpoint", str(checkpoint), "--checkpoint-every", "0"]


@pytest.fixture(scope="module")
def uninterrupted(repo, job_files):
    folder, root = job_files
    out = root / "uninterrupted.parquet"
    subprocess.run(command(repo, folder, root, out, root / "uninterrupted.pt"), check=True, capture_output=True,
                   timeout=600)
    assert not (root / "uninterrupted.pt").exists(), "a finished job leaves no checkpoint"
    return pd.read_parquet(out)


def interrupt_after_first_checkpoint(cmd, checkpoint, how):
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def load_fingerprint(path):
    import torch

    return torch.load(path, weights_only=True)["fingerprint"]


def test_torn_or_foreign_checkpoints_are_not_resumed(tmp_path, caplog):
    torn = tmp_path / "torn.pt"
    torn.write_bytes(b"PK\x03\x04 half a checkpoint")
    assert load_checkpoint(torn, {"seed": 0}) is None
    assert "unreadable checkpoint" in caplog.text and str(torn) in caplog.text

    foreign = tmp_path / "foreign.pt"
    save_checkpoint(foreign, {"fingerprint": {"seed": 1}, "step": np.int64(3).item()})
    assert load_checkpoint(foreign, {"seed": 0}) is None
    assert "checkpoint of other settings" in caplog.text
    assert load_checkpoint(foreign, {"seed": 1})["step"] == 3


def modified_ns(path):
    """The file's modification time, or None where it does not exist: read in one call, since a run that
    finishes removes its checkpoint between an exists() and a stat()."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def newest_checkpoint_step(checkpoint):
    """The step a rerun resumes at: the checkpoint's, or the previous one's where the kill came mid-write (the
    checkpoint moved aside, its successor not yet renamed into place); None where neither is left. Both are
    whole files (written to a temporary, then renamed); read without load_checkpoint, which would also clear
    the temporaries a killed write leaves (the rerun's job, checked at the end)."""
    import torch

    for path in (checkpoint, previous_checkpoint(checkpoint)):
        try:
            return torch.load(path, weights_only=True)["step"]
        except FileNotFoundError:
            continue
    return None


def test_a_sigterm_then_random_sigkills_then_an_exact_curve(repo, job_files, uninterrupted, tmp_path):
    """Rows: SIGTERM once, through the command line, to a job running with other runtime settings (one data-loading
    worker, a smaller evaluation batch); then SIGKILL at random moments soon after a checkpoint, twice (which may
    fall mid-step, mid-evaluation or mid-write), to reruns under the default settings. The SIGTERM'd job
    checkpoints and says where a rerun resumes; runtime keys are no part of the checkpoint's fingerprint, so every
    rerun resumes from the newest readable checkpoint (a kill during a write leaves the previous one), at the step
    that checkpoint holds; the final curve has the uninterrupted run's evaluations, none duplicated or missing. (One
    run for both rows: each interruption costs a process start-up, about 5 CPU-seconds here.)"""
    folder, root = job_files
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["training"].update(workers=1, eval_batch_size=50)
    (tmp_path / "workers1.yaml").write_text(yaml.safe_dump(config))
    out, checkpoint = tmp_path / "curve.parquet", tmp_path / "job.pt"
    code, stderr = interrupt_after_first_checkpoint(
        command(repo, folder, root, out, checkpoint, tmp_path / "workers1.yaml"), checkpoint, signal.SIGTERM)
    assert code != 0 and not out.exists(), "the job was not interrupted before it finished"
    assert "SIGTERM at step" in stderr and "a rerun resumes there" in stderr
    last_step = uninterrupted["step"].max()
    checkpointed_at = load_checkpoint(checkpoint, load_fingerprint(checkpoint))["step"]
    assert checkpointed_at < last_step

    cmd = command(repo, folder, root, out, checkpoint)
    rng = np.random.default_rng(2026)
    resumed_steps = []
    for _ in range(2):
        before = modified_ns(checkpoint)
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # once this run has made progress (a new checkpoint), kill it at a random moment soon after:
        # mid-step, mid-evaluation or mid-write
        while process.poll() is None and modified_ns(checkpoint) == before:
            time.sleep(0.01)
        newest = newest_checkpoint_step(checkpoint)  # None once the job has finished
        if newest is not None and newest < last_step - 15:  # at once near the end: a fast CPU could finish first
            time.sleep(float(rng.uniform(0.0, 0.8)))
        process.kill()
        _, stderr = process.communicate(timeout=120)
        # it resumed where the interruption before left its newest checkpoint
        assert f"resumed from {checkpoint} at step {checkpointed_at}" in stderr, stderr[-2000:]
        resumed_steps.append(checkpointed_at)
        assert process.returncode == -signal.SIGKILL, "a kill came after the job had finished: " + stderr[-2000:]
        checkpointed_at = newest_checkpoint_step(checkpoint)
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert f"resumed from {checkpoint} at step {checkpointed_at}" in final.stderr
    curve = pd.read_parquet(out)
    assert curve["step"].is_unique and curve["step"].is_monotonic_increasing
    pd.testing.assert_frame_equal(curve[SAME], uninterrupted[SAME])
    assert resumed_steps == sorted(resumed_steps) and checkpointed_at >= resumed_steps[-1]
    assert not checkpoint.exists() and not list(tmp_path.glob(".*partial*"))
