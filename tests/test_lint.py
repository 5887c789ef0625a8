"""The linters CI runs: `snakemake --lint`, `snakefmt --check` and `ruff check` (config in pyproject.toml)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path


def tool(name):
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def test_snakemake_lint_reports_nothing(repo):
    result = subprocess.run([tool("snakemake"), "--lint"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_snakefmt_check_passes(repo):
    result = subprocess.run([tool("snakefmt"), "--check", "Snakefile", "rules"], cwd=repo, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_passes(repo):
    """Every Python file of the repository; ruff's version is pinned, so what it reports is the same everywhere."""
    pinned = re.search(r"^ruff==(\S+)$", (repo / "requirements.txt").read_text(), re.MULTILINE)
    version = subprocess.run([tool("ruff"), "--version"], capture_output=True, text=True, timeout=60).stdout.split()
    assert pinned and version[-1:] == [pinned.group(1)], f"ruff {version} is not the pinned one: run make setup"
    result = subprocess.run([tool("ruff"), "check", "."], cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
