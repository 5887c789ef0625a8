"""Run a training job on the GPUs it claims: in this process for one GPU, under torchrun for several.

``run_training`` claims the job's GPUs (``algoprogress.gpus``), then either trains here or starts
``torchrun --standalone --nproc-per-node N`` on this module, which trains in every process
(DistributedDataParallel). SIGTERM is passed on to torchrun, which passes it to its workers: they
checkpoint and exit, so a retry resumes. On a machine without GPUs, N > 1 runs N CPU processes
(gloo), which is how the tests exercise the distributed path.

Worker entry point: ``python -m algoprogress.launch --job JOB.json --out CURVE.parquet``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from algoprogress import checkpoints, curves, gpus
from algoprogress.training import TrainingJob, train

SOURCE_DIR = Path(__file__).resolve().parents[1]


class TrainingFailed(RuntimeError):
    pass


def job_to_json(job: TrainingJob) -> dict:
    data = dataclasses.asdict(job)
    data["multiply_adds"] = {str(k): v for k, v in job.multiply_adds.items()}
    data["measured_flops"] = {str(k): v for k, v in job.measured_flops.items()}
    return data


def job_from_json(data: dict) -> TrainingJob:
    data = dict(data)
    data["multiply_adds"] = {int(k): v for k, v in data["multiply_adds"].items()}
    data["measured_flops"] = {int(k): v for k, v in data["measured_flops"].items()}
    return TrainingJob(**data)


def finished_by_another(job: TrainingJob, curve_path: str) -> bool:
    """Whether ``curve_path`` already holds this job's whole curve: written by an earlier submission of the job that
    this one waited for (``checkpoints.sole_writer``: a SLURM job of a Snakemake that died, which ran on and
    finished), its rows matching their hash and its fingerprint this job's. Snakemake removes a job's output before
    running it, so nothing else puts a curve there."""
    if not os.path.exists(curve_path):
        return False
    try:
        curves.read_curve(curve_path)
    except curves.CurveError:
        return False
    return curves.read_curve_metadata(curve_path).get("fingerprint") == json.loads(json.dumps(job.fingerprint()))


def run_training(job: TrainingJob, curve_path: str, processes: int = 1) -> None:
    with checkpoints.sole_writer(job.checkpoint_path) as waited:
        if waited and finished_by_another(job, curve_path):
            print(f"{curve_path}: finished by an earlier submission of this job, which this one waited for; kept",
                  file=sys.stderr)
            return
        with gpus.claim(processes):
            if processes == 1:
                train(job, curve_path)
                return
            _torchrun(job, curve_path, processes)


def _torchrun(job: TrainingJob, curve_path: str, processes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="algoprogress-job-") as folder:
        job_file = Path(folder) / "job.json"
        job_file.write_text(json.dumps(job_to_json(job)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE_DIR), os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": str(max(1, job.threads))}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   "-m", "algoprogress.launch", "--job", str(job_file), "--out", str(curve_path)]
        process = subprocess.Popen(command, env=env, stdout=sys.stderr, stderr=sys.stderr)
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signal.SIGTERM))
        try:
            code = process.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if code != 0:
            raise TrainingFailed(f"{job.model_name} seed {job.seed}: torchrun with {processes} processes "
                                 f"exited with status {code} (the workers' messages are above)")


def main(argv=None) -> None:
    from algoprogress.cli import log_to
    from algoprogress.training import TrainingInterrupted

    parser = argparse.ArgumentParser(description="one torchrun worker of a training job")
    parser.add_argument("--job", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    log_to(None)
    job = job_from_json(json.loads(Path(args.job).read_text()))
    try:
        train(job, args.out)
    except TrainingInterrupted as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
