"""The fault matrix of docs/reliability.md: killed and terminated jobs, a killed Snakemake, a second
Snakemake, a full disk, corrupt files, a diverging model. Each test names its row."""

import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from algoprogress import curves, training
from algoprogress.checkpoints import load_checkpoint, previous_checkpoint
from algoprogress.fileio import read_json, sha256_of_file
from algoprogress.integrity import curve_problem_in_job, parquet_frame_problem
from algoprogress.training import TrainingInterrupted, train
from tests.helpers import short_job, snakemake, trained

SAME = ["step", "epoch", "images_seen", "train_flops", "train_flops_measured", "eval_flops", "val_top1", "val_top5",
        "val_loss", "train_loss", "lr"]


def job(folder, checkpoint=None, **overrides):
    """The fault tests' job: tests.helpers.short_job, checkpointed at every evaluation."""
    return short_job(folder, checkpoint=checkpoint, **{"checkpoint_every_seconds": 0, **overrides})


@pytest.fixture(scope="module")
def reference(mnist_betons, tmp_path_factory):
    folder, _ = mnist_betons
    return curves.as_curve(train(job(folder), tmp_path_factory.mktemp("reference") / "curve.parquet"))


def sigterm_on_call(patch, owner, name, number, during=None):
    """``owner.name`` replaced (``patch``: a pytest MonkeyPatch) by the same function that sends this process SIGTERM
    (a real signal) on its ``number``-th call: after the call returns, or, with ``during``, once ``during(args)`` is
    reached inside it (``during`` wraps one of the call's arguments and returns the call's new arguments)."""
    real, calls = getattr(owner, name), []

    def terminate():
        os.kill(os.getpid(), signal.SIGTERM)

    def replaced(*args, **kwargs):
        calls.append(1)
        if len(calls) == number and during is not None:
            return real(*during(args, terminate), **kwargs)
        result = real(*args, **kwargs)
        if len(calls) == number:
            terminate()
        return result

    patch.setattr(owner, name, replaced)


def after_the_first_batch(args, terminate):
    """`training.evaluate`'s arguments, its loader (the second) sending SIGTERM once its first batch is out."""
    model, loader, *rest = args

    def batches():
        for index, batch in enumerate(loader):
            yield batch
            if index == 0:
                terminate()

    return (model, batches(), *rest)


def resume_and_compare(folder, checkpoint, out, reference):
    rows = train(job(folder, checkpoint), out)
    curve = curves.as_curve(rows)
    assert curve["step"].is_unique
    pd.testing.assert_frame_equal(curve[SAME], reference[SAME])
    assert not checkpoint.exists() and not previous_checkpoint(checkpoint).exists()


@pytest.fixture(scope="module")
def interrupted_in_an_evaluation(mnist_betons, tmp_path_factory):
    """A job sent SIGTERM during its third evaluation (step 4): (the message it raised, its checkpoint folder)."""
    folder, _ = mnist_betons
    saved = tmp_path_factory.mktemp("interrupted")
    with pytest.MonkeyPatch.context() as patch, pytest.raises(TrainingInterrupted) as raised:
        sigterm_on_call(patch, training, "evaluate", 3, during=after_the_first_batch)
        train(job(folder, saved / "job.pt"), saved / "curve.parquet")
    assert not (saved / "curve.parquet").exists()
    return str(raised.value), saved


def checkpoint_copy(interrupted, folder):
    """The interrupted job's checkpoint and previous checkpoint, copied into ``folder`` (each test damages or
    resumes its own copy)."""
    _, saved = interrupted
    for name in ("job.pt", "job.pt.prev"):
        shutil.copy2(saved / name, folder / name)
    return folder / "job.pt"


def test_sigterm_during_an_evaluation(mnist_betons, reference, interrupted_in_an_evaluation, tmp_path):
    """Row: SIGTERM during an evaluation -> the evaluation finishes, is checkpointed, the job exits; a rerun resumes."""
    folder, _ = mnist_betons
    message, _ = interrupted_in_an_evaluation
    assert re.match(r"tiny-shuffle seed 0: SIGTERM at step 4; checkpointed to ", message)
    checkpoint = checkpoint_copy(interrupted_in_an_evaluation, tmp_path)
    saved = load_checkpoint(checkpoint, job(folder).fingerprint())
    assert saved["step"] == 4 and [row["step"] for row in saved["rows"]] == [0, 2, 4]
    resume_and_compare(folder, checkpoint, tmp_path / "curve.parquet", reference)


def test_sigterm_during_a_checkpoint_write(mnist_betons, reference, tmp_path, monkeypatch):
    """Row: SIGTERM while a checkpoint is being written (its file written under its temporary name, not yet renamed)
    -> the write completes whole, the previous is kept."""
    import torch

    folder, _ = mnist_betons
    checkpoint = tmp_path / "job.pt"
    sigterm_on_call(monkeypatch, torch, "save", 2)
    with pytest.raises(TrainingInterrupted):
        train(job(folder, checkpoint), tmp_path / "curve.parquet")
    monkeypatch.undo()
    fingerprint = job(folder).fingerprint()
    newest = load_checkpoint(checkpoint, fingerprint)
    assert newest is not None and newest["step"] == 3
    assert torch_load(previous_checkpoint(checkpoint))["step"] == 2
    assert not list(tmp_path.glob(".*partial*"))
    resume_and_compare(folder, checkpoint, tmp_path / "curve.parquet", reference)


def torch_load(path):
    import torch

    return torch.load(path, weights_only=True)


HOLD_THE_CHECKPOINT = """
import logging, sys, time
from algoprogress.checkpoints import sole_writer
logging.basicConfig(stream=sys.stderr, format="%(message)s")
with sole_writer(sys.argv[1]):
    print("writing", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_checkpoint_has_one_writer_at_a_time(repo, tmp_path):
    """Row: a second job for the same curve while the first still runs (a SLURM resubmission during the first's
    KillWait, a rerun beside an orphaned job of a killed Snakemake) -> it waits until the first has exited, SIGKILL
    included, and only then writes."""
    checkpoint = tmp_path / "checkpoints" / "seed0.pt"
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}

    def job(seconds):
        return subprocess.Popen([sys.executable, "-c", HOLD_THE_CHECKPOINT, str(checkpoint), str(seconds)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    first = job(600)
    try:
        assert first.stdout.readline() == "writing\n"
        second = job(0)
        warning = second.stderr.readline()
        assert warning.startswith(f"{checkpoint}.lock: another job still writes this checkpoint")
        assert second.poll() is None
    finally:
        first.kill()
        first.wait(timeout=60)
    assert second.stdout.readline() == "writing\n" and second.wait(timeout=60) == 0


def test_a_curve_finished_by_the_job_waited_for_is_kept(repo, mnist_betons, reference, tmp_path, capsys):
    """Row: Snakemake died on SLURM and its training job ran on and finished while the rerun's submission of the same
    job waited for it -> the waiting job keeps that curve (its rows match their hash, its fingerprint the job's)
    instead of training it again. Without having waited, or for another job's curve, nothing is kept."""
    from algoprogress.launch import finished_by_another, run_training

    folder, _ = mnist_betons
    checkpoint, curve = tmp_path / "seed0.pt", tmp_path / "seed0.parquet"
    mine = job(folder, checkpoint=str(checkpoint))
    curves.write_curve(curve, reference, {"fingerprint": mine.fingerprint()})
    assert finished_by_another(mine, str(curve)) and not finished_by_another(job(folder, seed=1), str(curve))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_CHECKPOINT, str(checkpoint), "600"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(repo / "src")})

    class EndTheHolderOnceWaiting(logging.Handler):  # the holder ends once run_training says it waits for it
        def emit(self, record):
            if "another job still writes this checkpoint" in record.getMessage():
                holder.kill()

    handler = EndTheHolderOnceWaiting()
    logging.getLogger("algoprogress.checkpoints").addHandler(handler)
    try:
        assert holder.stdout.readline() == "writing\n"
        written = curve.stat().st_mtime_ns
        run_training(mine, str(curve))  # waits for the holder, then keeps its curve
    finally:
        logging.getLogger("algoprogress.checkpoints").removeHandler(handler)
        holder.kill()
        holder.wait(timeout=60)
    assert "finished by an earlier submission of this job, which this one waited for; kept" in capsys.readouterr().err
    assert curve.stat().st_mtime_ns == written


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_torn_or_corrupt_checkpoint_falls_back_to_the_previous_one(mnist_betons, reference,
                                                                    interrupted_in_an_evaluation, tmp_path, caplog,
                                                                    damage):
    """Row: a torn or corrupted checkpoint -> detected (content hash), reported by path, the previous one used."""
    folder, _ = mnist_betons
    checkpoint = checkpoint_copy(interrupted_in_an_evaluation, tmp_path)
    data = bytearray(checkpoint.read_bytes())
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    else:
        data[len(data) // 2] ^= 0xFF  # inside tensor data: torch.load alone would not notice
        checkpoint.write_bytes(bytes(data))
    previous_step = torch_load(previous_checkpoint(checkpoint))["step"]
    assert previous_step == 2 and load_checkpoint(checkpoint, job(folder).fingerprint())["step"] == 2
    assert str(checkpoint) in caplog.text and ("unreadable" in caplog.text or "corrupt checkpoint" in caplog.text)
    resume_and_compare(folder, checkpoint, tmp_path / "curve.parquet", reference)


def test_checkpoint_with_code_in_it_is_not_executed(tmp_path, caplog):
    """Security: checkpoints load with weights_only=True; a pickle that would run code is refused."""
    import torch

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"fingerprint": {}, "rows": [Exploit()]}, tmp_path / "evil.pt")
    assert load_checkpoint(tmp_path / "evil.pt", {}) is None
    assert not marker.exists() and "unreadable checkpoint" in caplog.text


def test_non_finite_loss_writes_the_curve_so_far_marked_diverged(mnist_betons, tmp_path, caplog):
    """Row: non-finite loss -> a warning naming model, step and learning rate; the curve so far is written to
    the job's output, every row marked diverged, the message in its metadata; no exception, no checkpoint left."""
    folder, _ = mnist_betons
    checkpoint = tmp_path / "job.pt"
    diverging = job(folder, checkpoint, lr=1e12, schedule="constant", momentum=0.0)
    rows = train(diverging, tmp_path / "curve.parquet")
    pattern = r"tiny-shuffle seed 0: non-finite loss at step \d+ \(lr 1e\+12\); the curve ends at step \d+"
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(re.match(pattern, message) for message in warnings), warnings
    kept = curves.read_curve(tmp_path / "curve.parquet")
    stopped = curves.read_curve_metadata(tmp_path / "curve.parquet")["stopped"]
    assert kept["step"].iloc[0] == 0 and len(kept) == len(rows) >= 1
    assert f"the curve ends at step {kept['step'].iloc[-1]}," in stopped
    # the curve ends at its last evaluation before the non-finite step (the job evaluates at 0, 2, 4, 5, 8, 10)
    step = int(re.search(r"at step (\d+)", stopped).group(1))
    assert kept["step"].iloc[-1] == max(s for s in [0, 2, 4, 5, 8, 10] if s <= step - 1)
    assert kept["diverged"].all() and (kept["trial"] == "base").all()
    assert re.match(pattern, stopped) and stopped in warnings
    assert not checkpoint.exists() and not previous_checkpoint(checkpoint).exists()


# --- a full disk -------------------------------------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path):
    """A 2 MiB tmpfs the test mounts (root, as in CI) and unmounts."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    assert done.returncode == 0, f"cannot mount a tmpfs (the test needs root): {done.stderr.strip()}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_no_space_while_writing_betons(repo, small_filesystem, tmp_path):
    """Row: no space left while writing a .beton -> one-line error, no partial file."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"max_images_per_class": 40, "resolution": 64},
                                      "models": [{"name": "resnet18", "published": "2015-12-10"},
                                                 {"name": "alexnet", "published": "2012-06-01"}]}))
    result = subprocess.run([sys.executable, str(repo / "workflow" / "scripts" / "prepare_data.py"), "--config",
                             str(config), "--out-dir", str(small_filesystem / "data")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith("No space left on device; nothing was written")
    assert list((small_filesystem / "data").iterdir()) == []


def test_no_space_while_writing_a_curve_keeps_the_old_one(small_filesystem, reference):
    """Row: no space left while writing a curve -> an error, the curve already there untouched, no partial file."""
    path = small_filesystem / "curve.parquet"
    curves.write_curve(path, reference, {"note": "the good one"})
    before = path.read_bytes()
    ballast = small_filesystem / "ballast"
    ballast.write_bytes(b"\0" * (2 * 1024 * 1024 - len(before) - 8192))
    big = pd.concat([reference] * 2000, ignore_index=True)
    with pytest.raises(OSError, match="No space left"):
        curves.write_curve(path, big, {"note": "too big"})
    assert path.read_bytes() == before and curves.read_curve(path)["step"].tolist() == reference["step"].tolist()
    assert sorted(p.name for p in small_filesystem.iterdir()) == ["ballast", "curve.parquet"]


# --- corrupt curves ----------------------------------------------------------------------------------------


def test_corrupt_curve_is_detected_by_its_hash(reference, tmp_path):
    """Row: corrupted or truncated Parquet curve -> detected (hash in the file's metadata), reported by path;
    the check moves nothing."""
    import pyarrow.parquet as pq

    path = tmp_path / "curve.parquet"
    curves.write_curve(path, reference, {})
    table = pq.read_table(path)
    altered = table.to_pandas()
    altered.loc[3, "val_top1"] = 0.99  # a silently changed value, the old metadata kept
    import pyarrow as pa

    pq.write_table(pa.Table.from_pandas(altered, preserve_index=False).replace_schema_metadata(table.schema.metadata),
                   tmp_path / "altered.parquet")
    with pytest.raises(curves.CurveError, match=r"altered.parquet: corrupt curve"):
        curves.read_curve(tmp_path / "altered.parquet")
    (tmp_path / "torn.parquet").write_bytes(path.read_bytes()[:300])
    with pytest.raises(curves.CurveError, match=r"torn.parquet: unreadable curve"):
        curves.read_curve(tmp_path / "torn.parquet")
    altered = tmp_path / "altered.parquet"
    before = sorted(tmp_path.iterdir())
    assert curves.corrupt_curves([path, altered, tmp_path / "missing.parquet"]) == {
        str(altered): f"{altered}: corrupt curve (its rows differ from the hash saved with them)"}
    # while the workflow parses (no pyarrow there): the frame of the file; the rows' hash is the reading job's check
    assert parquet_frame_problem(path) is None and parquet_frame_problem(altered) is None
    whole = path.read_bytes()
    for name, damaged in (("torn", whole[:300]), ("cut", whole[:-1]), ("zeroed", b"\0" * len(whole)),
                          ("footer", whole[:-8] + (len(whole)).to_bytes(4, "little") + b"PAR1")):
        (tmp_path / f"{name}.parquet").write_bytes(damaged)
        assert parquet_frame_problem(tmp_path / f"{name}.parquet").startswith(f"{tmp_path / name}.parquet: unreadable")
    job_line = curve_problem_in_job(str(curves.corrupt_curves([altered])[str(altered)]))
    assert job_line.startswith(f"{altered}: corrupt curve") and "to set it aside, then rerun" in job_line
    assert sorted(tmp_path.iterdir()) == sorted([*before, *(tmp_path / f"{name}.parquet"
                                                             for name in ("cut", "zeroed", "footer"))])


# --- the workflow ------------------------------------------------------------------------------------------


def snapshot(workdir):
    """Every file of a run but Snakemake's own records, with its content and time stamp."""
    return {str(path.relative_to(workdir)): (sha256_of_file(path), path.stat().st_mtime_ns)
            for path in sorted(workdir.rglob("*")) if path.is_file() and ".snakemake" not in path.parts}


@pytest.mark.slow
def test_damaged_curve_and_data_stop_the_run_until_repaired(snakemake_bin, workflow_copy, finished_run, tmp_path):
    """Rows: corrupt .beton, corrupt curve -> the run stops (a dry run too) with one line per damaged file
    naming the repair command, and writes nothing; a training job that finds its data damaged stops the same
    way; the repair command sets the curve aside and rewrites the data; the next run retrains that curve only."""
    from algoprogress.datafiles import damaged_data_files

    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    results = workdir / "results"
    curve = results / "curves" / "shufflenet_v2_x0_5" / "base" / "seed0.parquet"  # the cheaper model is retrained
    kept = [results / "curves" / model / "base" / f"seed{seed}.parquet"
            for model, seed in (("shufflenet_v2_x0_5", 1), ("mobilenet_v2", 0))]
    kept_digests = [sha256_of_file(path) for path in kept]

    # a byte flipped inside val.beton (its size unchanged) is found by the training job that reads it
    val = results / "data" / "val.beton"
    data = bytearray(val.read_bytes())
    data[len(data) // 2] ^= 0xFF
    val.write_bytes(bytes(data))
    finished_curve = curve.read_bytes()
    curve.unlink()  # as if its training had not finished
    run = snakemake(snakemake_bin, workflow_copy, workdir)
    output = run.stdout + run.stderr
    assert run.returncode != 0 and trained(output) == [("shufflenet_v2_x0_5", "0")]
    stopped = [line for line in output.splitlines() if line.startswith("error: results/data/val.beton")]
    assert stopped and set(stopped) == {stopped[0]}, output[-3000:]
    command = re.fullmatch(r"error: results/data/val\.beton: corrupt or truncated \(its SHA-256 differs from "
                           r"the manifest's\); run `(.+)` to rewrite it as prepare_data wrote it, then rerun: "
                           r"no finished curve is retrained", stopped[0]).group(1)
    assert val.read_bytes() == bytes(data) and not curve.exists()

    # a torn curve and a truncated train.beton stop the run while it is parsed, a dry run too
    curve.write_bytes(finished_curve[:-100])
    with open(results / "data" / "train.beton", "r+b") as handle:
        handle.truncate(1000)
    listed_bytes = read_json(results / "data" / "manifest.json")["train"]["bytes"]
    before = snapshot(workdir)
    for args in ((), ("--dry-run",)):
        run = snakemake(snakemake_bin, workflow_copy, workdir, *args)
        errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error: ")]
        assert run.returncode != 0 and len(errors) == 2, run.stdout + run.stderr
        assert errors[0].startswith("error: results/curves/shufflenet_v2_x0_5/base/seed0.parquet: unreadable curve (")
        assert errors[0].endswith(f"; run `{command}` to set it aside, then rerun: only it is retrained")
        assert errors[1] == (f"error: results/data/train.beton: corrupt or truncated (1000 bytes, the manifest says "
                             f"{listed_bytes}); run `{command}` to rewrite it as prepare_data wrote it, then rerun: "
                             "no finished curve is retrained")
        assert "wildcards:" not in run.stdout + run.stderr
        assert snapshot(workdir) == before  # nothing written, moved or removed

    # the command named repairs both; the next run retrains the damaged curve only
    python, *arguments = shlex.split(command)
    assert python == "python"
    repaired = subprocess.run([sys.executable, *arguments], check=False, capture_output=True, text=True,
                              timeout=600)
    assert repaired.returncode == 0, repaired.stderr
    assert "results/curves/shufflenet_v2_x0_5/base/seed0.parquet: unreadable curve" in repaired.stderr
    assert curve.with_name("seed0.parquet.corrupt").read_bytes() == finished_curve[:-100] and not curve.exists()
    assert damaged_data_files(results / "data" / "manifest.json", check_hash=True) == {}
    # the curve and the first analysis job that reads it (the rest of the analysis is the same Snakemake rerun)
    run = snakemake(snakemake_bin, workflow_copy, workdir, str(curve.relative_to(workdir)), "results/thresholds.csv")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert trained(output) == [("shufflenet_v2_x0_5", "0")]
    assert "rule prepare_data" not in output and "rule thresholds" in output
    assert [sha256_of_file(path) for path in kept] == kept_digests
    assert curves.read_curve(curve)["step"].iloc[0] == 0


def test_a_curve_with_a_computed_nan_reads_back_as_written(tmp_path):
    """A diverging model's evaluation can produce a NaN whose bits differ from numpy's (inf - inf gives
    0xfff8...); Parquet reads every NaN back as numpy's: the saved hash must not call such a curve corrupt
    (seen on an H100 machine whose pandas 3.0.6 hashes NaN by its bits, unlike 3.1.1: a diverged curve was
    called corrupt on read)."""
    import numpy as np
    import torch

    computed_nan = (torch.tensor([float("inf")]) - torch.tensor([float("inf")])).item()
    assert np.array([computed_nan]).view("u8")[0] != np.array([np.nan]).view("u8")[0]
    row = dict.fromkeys(curves.CURVE_COLUMNS, 0.0)
    row.update(model="m", arch="resnet18", trial="base", recipe="custom", seed=0, step=0, resolution=64,
               diverged=True, val_loss=computed_nan)
    curves.write_curve(tmp_path / "curve.parquet", [row], {"model": "m"})
    back = curves.read_curve(tmp_path / "curve.parquet")
    assert np.isnan(back["val_loss"].iloc[0]) and back["diverged"].all()
    assert curves.corrupt_curves([tmp_path / "curve.parquet"]) == {}
