"""Snakemake's command line, run as a new process forked from one that has already imported Snakemake.

The suite runs `snakemake` about forty times to completion (plans, reruns, repairs). A new `snakemake` process
spends about 1 CPU-second importing Snakemake, its plugins (the SLURM plugin imports pandas) and collecting
them, before it reads the Snakefile; on two cores that was about a tenth of the suite's CPU time
(docs/timing.md). Here one server process per test worker imports all that once (Python's `forkserver`, with
nothing else done in it: no workflow is ever parsed there) and every run is a process forked from it: a
process of its own, with the caller's working directory and environment, the `sys.path` a new `snakemake`
process has, its own stdin (empty), stdout and stderr, running `snakemake.cli.main` (what the `snakemake`
executable runs) with the same arguments, then the exit handlers a normal exit runs. Snakemake's jobs are new
processes as before.

What such a run has that a new process would not: the modules the server imported (Snakemake's, its plugins',
pandas and numpy, this module and tests/snakemake_server.py), with what they read from the environment at the
server's start; multiprocessing's default start method is `forkserver`; the hash seed is the server's, the
same for every run of one worker; warnings printed while those modules were imported went to the server's
stderr. `tests/test_workflow.py::test_the_forked_snakemake_plans_and_fails_as_the_executable` compares a run
both ways; with ALGOPROGRESS_TEST_SNAKEMAKE=exec every run starts the executable (`subprocess.run`) instead.
Tests that signal a running Snakemake (the killed-Snakemake row, the SLURM run) start the executable themselves.

`run(command)` takes the command line `tests.helpers.snakemake_command` builds (``command[0]``, the
executable, only names it) and returns what `subprocess.run(command, capture_output=True, text=True)` would.

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
import threading


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
    """The forkserver context, its server started. CPython 3.11's server imports its preload modules on its own
    default `sys.path` (it is passed the caller's but does not set it), so the folder that holds `tests` is put on
    the server's PYTHONPATH for its start (its runs get the caller's environment back)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.snakemake_server", __name__])
    above_tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([above_tests, *([before] if before else [])])
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    atexit.register(_stop_server)
    return context


def _stop_server(seconds=60):
    """At this process's exit, stop the server and wait for it (at most ``seconds``): its runs' CPU time then counts
    among this process's children's (what `time make test` and resource.getrusage report), not an orphan's.
    (Python's own tests stop it so; where the method is missing, the server stops by itself once this process has
    exited.)"""
    stop = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stopping = threading.Thread(target=stop, daemon=True)  # a run still going would keep the server waiting
        stopping.start()
        stopping.join(seconds)


def run(command, cwd=None, timeout=900):
    """``command`` (the executable, then Snakemake's arguments) run to its end in ``cwd`` (else here), as
    `subprocess.run` would with captured text output."""
    if os.environ.get("ALGOPROGRESS_TEST_SNAKEMAKE") == "exec":
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="snakemake-run-") as folder:
        stdout_path, stderr_path = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        for path in (stdout_path, stderr_path):  # there even when a run fails before it opens them
            open(path, "w").close()
        argv = [str(part) for part in command]
        process = _context().Process(target=_main, args=(argv, str(cwd or os.getcwd()), dict(os.environ),
                                                         _fresh_sys_path(argv[0]), stdout_path, stderr_path))

        def output():
            with open(stdout_path) as stdout, open(stderr_path) as stderr:
                return stdout.read(), stderr.read()

        try:
            process.start()
            process.join(timeout)
        except BaseException:  # as subprocess.run: the run does not outlive an interrupted caller
            if process.pid is not None:  # started
                process.kill()
                process.join()
            raise
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout, *output())
        return subprocess.CompletedProcess(command, process.exitcode, *output())
