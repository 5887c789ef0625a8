"""The conda environments: parse, pinned, conda-forge only, and the same versions as requirements.txt; each holds
what its rules' jobs import; and the Snakemake environment (envs/snakemake.yaml), built with pip, parses and
dry-runs the workflow.

(The conda channels cannot be reached where the tests run, so the jobs' environments are checked, not built.)
"""

import dis
import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_workflow, planned_jobs, run

# conda-forge name -> PyPI name, where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "pyyaml": "PyYAML",
                 "snakemake-minimal": "snakemake"}
NOT_ON_PYPI = {"python", "opencv", "libjpeg-turbo", "pkg-config", "cxx-compiler", "pip"}


def requirements(repo) -> dict[str, str]:
    pins = {}
    for line in (repo / "requirements.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower()] = version.split("+")[0]
    return pins


@pytest.fixture(params=["training", "analysis"])
def env(request, repo):
    return request.param, yaml.safe_load((repo / "envs" / f"{request.param}.yaml").read_text())


def test_env_is_conda_forge_only_and_fully_pinned(env):
    name, spec = env
    assert spec["channels"] == ["conda-forge", "nodefaults"]
    for dependency in spec["dependencies"]:
        if isinstance(dependency, dict):
            assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[^=]+", p) for p in dependency["pip"]), dependency
        else:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+=[0-9][^=]*", dependency), f"{name}: {dependency} is not pinned"


def test_env_versions_agree_with_requirements(env, repo):
    name, spec = env
    pins = requirements(repo)
    for dependency in spec["dependencies"]:
        entries = dependency["pip"] if isinstance(dependency, dict) else [dependency]
        for entry in entries:
            package, version = re.split(r"==?", entry, maxsplit=1)
            if package in NOT_ON_PYPI:
                continue
            pypi = CONDA_TO_PYPI.get(package, package).lower()
            assert pins.get(pypi) == version, \
                f"envs/{name}.yaml: {package} {version}, requirements.txt {pins.get(pypi)}"


def test_env_python_matches_the_supported_version(env, repo):
    _, spec = env
    assert "python=3.11" in spec["dependencies"]


def test_every_rule_has_a_log_and_a_conda_env(repo):
    for path in (repo / "rules").glob("*.smk"):
        text = path.read_text()
        for rule in re.split(r"\nrule ", text)[1:]:
            name = rule.split(":")[0]
            assert "    log:" in rule and "    conda:" in rule, f"{path.name}: rule {name} lacks log: or conda:"


def env_packages(repo, name) -> dict[str, str]:
    """PyPI name (lower case) -> version of each package envs/<name>.yaml installs (conda and pip entries)."""
    packages = {}
    for dependency in yaml.safe_load((repo / "envs" / f"{name}.yaml").read_text())["dependencies"]:
        for entry in dependency["pip"] if isinstance(dependency, dict) else [dependency]:
            package, version = re.split(r"==?", entry, maxsplit=1)
            packages[CONDA_TO_PYPI.get(package, package).lower().replace("_", "-")] = version
    return packages


@functools.cache
def imports_in(path: Path, everywhere: bool) -> frozenset[str]:
    """The modules ``path`` imports (``from a import b`` gives both ``a`` and ``a.b``), read from its bytecode: in its
    module-level code, or (``everywhere``) in its functions and classes too. Bytecode rather than ``ast``: CPython
    3.11.7's ``ast.parse`` now and then fails in a long-lived test worker ("AST constructor recursion depth
    mismatch", python/cpython#106905, fixed in 3.11.8); ``compile`` to bytecode makes no AST objects."""
    objects, names = [compile(path.read_text(), str(path), "exec")], set()
    while objects:
        code, module = objects.pop(), None
        for instruction in dis.get_instructions(code):
            if instruction.opname == "IMPORT_NAME" and instruction.argval:
                module = instruction.argval
                names.add(module)
            elif instruction.opname == "IMPORT_FROM" and module:
                names.add(f"{module}.{instruction.argval}")
        if everywhere:
            objects += [constant for constant in code.co_consts if isinstance(constant, types.CodeType)]
    return frozenset(names)


@functools.cache
def installed_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def third_party(name: str) -> bool:
    top = name.split(".")[0]
    return top not in sys.stdlib_module_names and top not in ("algoprogress", "algoprogress_path", "__future__")


def third_party_imports(path: Path, repo: Path, everywhere: bool) -> set[str]:
    """The top-level modules outside the standard library that ``path`` imports, following the package's own
    modules: at any level (``everywhere``: what any call may import) or only the imports run when modules load."""
    seen, todo, found = set(), [path], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in imports_in(module, everywhere):
            if name.split(".")[0] == "algoprogress":
                own = repo / "src" / Path(*name.split("."))
                todo += [file for file in (own.with_suffix(".py"), own / "__init__.py") if file.is_file()]
            elif third_party(name):
                found.add(name.split(".")[0])
    return found


def rule_scripts(repo) -> dict[str, tuple[Path, str]]:
    """Rule -> (its script, its conda environment's name), for every rule with a script."""
    rules = {}
    for path in (repo / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule |checkpoint )", path.read_text()):
            script = re.search(r'script:\s*"\.\./workflow/scripts/(\w+\.py)"', block)
            env = re.search(r'conda:\s*"\.\./envs/(\w+)\.yaml"', block)
            if script and env:
                rules[block.split()[1].rstrip(":")] = (repo / "workflow" / "scripts" / script.group(1), env.group(1))
    return rules


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions (lower-case PyPI names) that provide these top-level modules."""
    provided = installed_distributions()
    return {dist.lower().replace("_", "-") for module in modules for dist in provided.get(module, [module])}


def test_each_rules_environment_holds_what_its_job_imports(repo):
    """The training environment holds every import its scripts reach, at any depth (it runs training, counting and
    data preparation, which import torch, FFCV, fvcore and timm inside functions); the analysis environment what its
    scripts import when they load and what the scripts' own functions import (the package's functions that import
    torch, FLOP counting for instance, are not called by an analysis job); and the two environments together every
    import in src/ and workflow/scripts/."""
    rules = rule_scripts(repo)
    assert {"train", "count_flops", "prepare_data", "thresholds", "trend", "select_trials"} <= set(rules)
    for rule, (script, env) in rules.items():
        needed = third_party_imports(script, repo, everywhere=env == "training")
        needed |= {name.split(".")[0] for name in imports_in(script, everywhere=True) if third_party(name)}
        missing = distributions(needed) - set(env_packages(repo, env))
        assert not missing, f"rule {rule} ({script.name}) imports {sorted(missing)}, which envs/{env}.yaml lacks"
    everything = set()
    for path in [*(repo / "src").rglob("*.py"), *(repo / "workflow" / "scripts").glob("*.py")]:
        everything |= third_party_imports(path, repo, everywhere=True)
    held = set(env_packages(repo, "training")) | set(env_packages(repo, "analysis"))
    assert not distributions(everything) - held, sorted(distributions(everything) - held)


def test_the_snakemake_environment_is_snakemake_pinned_as_requirements(repo):
    packages = env_packages(repo, "snakemake")
    assert set(packages) == {"python", "snakemake"} and packages["python"] == "3.11"
    assert packages["snakemake"] == requirements(repo)["snakemake"]


@pytest.fixture(scope="module")
def snakemake_env(repo, tmp_path_factory):
    """envs/snakemake.yaml built with pip (the same pins) in a fresh virtual environment, and a fresh copy of the
    workflow (what a clone holds)."""
    folder = tmp_path_factory.mktemp("snakemake-env")
    pins = [f"{name}=={version}" for name, version in env_packages(repo, "snakemake").items() if name != "python"]
    subprocess.run([sys.executable, "-m", "venv", str(folder / "env")], check=True, timeout=120)
    # --no-compile: no bytecode written ahead (Python compiles what it imports, as it would)
    installed = run([str(folder / "env" / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", *pins],
                    timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    for heavy in ("numpy", "pandas", "PIL", "torch", "pyarrow"):  # what the workflow must not need while it parses
        absent = run([str(folder / "env" / "bin" / "python"), "-c", f"import {heavy}"])
        assert absent.returncode != 0, f"{heavy} is in the Snakemake environment: the test would prove nothing"
    clone = copy_workflow(repo, folder / "clone")
    return folder / "env" / "bin", clone


def light_dry_run(snakemake_env, tmp_path, *args):
    """A dry run of the clone's bundled config (plus ``args``) by the Snakemake environment's own executable, with
    nothing else on the path (no venv of the project's) but conda's folder where conda is."""
    bin_dir, clone = snakemake_env
    conda = [os.path.dirname(shutil.which("conda"))] if shutil.which("conda") else []
    environment = {**os.environ, "PATH": os.pathsep.join([str(bin_dir), *conda, "/usr/bin", "/bin"])}
    environment.pop("PYTHONPATH", None)
    return subprocess.run([str(bin_dir / "snakemake"), "-n", "--cores", "2", "--directory", str(tmp_path / "run"),
                           "-s", str(clone / "Snakefile"), *args], capture_output=True, text=True, timeout=300,
                          env=environment)


def imagenet_folders(tmp_path) -> Path:
    """A config pointing the ImageNet config at class folders (six: top-5 thresholds need more than five)."""
    for split in ("train", "val"):
        for index in range(6):
            (tmp_path / "imagenet" / split / f"n0{index}").mkdir(parents=True)
    override = tmp_path / "paths.yaml"
    override.write_text(yaml.safe_dump({"dataset": {"train_path": str(tmp_path / "imagenet" / "train"),
                                                    "val_path": str(tmp_path / "imagenet" / "val")}}))
    return override


@pytest.mark.slow  # pip installs Snakemake from the package index
@pytest.mark.parametrize("conda", [False, True], ids=["venv", "use-conda"])
def test_the_snakemake_environment_dry_runs_the_bundled_and_imagenet_configs(snakemake_env, tmp_path, conda):
    if conda and shutil.which("conda") is None:
        pytest.skip("no conda command here: Snakemake asks conda for its version even in a dry run with --use-conda")
    args = ["--use-conda"] if conda else []
    _, clone = snakemake_env
    bundled = light_dry_run(snakemake_env, tmp_path, *args)
    assert bundled.returncode == 0, bundled.stderr[-3000:]
    assert {"prepare_data", "count_flops", "train", "select_trials"} <= set(planned_jobs(bundled.stdout))
    imagenet = light_dry_run(snakemake_env, tmp_path, *args, "--configfile", str(clone / "config" / "imagenet.yaml"),
                             str(imagenet_folders(tmp_path)))
    assert imagenet.returncode == 0, imagenet.stderr[-3000:]
    assert planned_jobs(imagenet.stdout)["train"] > 100
    bad = light_dry_run(snakemake_env, tmp_path, "--config", "training={'batch_size': 'big'}")
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("config error: training.batch_size")
    assert not (tmp_path / "run" / "results").exists()
