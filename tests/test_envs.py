"""The conda environments: parse, pinned, conda-forge only, and the same versions as requirements.txt.

(The conda channels cannot be reached where the tests run, so the environments are checked, not built.)
"""

import re

import pytest
import yaml

# conda-forge name -> PyPI name, where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "pyyaml": "PyYAML"}
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
