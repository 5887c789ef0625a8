"""Snakemake's command line, run as a new process forked from one that has already imported Snakemake.

The suite runs `snakemake` about forty times to completion (plans, reruns, repairs). A new `snakemake` process
spends about 1 CPU-second importing Snakemake, its plugins (the SLURM plugin imports pandas) and collecting
them, before it reads the Snakefile; on two cores that was about a tenth of the suite's CPU time
(docs/timing.md). Here one server process per test worker imports all that once (Python's `forkserver`, with
nothing else done in it: no workflow is ever parsed there) and every run is a process forked from it: a
process of its own, with the caller's working directory, environment and a fresh interpreter's `sys.path`,
its own stdout and stderr, running `snakemake.cli.main` (what the `snakemake` executable runs) with the
same arguments, then the exit handlers a normal exit runs. Snakemake's jobs are new processes as before.

`run(command)` takes the command line `tests.helpers.snakemake_command` builds (``command[0]``, the
executable, only names it) and returns what `subprocess.run(command, capture_output=True, text=True)`
would. With ALGOPROGRESS_TEST_SNAKEMAKE=exec every run is that `subprocess.run` instead. Tests that signal a
running Snakemake (the killed-Snakemake row, the SLURM run) start the executable themselves.

Imports nothing but the standard library: the server imports this module, and tests/snakemake_server.py.
"""

import atexit
import functools
import json
import multiprocessing
import multiprocessing.forkserver
import os
import subprocess
import sys
import tempfile


def _main(argv, cwd, env, sys_path, stdout_path, stderr_path):
    """In the forked process: become `snakemake <argv>` started in ``cwd`` with ``env``."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.close(stdin)
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = list(argv)
    sys.path[:] = sys_path
    from snakemake.cli import main

    try:
        main()
    finally:
        atexit._run_exitfuncs()  # as at a normal interpreter exit (multiprocessing's children skip them)
        sys.stdout.flush()
        sys.stderr.flush()


@functools.cache
def _fresh_sys_path(executable: str) -> list[str]:
    """The `sys.path` of a new `snakemake` process: its script's folder, then the interpreter's own path (with
    the caller's PYTHONPATH, whatever site adds)."""
    shown = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                           capture_output=True, text=True, check=True, timeout=60).stdout
    return [os.path.dirname(os.path.abspath(executable)), *json.loads(shown)]


@functools.cache
def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.snakemake_server", __name__])
    atexit.register(_stop_server)
    return context


def _stop_server():
    """At this process's exit, stop the server and wait for it: its runs' CPU time then counts among this process's
    children's (what `time make test` and resource.getrusage report), not an orphan's. (Python's own tests stop it
    so; where the method is missing, the server stops by itself once this process has exited.)"""
    stop = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def run(command, cwd=None, timeout=900):
    """``command`` (the executable, then Snakemake's arguments) run to its end in ``cwd`` (else here), as
    `subprocess.run` would with captured text output."""
    if os.environ.get("ALGOPROGRESS_TEST_SNAKEMAKE") == "exec":
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="snakemake-run-") as folder:
        stdout_path, stderr_path = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        argv = [str(part) for part in command]
        process = _context().Process(target=_main, args=(argv, str(cwd or os.getcwd()), dict(os.environ),
                                                         _fresh_sys_path(argv[0]), stdout_path, stderr_path))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout)
        with open(stdout_path) as stdout, open(stderr_path) as stderr:
            return subprocess.CompletedProcess(command, process.exitcode, stdout.read(), stderr.read())
