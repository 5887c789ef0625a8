import os
import re
import sys
from types import SimpleNamespace

# The workflow's logic lives in the package under src/, found as the stage scripts find it
# (workflow/scripts/algoprogress_path.py); here it checks the config before any job is planned.
sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
import algoprogress_path

from algoprogress.config import (
    ConfigError,
    check_thresholds_for_classes,
    curve_settings,
    data_content,
    flop_resolutions,
    headline_threshold,
    model_table,
    network_spec,
    publication_dates,
    sweep_plan,
    trial_training,
    validate_config,
)
from algoprogress.architectures import source_file
from algoprogress.fileio import read_json
from algoprogress.protocol import for_selection, measurement_plan
from algoprogress.datafiles import DataError, count_classes
from algoprogress.gpus import count_machine_gpus
from algoprogress.headline import print_headline
from algoprogress import versions

try:
    _validated = validate_config(config)
    NUM_CLASSES = count_classes(_validated["dataset"])
    check_thresholds_for_classes(_validated["thresholds"], NUM_CLASSES)
    _published = _validated["analysis"]["published_table"]
    if _published and not os.path.isfile(os.path.join(workflow.basedir, _published)):
        raise ConfigError(
            f"analysis.published_table: file {_published!r} does not exist"
        )
    for _model in _validated[
        "models"
    ]:  # a user model's file must exist (read, not imported)
        network_spec(_validated, _model["name"], NUM_CLASSES, workflow.basedir)
except (ConfigError, DataError) as error:
    sys.exit(f"config error: {error}")
config.clear()
config.update(_validated)

MODELS = model_table(config)

# Training jobs request `gpu` = their GPU count. Run on one machine without `--resources gpu=N`, the
# limit is the number of GPUs this machine has, so there are never more training jobs than GPUs; each
# job then claims GPUs of its own (algoprogress.gpus). A machine without GPUs trains on its CPU cores:
# there `--cores` alone bounds the training jobs (each asks for `workers` threads), so 1-thread jobs run
# side by side. Cluster executors schedule GPUs themselves: no limit is set for them.
# (nvidia-smi is asked last, so once, by the main process only: each job parses this file again)
if (
    workflow.local_exec
    and workflow.is_main_process
    and "gpu" not in workflow.global_resources
    and (machine_gpus := count_machine_gpus())
):
    workflow.register_resource("gpu", machine_gpus)

# Rerun policy: Snakemake's triggers on missing or older inputs (compared by content where Snakemake kept their
# checksums), params and software environments; the shipped profiles leave its `code` trigger off (file times
# decide nothing, see profiles/default/config.yaml). Each job's params hold exactly what determines its output,
# the code included by version for the jobs that cost compute (algoprogress.versions): a threshold change reruns
# the analysis only, one model's training settings rerun that model only, and a release that changes what training
# or FLOP counting computes bumps a version and reruns exactly those jobs. The analysis rules take the code they
# run (package modules and scripts) as inputs, by paths relative to the working directory (a moved workflow
# plans nothing): an edit reruns the analysis (seconds), a touch does not.
ANALYSIS_CODE = [
    os.path.relpath(os.path.join(workflow.basedir, folder, f"{module}.py"))
    for folder, modules in (
        (
            os.path.join("src", "algoprogress"),
            ("curves", "thresholds", "protocol", "trend", "analysis", "plots", "flops"),
        ),
        (
            os.path.join("workflow", "scripts"),
            (
                "select_trials",
                "thresholds",
                "trend",
                "threshold_sweep",
                "published_trend",
                "compare_with_published",
                "plot_learning_curves",
                "plot_model_curve",
                "flop_table",
            ),
        ),
    )
    for module in modules
]
PROTOCOL = measurement_plan(config)


wildcard_constraints:
    model="|".join(re.escape(name) for name in MODELS),
    trial="|".join(
        sorted({re.escape(t["name"]) for m in MODELS.values() for t in m["trials"]})
    ),
    seed=r"\d+",
    resolution=r"\d+",


def curve_path(name, trial, seed):
    return f"results/curves/{name}/{trial}/seed{seed}.parquet"


def selection_paths(name):
    """Every trial of a model on its selection seeds (algoprogress.protocol)."""
    plan = PROTOCOL[name]
    return [curve_path(name, t, s) for t in plan["trials"] for s in plan["selection"]]


def calibration_paths(name):
    """The reference's calibration runs (none for another model, or without a reference-defined level)."""
    plan = PROTOCOL[name]
    return [curve_path(name, plan["calibration_trial"], s) for s in plan["calibration"]]


def confirmation_paths(name, selection=None):
    """A model's confirmation runs: its only trial's, or (``selection``: selection.json's content) its
    chosen trial's; none for a model with several trials while no selection is given."""
    plan = PROTOCOL[name]
    if plan["chooses"] and selection is None:
        return []
    trial = selection["chosen"][name]["trial"] if plan["chooses"] else plan["trials"][0]
    return [curve_path(name, trial, s) for s in plan["confirmation"]]


def selection_input_paths():
    """What the checkpoint select_trials reads: the selection runs and the calibration runs."""
    return [
        p for name in MODELS for p in selection_paths(name) + calibration_paths(name)
    ]


def selection_file(wildcards=None):
    """results/selection.json where a model has several trials to choose from (the checkpoint
    select_trials writes it); nothing otherwise: no job then chooses anything."""
    if any(plan["chooses"] for plan in PROTOCOL.values()):
        return "results/selection.json"
    return []


def all_curve_paths(wildcards=None):
    """Every curve of the run. The confirmation runs of a model with several trials are known once the
    checkpoint select_trials has chosen its trial: Snakemake plans them after it (a dry run shows the
    selection round and the checkpoint; the confirmation jobs appear once it has run).
    """
    selection = None
    if any(plan["chooses"] for plan in PROTOCOL.values()):
        selection = read_json(checkpoints.select_trials.get().output.json)
    return selection_input_paths() + [
        p for name in MODELS for p in confirmation_paths(name, selection)
    ]


def curve_paths():
    """The curves known when the workflow is parsed: planned ones, and the chosen trials' confirmation
    runs where a finished selection (results/selection.json) names them."""
    selection = None
    if os.path.isfile("results/selection.json"):
        try:
            selection = read_json("results/selection.json")
        except ValueError:  # an unreadable selection is made again by select_trials
            pass
    paths = selection_input_paths()
    for name in MODELS:
        try:
            paths += confirmation_paths(name, selection)
        except KeyError:  # a model the finished selection does not know yet
            pass
    return paths


def stop_on_damaged_results():
    """Stop the run (a dry run too) with one line per damaged curve or data file, naming the command
    that repairs it (algoprogress.integrity). Reads only: parsing the workflow writes nothing.
    """
    from algoprogress.integrity import problems, repair_command

    found = problems(curve_paths(), repair_command(workflow.basedir, os.getcwd()))
    if found:
        sys.exit("\n".join(f"error: {line}" for line in found))


if workflow.is_main_process:
    stop_on_damaged_results()


def model_curve_paths(wildcards):
    return [
        p
        for p in all_curve_paths()
        if p.startswith(f"results/curves/{wildcards.model}/")
    ]


def published_table():
    """The published table to compare with (relative paths in the config are relative to the workflow; the input
    relative to the working directory, so that a moved workflow plans nothing), or None.
    """
    path = config["analysis"]["published_table"]
    return (
        path
        if path is None or os.path.isabs(path)
        else os.path.relpath(os.path.join(workflow.basedir, path))
    )


def get_final_output(wildcards=None):
    """What a run makes: the analysis and every curve. The curves are targets because Snakemake does not
    remake a missing file whose consumers are up to date: a curve the repair set aside is then missing
    from the targets, so the next run retrains it and, its input being new, redoes the analysis.
    """
    outputs = [
        *all_curve_paths(),
        *([selection_file()] if selection_file() else []),
        "results/thresholds.csv",
        "results/thresholds_by_model.csv",
        "results/trend.json",
        "results/trend.csv",
        "results/figures/efficiency.png",
        "results/figures/learning_curves.png",
        "results/threshold_sweep.csv",
        "results/flop_counts.csv",
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
    """The network a model trains: architecture, constructor arguments, class count (and a user file's
    content hash)."""
    return network_spec(config, wildcards.model, NUM_CLASSES, workflow.basedir)


def model_source_file(wildcards):
    """A user model's file (`file:` arch), as an input of the jobs that build it; none for the others."""
    path = source_file(MODELS[wildcards.model]["arch"], workflow.basedir)
    return [] if path is None else [str(path)]


def model_source(wildcards):
    """What the model is built from: its arch, and for a user file also the file's content hash (editing
    the file reruns its FLOP count). Equal to the arch for library models, so adding this param (the
    params are compared as a set) reran nothing of earlier runs."""
    spec = model_spec(wildcards)
    if "source_sha256" in spec:
        return f"{spec['arch']} sha256:{spec['source_sha256']}"
    return spec["arch"]


def model_arch(wildcards):
    return MODELS[wildcards.model]["arch"]


def model_kwargs(wildcards):
    return MODELS[wildcards.model]["kwargs"]


def flop_resolution(wildcards):
    return int(wildcards.resolution)


def trial_settings(wildcards):
    """What of a trial's training settings determines its curves (algoprogress.config.curve_settings):
    changing one reruns that trial's training only."""
    return curve_settings(trial_training(config, wildcards.model, wildcards.trial))


def trial_flop_paths(wildcards):
    """The FLOP counts a trial needs, one file per resolution: a trial that adds a resolution
    (progressive resizing) leaves the other trials' inputs as they were."""
    return [
        f"results/flops/{wildcards.model}/{resolution}px.json"
        for resolution in flop_resolutions(trial_settings(wildcards))
    ]


def flop_count_paths():
    """Every FLOP count the run makes: each model at each resolution any of its trials uses."""
    return sorted(
        {
            f"results/flops/{name}/{resolution}px.json"
            for name, model in MODELS.items()
            for trial in model["trials"]
            for resolution in flop_resolutions(
                trial_settings(SimpleNamespace(model=name, trial=trial["name"]))
            )
        }
    )


def training_priority(wildcards):
    """Longer training jobs first (a trial's epochs times its largest resolution squared: a proxy for its cost, in
    hundredths): with a fixed number of GPUs or cores, a round of jobs then ends with short jobs side by side
    rather than one long job alone. Decides only the order."""
    settings = trial_settings(wildcards)
    largest = max(flop_resolutions(settings))
    return round(100 * settings["epochs"] * (largest / 64) ** 2)


def training_threads(wildcards):
    settings = MODELS[wildcards.model]["resolved_training"]
    return settings["workers"] * settings["gpus"]


def training_gpus(wildcards):
    return MODELS[wildcards.model]["resolved_training"]["gpus"]
