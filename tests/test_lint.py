"""The linters CI runs: `snakemake --lint`, `snakefmt --check` and `ruff check` (config in pyproject.toml)."""

import ast
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


def code_lines(function, lines) -> int:
    """A function's lines of code: not blank, not a comment, not its docstring."""
    body = function.body
    docstring = body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)
    skipped = set(range(body[0].lineno, body[0].end_lineno + 1)) if docstring else set()
    return sum(1 for number in range(function.lineno, function.end_lineno + 1)
               if number not in skipped and lines[number - 1].strip() and not lines[number - 1].strip().startswith("#"))


def test_no_function_in_src_is_longer_than_80_lines_of_code(repo):
    too_long = []
    for path in sorted((repo / "src").rglob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and code_lines(node, text.splitlines()) > 80:
                too_long.append(f"{path.relative_to(repo)}:{node.lineno} {node.name}")
    assert not too_long, too_long
