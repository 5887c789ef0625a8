import os
import re
import sys

# The workflow's logic lives in the package under src/ (the scripts find it through
# workflow/scripts/algoprogress_path.py); here it checks the config before any job is planned.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from algoprogress.config import (
    ConfigError,
    check_thresholds_for_classes,
    data_content,
    flop_resolutions,
    headline_threshold,
    network_spec,
    publication_dates,
    results_settings,
    sweep_plan,
    trial_training,
    validate_config,
)
from algoprogress.data import DataError, count_classes
from algoprogress.gpus import count_machine_gpus

try:
    _validated = validate_config(config)
    NUM_CLASSES = count_classes(_validated["dataset"])
    check_thresholds_for_classes(_validated["thresholds"], NUM_CLASSES)
    _published = _validated["analysis"]["published_table"]
    if _published and not os.path.isfile(os.path.join(workflow.basedir, _published)):
        raise ConfigError(
            f"analysis.published_table: file {_published!r} does not exist"
        )
except (ConfigError, DataError) as error:
    sys.exit(f"config error: {error}")
config.clear()
config.update(_validated)

MODELS = {model["name"]: model for model in config["models"]}

# Training jobs request `gpu` = their GPU count. Run on one machine without `--resources gpu=N`, the
# limit is the number of GPUs this machine has (1 without GPUs: one training job at a time), so
# there are never more training jobs than GPUs; each job then claims GPUs of its own
# (algoprogress.gpus). Cluster executors schedule GPUs themselves: no limit is set for them.
if (
    workflow.local_exec
    and workflow.is_main_process
    and "gpu" not in workflow.global_resources
):
    workflow.register_resource("gpu", max(1, count_machine_gpus()))

# Rerun policy: Snakemake's default triggers (missing or older inputs, changed params, changed script
# code, changed software environment). Each job's params hold exactly what determines its output, so a
# threshold change reruns the analysis only and one model's training settings rerun that model only.
# The analysis rules also take the package modules they use as inputs: editing the analysis code reruns
# the analysis (seconds); the training code is deliberately no trigger (a retrain costs GPU-days).
ANALYSIS_CODE = [
    os.path.join(workflow.basedir, "src", "algoprogress", f"{module}.py")
    for module in ("curves", "thresholds", "trend", "analysis", "plots", "flops")
]
SEEDS = sorted(
    {seed for m in MODELS.values() for seed in m["resolved_training"]["seeds"]}
)


wildcard_constraints:
    model="|".join(re.escape(name) for name in MODELS),
    trial="|".join(
        sorted({re.escape(t["name"]) for m in MODELS.values() for t in m["trials"]})
    ),
    seed=r"\d+",
    resolution=r"\d+",


def trial_curve_paths(name):
    """A model's curves: each trial, each seed, is its own training job and curve file."""
    model = MODELS[name]
    return [
        f"results/curves/{name}/{trial['name']}/seed{seed}.parquet"
        for trial in model["trials"]
        for seed in model["resolved_training"]["seeds"]
    ]


def curve_paths():
    return [path for name in MODELS for path in trial_curve_paths(name)]


def dry_run():
    """Whether this is a dry run (workflow.dryrun is not known yet while the Snakefile parses)."""
    return any(
        arg in ("--dry-run", "--dryrun") or re.fullmatch(r"-[A-Za-z]*n[A-Za-z]*", arg)
        for arg in sys.argv[1:]
    )


def set_aside_corrupt_curves():
    """A finished curve that is unreadable or differs from its saved hash is moved aside (`.corrupt`),
    so that this run retrains it instead of trusting it (a dry run only reports it). The thresholds
    table goes too: Snakemake does not remake a missing file whose consumers are up to date.
    """
    from algoprogress.curves import corrupt_curves

    problems = corrupt_curves(curve_paths())
    for problem in problems:
        path = problem.split(": ", 1)[0]
        if dry_run():
            print(f"warning: {problem}; a real run retrains it", file=sys.stderr)
        else:
            os.replace(path, f"{path}.corrupt")
            print(
                f"warning: {problem}; moved to {path}.corrupt, this run retrains it",
                file=sys.stderr,
            )
    if problems and not dry_run() and os.path.exists("results/thresholds.csv"):
        os.remove("results/thresholds.csv")


def placeholders_for_missing_data():
    """A .beton file listed in the manifest but missing gets an empty stand-in: the training rule's
    data inputs are `ancient` and exist, so finished curves are kept, and the next training job that
    reads the data finds it damaged and rewrites it (algoprogress.data.repair_data)."""
    from algoprogress.data import damaged_data_files

    damaged = damaged_data_files("results/data/manifest.json")
    if damaged:
        print(
            f"warning: {', '.join(damaged)}: missing or not as the manifest lists; "
            "the next training job rewrites the data",
            file=sys.stderr,
        )
    if not dry_run():
        for path in damaged:
            if not os.path.exists(path):
                open(path, "ab").close()


if workflow.is_main_process:
    set_aside_corrupt_curves()
    placeholders_for_missing_data()


def model_curve_paths(wildcards):
    return trial_curve_paths(wildcards.model)


def published_table():
    """The published table to compare with (relative paths are relative to the workflow), or None."""
    path = config["analysis"]["published_table"]
    return (
        path
        if path is None or os.path.isabs(path)
        else os.path.join(workflow.basedir, path)
    )


def get_final_output():
    outputs = [
        "results/thresholds.csv",
        "results/thresholds_by_model.csv",
        "results/trend.json",
        "results/trend.csv",
        "results/figures/efficiency.png",
        "results/figures/learning_curves.png",
        "results/threshold_sweep.csv",
        "results/figures/threshold_sweep.png",
        *[f"results/figures/curves/{name}.png" for name in MODELS],
    ]
    if published_table():
        outputs += [
            "results/published/trend.json",
            "results/figures/published.png",
            "results/figures/measured_vs_published.png",
        ]
    return outputs


def model_spec(wildcards):
    """The network a model trains: architecture, constructor arguments, class count."""
    return network_spec(config, wildcards.model, NUM_CLASSES)


def model_arch(wildcards):
    return MODELS[wildcards.model]["arch"]


def model_kwargs(wildcards):
    return MODELS[wildcards.model]["kwargs"]


def flop_resolution(wildcards):
    return int(wildcards.resolution)


def trial_settings(wildcards):
    """A trial's resolved training settings but the runtime keys (workers, evaluation batch, ...) and
    the seed list: changing them reruns that trial's training only; a runtime key reruns nothing, and
    adding a seed does not rerun the others.
    """
    settings = trial_training(config, wildcards.model, wildcards.trial)
    return {
        key: value
        for key, value in results_settings(settings).items()
        if key != "seeds"
    }


def trial_flop_paths(wildcards):
    """The FLOP counts a trial needs, one file per resolution: a trial that adds a resolution
    (progressive resizing) leaves the other trials' inputs as they were."""
    return [
        f"results/flops/{wildcards.model}/{resolution}px.json"
        for resolution in flop_resolutions(trial_settings(wildcards))
    ]


def training_threads(wildcards):
    settings = MODELS[wildcards.model]["resolved_training"]
    return settings["workers"] * settings["gpus"]


def training_gpus(wildcards):
    return MODELS[wildcards.model]["resolved_training"]["gpus"]
