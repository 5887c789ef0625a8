"""Concurrent training jobs on one machine claim disjoint GPUs (real fcntl locks across processes)."""

import multiprocessing
import os
import time

from algoprogress import gpus


def hold(lock_dir, count, held_for, results, releases=None):
    with gpus.claim(count, available=["0", "1", "2"], lock_dir=lock_dir, poll_seconds=0.05) as ids:
        results.put((os.getpid(), time.monotonic(), ids, os.environ["CUDA_VISIBLE_DEVICES"]))
        time.sleep(held_for)
        if releases is not None:
            releases.put(time.monotonic())  # before the claim ends: every release happens after this time


def test_concurrent_jobs_get_disjoint_gpus_and_a_third_waits(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    context = multiprocessing.get_context("fork")
    results, releases = context.Queue(), context.Queue()
    first = context.Process(target=hold, args=(tmp_path, 2, 1.5, results, releases))
    second = context.Process(target=hold, args=(tmp_path, 1, 1.5, results, releases))
    first.start()
    second.start()
    a, b = results.get(timeout=30), results.get(timeout=30)
    assert not set(a[2]) & set(b[2]) and len(a[2]) + len(b[2]) == 3
    assert a[3] == ",".join(a[2]) and b[3] == ",".join(b[2])

    third = context.Process(target=hold, args=(tmp_path, 1, 0, results))
    third.start()
    c = results.get(timeout=30)
    first_release = min(releases.get(timeout=30), releases.get(timeout=30))
    # an order, not a duration: the third job gets its GPU only after one of the first two has let go
    assert c[1] > first_release, "the third job found a GPU while all three were held"
    for process in (first, second, third):
        process.join(timeout=30)


def test_a_killed_job_releases_its_gpu(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    holder = context.Process(target=hold, args=(tmp_path, 3, 60, results))
    holder.start()
    results.get(timeout=30)
    holder.kill()
    holder.join()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with gpus.claim(3, available=["0", "1", "2"], lock_dir=tmp_path, poll_seconds=0.05) as ids:
        assert ids == ["0", "1", "2"] and os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_no_gpus_means_nothing_to_claim(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpus.machine_gpus() == []
    with gpus.claim(1) as ids:
        assert ids == []
