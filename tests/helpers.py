"""Helpers shared by the test modules."""

import subprocess

WORKFLOW_FILES = ["Snakefile", "rules", "workflow", "src", "config", "envs", "profiles", "resources", "report", "tests/data"]


def snakemake(snakemake_bin, workflow, workdir, *args, configfile=None):
    """Run the workflow at ``workflow`` (the repository or a copy) in ``workdir`` on the tiny config."""
    command = [snakemake_bin, "-s", str(workflow / "Snakefile"), "--directory", str(workdir), "--cores", "2",
               "--configfile", str(configfile or workflow / "tests" / "data" / "tiny.yaml"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)
