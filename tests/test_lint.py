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
