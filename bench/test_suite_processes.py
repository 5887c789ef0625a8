"""Where the test suite's CPU time goes, by kind of process (docs/timing.md, "Where the CPU goes").

Runs the suite (as `make test` does, set-up excluded) with a `sitecustomize` on PYTHONPATH that makes every
Python process it starts (pytest's workers, Snakemake, each job's script, each training process) append its
own CPU time, its command and the test that started it to a log; then sums the log by kind of process and by
test. Processes killed with SIGKILL write nothing (the fault tests kill some on purpose): the table's total
is a little under `time`'s.
    .venv/bin/python bench/test_suite_processes.py [more pytest arguments, e.g. tests/test_resume.py]
"""

import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HOOK = '''
import atexit, json, os, resource, sys

def _log():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["ALGOPROGRESS_PROCESS_LOG"], "a") as log:
        log.write(json.dumps({"argv": sys.argv[:3], "cpu": usage.ru_utime + usage.ru_stime,
                              "test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]}) + "\\n")

atexit.register(_log)
'''


def kind(argv: list[str]) -> str:
    command = " ".join(argv)
    if "train.py" in command or "launch.py" in command:
        return "training process"
    if argv[0].endswith(os.path.join("pytest", "__main__.py")):
        return "pytest's main process"
    if argv[:1] == ["-c"]:  # pytest-xdist workers, and the tests' `python -c` helpers (with or without arguments)
        return "pytest worker (the tests' own code) or python -c"
    if ".snakemake/scripts" in command:
        return "Snakemake job script: " + Path(argv[0]).name.split(".", 1)[1]
    if "snakemake" in command:
        return "snakemake"
    return Path(argv[0]).name


def main(pytest_args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as hook_dir:
        (Path(hook_dir) / "sitecustomize.py").write_text(HOOK)
        log = Path(hook_dir) / "processes.jsonl"
        env = {**os.environ, "ALGOPROGRESS_PROCESS_LOG": str(log),
               "PYTHONPATH": os.pathsep.join(filter(None, [hook_dir, os.environ.get("PYTHONPATH")]))}
        subprocess.run([sys.executable, "-m", "pytest", "-q", *pytest_args], env=env, check=False)
        rows = [json.loads(line) for line in log.read_text().splitlines()]
    by_kind, by_test = collections.defaultdict(lambda: [0, 0.0]), collections.defaultdict(float)
    for row in rows:
        totals = by_kind[kind(row["argv"])]
        totals[0] += 1
        totals[1] += row["cpu"]
        by_test[row["test"] or "(no test: collection, fixtures of a whole session)"] += row["cpu"]
    total = sum(cpu for _, cpu in by_kind.values())
    print(f"\n{len(rows)} processes, {total:.0f} CPU-seconds\n\n| kind of process | processes | CPU-seconds | share |")
    print("|---|---:|---:|---:|")
    for name, (count, cpu) in sorted(by_kind.items(), key=lambda item: -item[1][1]):
        print(f"| {name} | {count} | {cpu:.0f} | {cpu / total:.0%} |")
    print("\n| test (the processes it started) | CPU-seconds |\n|---|---:|")
    for name, cpu in sorted(by_test.items(), key=lambda item: -item[1])[:15]:
        print(f"| {name} | {cpu:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
