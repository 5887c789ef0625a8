#!/usr/bin/env bash
# Time the test suite as `make test` runs it (set-up excluded), for docs/timing.md ("Timing of `make test`"):
# the machine, the versions, the wall and CPU time, and the slowest tests.
#   bench/test_suite_timing.sh [more pytest arguments, e.g. -n 0]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s setup
echo "date: $(date -u +%F)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') x $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"
.venv/bin/python - <<'PY'
from importlib.metadata import version
import platform
names = ["pytest", "pytest-xdist", "snakemake", "snakemake-executor-plugin-slurm", "torch", "ffcv"]
print("python " + platform.python_version() + "; " + ", ".join(f"{n} {version(n)}" for n in names))
PY
TIMEFORMAT='wall %R s, user %U s, sys %S s'
time .venv/bin/python -m pytest --durations=25 -q "$@"
