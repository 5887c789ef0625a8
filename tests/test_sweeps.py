"""Sweeps: grids in the config, their precedence, validation and trial names (algoprogress.sweeps)."""

import copy
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest

from algoprogress.config import ConfigError, validate_config
from algoprogress.fileio import sha256_of_file
from algoprogress.sweeps import SweepError, format_value, trial_name, trial_values
from tests.helpers import planned_jobs, run, snakemake, snakemake_command, tiny_with, train_jobs

MODELS = [
    {"name": "alexnet", "published": "2012-06-01"},
    {"name": "resnet18", "published": "2015-12-10"},
]


def config_with(training=None, recipes=None, model_training=None, **extra):
    """A config of two models; every model has a confirmation seed (a model with several trials needs one), and the
    threshold is a number (a reference-defined level would need calibration runs of a trial named)."""
    models = copy.deepcopy(MODELS)
    if model_training is not None:
        models[1]["training"] = model_training
    raw = {"models": models, "thresholds": [{"name": "t", "value": 0.5}], **extra}
    raw["training"] = {"confirmation_seeds": [9], **(training or {})}
    if recipes is not None:
        raw["recipes"] = recipes
    return raw


def validated(**kwargs):
    return validate_config(config_with(**kwargs), today=dt.date(2026, 1, 1))


def error_of(**kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        validated(**kwargs)
    message = str(caught.value)
    assert "\n" not in message, "errors must be one line"
    return message


def resnet(config):
    return config["models"][1]


def test_a_model_without_a_grid_has_the_single_trial_base():
    model = resnet(validated())
    assert model["sweep"] == {}
    assert [trial["name"] for trial in model["trials"]] == ["base"]
    assert model["trials"][0]["values"] == {}
    assert model["trials"][0]["training"] == model["resolved_training"]
    assert "sweep" not in model["resolved_training"]


def test_the_full_grid_is_expanded_in_a_stable_order_with_readable_names():
    model = resnet(validated(model_training={"sweep": {"lr": [0.1, 0.05], "epochs": [4, 2]}}))
    assert model["sweep"] == {"epochs": [2, 4], "lr": [0.05, 0.1]}
    assert [t["name"] for t in model["trials"]] == ["epochs2-lr0.05", "epochs2-lr0.1", "epochs4-lr0.05",
                                                    "epochs4-lr0.1"]
    third = model["trials"][2]
    assert third["values"] == {"epochs": 4, "lr": 0.05}
    assert (third["training"]["epochs"], third["training"]["lr"]) == (4, 0.05)
    assert model["resolved_training"]["lr"] == validated()["models"][1]["resolved_training"]["lr"]


def test_a_trials_null_resolutions_follow_its_own_settings():
    ramp = {"start_resolution": 64, "end_resolution": 96, "start_epoch": 0, "end_epoch": 1}
    model = resnet(validated(model_training={"sweep": {"progressive_resizing": [None, ramp]}}))
    by_ramp = {t["values"]["progressive_resizing"] is None: t["training"] for t in model["trials"]}
    assert by_ramp[True]["eval_resolution"] == 64 and by_ramp[False]["eval_resolution"] == 96


@pytest.mark.parametrize(
    "levels,expected",
    [
        # the most specific level that sets a key wins, scalar or grid
        ({"training": {"sweep": {"lr": [0.1, 0.2]}}, "model_training": {"lr": 0.3}}, {}),
        ({"training": {"lr": 0.3}, "model_training": {"sweep": {"lr": [0.1, 0.2]}}}, {"lr": [0.1, 0.2]}),
        ({"training": {"sweep": {"lr": [0.1, 0.2]}}, "model_training": {"sweep": {"lr": [0.4]}}}, {"lr": [0.4]}),
        ({"training": {"sweep": {"lr": [0.1, 0.2]}, "recipe": "r"}, "recipes": {"r": {"lr": 0.3}}}, {}),
        ({"training": {"lr": 0.3, "recipe": "r"}, "recipes": {"r": {"sweep": {"lr": [0.1, 0.2]}}}},
         {"lr": [0.1, 0.2]}),
        ({"training": {"recipe": "r"}, "recipes": {"r": {"sweep": {"lr": [0.1, 0.2]}}}, "model_training": {"lr": 0.3}},
         {}),
        # grids on different keys at different levels merge
        ({"training": {"sweep": {"epochs": [1, 2]}}, "model_training": {"sweep": {"lr": [0.1, 0.2]}}},
         {"epochs": [1, 2], "lr": [0.1, 0.2]}),
    ],
)
def test_precedence_model_over_recipe_over_global(levels, expected):
    model = resnet(validated(**levels))
    assert model["sweep"] == expected
    if "lr" not in expected:
        assert {t["training"]["lr"] for t in model["trials"]} == {0.3}


def test_a_global_grid_reaches_every_model():
    config = validated(training={"sweep": {"epochs": [1, 2]}})
    assert [[t["name"] for t in m["trials"]] for m in config["models"]] == [["epochs1", "epochs2"]] * 2


@pytest.mark.parametrize(
    "levels,message",
    [
        ({"model_training": {"lr": 0.1, "sweep": {"lr": [0.2, 0.3]}}},
         "models[1].training.lr: 0.1 contradicts models[1].training.sweep.lr; set one"),
        ({"training": {"epochs": 2, "sweep": {"epochs": [1, 3]}}},
         "training.epochs: 2 contradicts training.sweep.epochs; set one"),
        ({"training": {"recipe": "r"}, "recipes": {"r": {"schedule": "cosine", "sweep": {"schedule": ["step"]}}}},
         "recipes.r.schedule: \"cosine\" contradicts recipes.r.sweep.schedule; set one"),
    ],
)
def test_a_scalar_and_a_grid_on_one_key_at_one_level_is_an_error(levels, message):
    assert error_of(**levels) == message


def test_a_default_is_not_a_scalar_the_user_set():
    assert resnet(validated(training={"sweep": {"lr": [0.1, 0.2]}}))["sweep"] == {"lr": [0.1, 0.2]}


@pytest.mark.parametrize(
    "sweep,message",
    [
        ({"lr": []}, "models[1].training.sweep.lr: empty grid; give at least one value"),
        ({"lrr": [0.1]}, "models[1].training.sweep.lrr: not a training key (did you mean 'lr'?)"),
        ({"lr": [0.1, 0.2, 0.1]}, "models[1].training.sweep.lr: duplicate value 0.1"),
        ({"lr": [0.1, 0.10]}, "models[1].training.sweep.lr: duplicate value 0.1"),
        ({"epochs": [2, 2.0]}, "models[1].training.sweep.epochs: duplicate value 2.0"),
        ({"lr": [0.1, "fast"]}, "models[1].training.sweep.lr[1]: expected number, got str 'fast'"),
        ({"lr": [0.1, -1]}, "models[1].training.sweep.lr[1]: -1 is less than or equal to the minimum of 0"),
        ({"schedule": ["cosine", "cosin"]}, "models[1].training.sweep.schedule[1]:"),
        ({"lr": 0.1}, "models[1].training.sweep.lr: expected array, got float 0.1"),
        ({"seeds": [[0], [1]]}, "models[1].training.sweep.seeds: cannot vary per trial (seeds are separate runs"),
        ({"recipe": ["a"]}, "models[1].training.sweep.recipe: cannot vary per trial"),
        ({"sweep": [{}]}, "models[1].training.sweep.sweep: cannot vary per trial"),
        ({"workers": [1, 2]}, "models[1].training.sweep.workers: cannot vary per trial"),
        ({"eval_batch_size": [100]}, "models[1].training.sweep.eval_batch_size: cannot vary per trial"),
        ({"gpus": [1, 2]}, "models[1].training.sweep.gpus: cannot vary per trial"),
    ],
)
def test_bad_grids_are_one_line_errors_naming_the_key(sweep, message):
    assert error_of(model_training={"sweep": sweep}).startswith(message)


def test_bad_global_and_recipe_grids_name_their_level():
    assert error_of(training={"sweep": {"lr": []}}).startswith("training.sweep.lr: empty grid")
    assert error_of(recipes={"r": {"sweep": {"gpus": [2]}}}, training={"recipe": "r"}).startswith(
        "recipes.r.sweep.gpus: cannot vary per trial")


def test_every_trial_is_checked_like_a_model():
    """A trial's own settings meet the same checks: here a batch that does not divide over the GPUs."""
    message = error_of(model_training={"gpus": 2, "sweep": {"batch_size": [64, 33]}})
    assert message.startswith("models[1].training.batch_size: 33 does not divide over 2 GPUs")


def test_the_plan_is_limited_before_any_job():
    big = {"sweep": {"lr": [0.01 * k for k in range(1, 11)], "epochs": list(range(1, 11))}, "seeds": [0, 1]}
    message = error_of(model_training=big, max_training_jobs=100)
    # 100 trials x 2 selection seeds + 1 confirmation seed, and alexnet's one trial + 1 confirmation seed
    assert message.startswith("max_training_jobs: the plan has 203 training jobs") and "limit of 100" in message
    assert len(validated(model_training=big, max_training_jobs=203)["models"][1]["trials"]) == 100


def test_an_enormous_grid_is_refused_without_being_expanded():
    huge = {"sweep": {key: list(range(1, 101)) for key in ("batch_size", "evals_per_epoch", "first_eval_step",
                                                            "epochs", "warmup_epochs")}}
    assert error_of(model_training=huge).startswith("max_training_jobs: the plan has 10000000003 training jobs")


@pytest.mark.parametrize(
    "value,text",
    [(0.05, "0.05"), (2, "2"), (2.0, "2"), (1.5, "1.5"), (1e-05, "0.00001"), (3e-4, "0.0003"), (0.1 + 0.2,
     "0.30000000000000004"), (-0.5, "neg0.5"), (-3, "neg3"), (True, "true"), (None, "null"), ("cosine", "cosine"),
     ({"end_epoch": 3, "start_epoch": 1}, "end_epoch3_start_epoch1")],
)
def test_values_are_written_exactly_and_without_separators(value, text):
    assert format_value(value) == text
    assert not set(text) & set("/- ")
    if isinstance(value, float):
        assert float(text.replace("neg", "-")) == value  # numbers round-trip


def test_trial_names_sort_their_keys():
    assert trial_name({"lr": 0.05, "epochs": 2}) == "epochs2-lr0.05"
    assert trial_name({"lr": -0.5, "epochs": 2}) == "epochs2-lrneg0.5"  # a minus sign stays unambiguous
    assert trial_name({}) == "base"


def test_colliding_trial_names_are_one_line_errors_naming_the_model_and_values():
    with pytest.raises(SweepError) as caught:
        trial_values({"lr": [0.1, "0.1"]}, "models[2]", "resnet18")
    message = str(caught.value)
    assert message.startswith("models[2].training.sweep: model 'resnet18': values {'lr': 0.1} and {'lr': '0.1'}")
    assert "'lr0.1'" in message and "\n" not in message


def test_key_order_of_a_grid_does_not_matter():
    forward = validated(model_training={"sweep": {"lr": [0.1, 0.2], "epochs": [1, 2]}})
    backward = validated(model_training={"sweep": {"epochs": [2, 1], "lr": [0.2, 0.1]}})
    assert repr(resnet(forward)["trials"]) == repr(resnet(backward)["trials"])
    assert resnet(forward)["sweep"] == resnet(backward)["sweep"]


# The workflow: each trial is a training job of its own (dry runs wherever possible).

def test_a_sweep_plans_one_training_job_per_trial_and_seed(repo, snakemake_bin, tmp_path):
    def change(config):
        config["training"]["seeds"] = [0, 1]
        config["models"][1]["training"] = {"sweep": {"lr": [0.05, 0.02], "epochs": [1, 2]}, "confirmation_seeds": [7]}

    result = snakemake(snakemake_bin, repo, tmp_path / "run", "-n", configfile=tiny_with(repo, tmp_path, change))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    trials = ["epochs1-lr0.02", "epochs1-lr0.05", "epochs2-lr0.02", "epochs2-lr0.05"]
    assert train_jobs(output) == {("shufflenet_v2_x0_5", "base", "0"), ("shufflenet_v2_x0_5", "base", "1"),
                                  *(("mobilenet_v2", trial, seed) for trial in trials for seed in "01")}
    assert planned_jobs(output)["count_flops"] == 2  # one resolution per model, shared by its trials
    assert not (tmp_path / "run" / "results").exists()


def test_a_plan_above_the_limit_stops_before_any_job(repo, snakemake_bin, tmp_path):
    def change(config):
        config["max_training_jobs"] = 3
        config["models"][1]["training"] = {"sweep": {"lr": [0.05, 0.02, 0.01]}}

    result = snakemake(snakemake_bin, repo, tmp_path / "run", configfile=tiny_with(repo, tmp_path, change))
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0 and lines[-1].startswith("config error: max_training_jobs: the plan has 8 training")
    assert not (tmp_path / "run" / "results").exists()


MODEL = "shufflenet_v2_x0_5"


def sweep_grids(config):
    """The finished sweep: shufflenet_v2_x0_5 has two trials by budget, chosen on seed 0 and confirmed on seed 1;
    mobilenet_v2 one trial, by resolution, on seed 0; beside the fixed thresholds, the level of the reference
    (mobilenet_v2 here), fixed by its calibration run (its trial on seed 2)."""
    config["training"]["seeds"] = [0]
    config["models"][0]["training"] = {"sweep": {"epochs": [0.25, 0.5]}, "confirmation_seeds": [1]}
    config["models"][1]["training"] = {"epochs": 0.25, "sweep": {"resolution": [64]}}
    config["thresholds"].append({"name": "own", "metric": "val_top1", "value": "reference", "margin": 0.05})
    config["analysis"].update(reference_model="mobilenet_v2", calibration={"seeds": [2], "trial": None})


def recorded_curves(log: str) -> list[str]:
    """The curves (relative to results/curves) of the training jobs a Snakemake log records as finished."""
    block = r"rule train:\n(?:    .*\n)*?    output: results/curves/(\S+)\n(?:    .*\n)*?    jobid: (\d+)"
    outputs = dict(re.findall(block, log))
    finished = set(re.findall(r"Finished jobid: (\d+) \(Rule: train\)", log))
    return sorted(curve for curve, jobid in outputs.items() if jobid in finished)


@pytest.fixture(scope="module")
def finished_sweep(snakemake_bin, workflow_copy, finished_run, tmp_path_factory):
    """The finished tiny run (its data and FLOP counts reused: the suite is CPU-bound on two cores, and a run of its
    own, on another worker, measured no faster) with the sweep's runs trained and analysed, by a run that was killed
    (SIGKILL, Snakemake with its running jobs, as when the machine or the session is lost) once a trial had finished
    and another had checkpointed (every evaluation checkpoints: a runtime key), then unlocked and rerun. A second
    `snakemake` started beside the first is refused. The dry run before it is kept beside it (first_round.txt), and
    what the kill left (killed.json)."""
    workdir = tmp_path_factory.mktemp("sweep") / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)

    def killed_sweep(config):
        sweep_grids(config)
        config["training"]["checkpoint_every_seconds"] = 0

    configfile = tiny_with(workflow_copy, workdir.parent, killed_sweep)
    planned = snakemake(snakemake_bin, workflow_copy, workdir, "-n", configfile=configfile)
    assert planned.returncode == 0, (planned.stdout + planned.stderr)[-3000:]
    (workdir.parent / "first_round.txt").write_text(planned.stdout + planned.stderr)
    command = snakemake_command(snakemake_bin, workflow_copy, workdir, configfile=configfile)
    log = workdir.parent / "killed.log"
    with open(log, "w") as sink:
        first = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    checkpoints, deadline = workdir / "results" / "checkpoints", time.monotonic() + 600
    try:
        while not (workdir / ".snakemake" / "locks").is_dir() or not any((workdir / ".snakemake" / "locks").iterdir()):
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        second = run(command, timeout=300)
        assert second.returncode != 0 and "cannot be locked" in second.stdout + second.stderr
        # a trial finished (Snakemake recorded it) and another one has checkpointed
        while "(Rule: train)" not in log.read_text() or not list(checkpoints.rglob("*.pt")):
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    # finished: the curves whose jobs Snakemake recorded as finished (one written in the instant before the kill
    # is not recorded: the rerun trains it again, as rerun-incomplete does)
    curves = workdir / "results" / "curves"
    finished = {name: sha256_of_file(curves / name) for name in recorded_curves(log.read_text())}
    resumable = {str(path.relative_to(checkpoints).with_suffix("")) for path in checkpoints.rglob("*.pt")}
    assert resumable, "no job was running with a checkpoint when Snakemake was killed"
    (workdir.parent / "killed.json").write_text(json.dumps({"finished": finished, "resumable": sorted(resumable)}))

    locked = snakemake(snakemake_bin, workflow_copy, workdir, configfile=configfile)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert snakemake(snakemake_bin, workflow_copy, workdir, "--unlock", configfile=configfile).returncode == 0
    # every curve, the selection, thresholds and trend (the figures and the other tables are the finished run's tests)
    result = snakemake(snakemake_bin, workflow_copy, workdir, "results/trend.json", configfile=configfile)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    chosen = json.loads((workdir / "results" / "selection.json").read_text())["chosen"][MODEL]["trial"]
    sweep = {(MODEL, "epochs0.25", "0"), (MODEL, "epochs0.5", "0"), (MODEL, chosen, "1"),
             ("mobilenet_v2", "resolution64", "0"), ("mobilenet_v2", "resolution64", "2")}
    trained_before = {job for job in sweep if f"{job[0]}/{job[1]}/seed{job[2]}.parquet" in finished}
    assert trained_before and train_jobs(output) == sweep - trained_before
    return workdir


def plan_sweep_change(snakemake_bin, workflow, workdir, tmp_path, change):
    def changed(config):
        sweep_grids(config)
        change(config)

    result = snakemake(snakemake_bin, workflow, workdir, "-n", configfile=tiny_with(workflow, tmp_path, changed))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    return planned_jobs(output), train_jobs(output)


@pytest.mark.slow
def test_finished_sweep_trains_nothing_more(finished_sweep, snakemake_bin, workflow_copy, tmp_path):
    jobs, trained = plan_sweep_change(snakemake_bin, workflow_copy, finished_sweep, tmp_path, lambda config: None)
    assert not trained and "count_flops" not in jobs


@pytest.mark.slow
def test_adding_a_trial_trains_only_that_trial(finished_sweep, snakemake_bin, workflow_copy, tmp_path):
    def change(config):
        config["models"][0]["training"]["sweep"]["epochs"].append(0.75)

    jobs, trained = plan_sweep_change(snakemake_bin, workflow_copy, finished_sweep, tmp_path, change)
    assert trained == {("shufflenet_v2_x0_5", "epochs0.75", "0")} and "count_flops" not in jobs


@pytest.mark.slow
def test_adding_a_seed_trains_only_the_new_seed(finished_sweep, snakemake_bin, workflow_copy, tmp_path):
    def change(config):
        config["models"][1]["training"]["seeds"] = [0, 1]

    jobs, trained = plan_sweep_change(snakemake_bin, workflow_copy, finished_sweep, tmp_path, change)
    assert trained == {("mobilenet_v2", "resolution64", "1")} and "count_flops" not in jobs


@pytest.mark.slow
def test_removing_a_trial_reruns_only_the_analysis(finished_sweep, snakemake_bin, workflow_copy, tmp_path):
    chosen = json.loads((finished_sweep / "results" / "selection.json").read_text())["chosen"][MODEL]["trial"]

    def change(config):  # the trial not chosen goes: the one left has its runs already
        config["models"][0]["training"]["sweep"]["epochs"] = [float(chosen.removeprefix("epochs"))]

    jobs, trained = plan_sweep_change(snakemake_bin, workflow_copy, finished_sweep, tmp_path, change)
    assert not trained and "count_flops" not in jobs and jobs["thresholds"] == 1


@pytest.mark.slow
def test_adding_a_confirmation_seed_trains_only_it(finished_sweep, snakemake_bin, workflow_copy, tmp_path):
    chosen = json.loads((finished_sweep / "results" / "selection.json").read_text())["chosen"][MODEL]["trial"]

    def change(config):
        config["models"][0]["training"]["confirmation_seeds"] = [1, 3]

    jobs, trained = plan_sweep_change(snakemake_bin, workflow_copy, finished_sweep, tmp_path, change)
    assert trained == {(MODEL, chosen, "3")} and "count_flops" not in jobs


@pytest.mark.slow
def test_a_dry_run_shows_the_selection_round_and_says_the_confirmation_comes_later(finished_sweep):
    """Before the selection runs have finished, which trial is confirmed is not known: the dry run plans every
    trial on the selection seed, the calibration run and the checkpoint select_trials, and no confirmation run,
    and Snakemake says the plan grows once the checkpoint has run."""
    output = (finished_sweep.parent / "first_round.txt").read_text()
    assert train_jobs(output) == {(MODEL, "epochs0.25", "0"), (MODEL, "epochs0.5", "0"),
                                  ("mobilenet_v2", "resolution64", "0"), ("mobilenet_v2", "resolution64", "2")}
    assert planned_jobs(output)["select_trials"] == 1 and "thresholds" not in planned_jobs(output)
    assert "DAG of jobs will be updated after completion" in output


@pytest.mark.slow
def test_a_trial_with_a_new_resolution_counts_it_and_retrains_no_other_trial(
        finished_sweep, snakemake_bin, workflow_copy, tmp_path):
    def change(config):  # the reference gets a second trial: it names its confirmation seed and calibration trial
        config["models"][1]["training"]["sweep"]["resolution"].append(96)
        config["models"][1]["training"]["confirmation_seeds"] = [3]
        config["analysis"]["calibration"]["trial"] = "resolution64"

    jobs, trained = plan_sweep_change(snakemake_bin, workflow_copy, finished_sweep, tmp_path, change)
    assert trained == {("mobilenet_v2", "resolution96", "0")} and jobs["count_flops"] == 1
    assert not (finished_sweep / "results" / "flops" / "mobilenet_v2" / "96px.json").exists()


@pytest.mark.slow
def test_the_trial_chosen_on_the_selection_seed_is_measured_on_the_confirmation_seed(finished_sweep):
    """The protocol end to end (whatever the trials reached on this CPU): the trial with the least compute at the
    headline threshold on the selection seed (or, where none reaches, the closest) is chosen; the model's compute
    at every threshold is its confirmation run's; the least over trials on the selection seed stays beside it as
    the optimistic bound; every run's row is kept with its role; the reference's own level is its calibration
    run's final top-1 less the margin."""
    results = finished_sweep / "results"
    rows = pd.read_csv(results / "thresholds.csv")
    by_model = pd.read_csv(results / "thresholds_by_model.csv")
    selection = json.loads((results / "selection.json").read_text())
    chosen = selection["chosen"][MODEL]["trial"]
    mine = rows.loc[rows["model"] == MODEL]
    headline = mine.loc[(mine["threshold_name"] == selection["threshold"]["name"]) & (mine["role"] == "selection")]
    compute = headline.set_index("trial")["train_flops"].where(headline.set_index("trial")["reached"])
    best = headline.set_index("trial")["best_metric"]
    assert chosen == (compute.idxmin() if compute.notna().any() else best.idxmax())
    other = "epochs0.25" if chosen == "epochs0.5" else "epochs0.5"
    assert (results / "curves" / MODEL / chosen / "seed1.parquet").exists()
    assert not (results / "curves" / MODEL / other / "seed1.parquet").exists()
    assert set(zip(mine["trial"], mine["seed"], mine["role"], strict=True)) == {
        ("epochs0.25", 0, "selection"), ("epochs0.5", 0, "selection"), (chosen, 1, "confirmation")}
    assert set(zip(mine.loc[mine["measured"], "trial"], mine.loc[mine["measured"], "seed"], strict=True)) == {
        (chosen, 1)}
    for name, group in mine.groupby("threshold_name"):
        summary = by_model.loc[(by_model["model"] == MODEL) & (by_model["threshold_name"] == name)].iloc[0]
        confirmed = group.loc[group["measured"]].iloc[0]
        assert summary["reached"] == confirmed["reached"] and summary["chosen_trial"] == chosen
        if confirmed["reached"]:
            assert summary["train_flops_median"] == pytest.approx(confirmed["train_flops"])
        on_selection = group.loc[(group["role"] == "selection") & group["reached"], "train_flops"]
        if len(on_selection):
            assert summary["optimistic_bound_flops"] == pytest.approx(on_selection.min())
        assert summary["trials"] == 2 and summary["search_flops"] == pytest.approx(
            group.loc[group["role"] == "selection", "spent_flops"].sum())
    calibration = pd.read_parquet(results / "curves" / "mobilenet_v2" / "resolution64" / "seed2.parquet")
    own = rows.loc[rows["threshold_name"] == "own", "threshold"].iloc[0]
    assert own == pytest.approx(calibration.sort_values("step")["val_top1"].dropna().iloc[-1] - 0.05)
    reference = rows.loc[rows["model"] == "mobilenet_v2"]
    assert set(zip(reference["seed"], reference["role"], reference["measured"], strict=True)) == {
        (0, "selection", True), (2, "calibration", False)}  # the level's run is not one the compute is measured on
    trend = json.loads((results / "trend.json").read_text())
    assert trend["thresholds"]["own"]["definition"]["defined_as"].startswith("reference level of mobilenet_v2")
    # the level's standard error: binomial on the validation set, its one calibration run's final value
    val_images = json.loads((results / "data" / "manifest.json").read_text())["val"]["images"]
    final = own + 0.05
    errors = rows.loc[rows["threshold_name"] == "own", "level_standard_error"].tolist()
    assert errors == pytest.approx([math.sqrt(final * (1 - final) / val_images)] * len(errors))
    assert (rows.loc[rows["threshold_name"] != "own", "level_standard_error"] == 0).all()  # fixed numbers
    # each run cut at the level shifted either way (where the level has an error): it needs more compute above
    own_rows = rows.loc[(rows["threshold_name"] == "own") & rows["train_flops_level_up"].notna()
                        & rows["train_flops_level_down"].notna()]
    assert (own_rows["train_flops_level_up"] >= own_rows["train_flops_level_down"]).all()
    assert rows.loc[rows["threshold_name"] != "own", "train_flops_level_up"].isna().all()


@pytest.mark.slow
def test_a_killed_sweep_loses_nothing(finished_sweep, snakemake_bin, workflow_copy, tmp_path):
    """Rows: Snakemake killed with its jobs in the middle of a sweep. The rerun retrained no trial that had finished
    (their curves are the files the killed run wrote), resumed each trial that had checkpointed from its checkpoint,
    and its curves are those of an uninterrupted run: one resumed trial trained again here, uninterrupted, in a copy,
    gives the same curve (timing columns aside), hence the same analysis."""
    killed = json.loads((finished_sweep.parent / "killed.json").read_text())
    curves = finished_sweep / "results" / "curves"
    assert all(sha256_of_file(curves / name) == value for name, value in killed["finished"].items())
    for name in killed["resumable"]:
        model, trial, seed = name.split("/")
        log = (finished_sweep / "logs" / "train" / model / trial / f"{seed}.log").read_text()
        assert "resumed from results/checkpoints/" in log, log[-2000:]
    assert not list((finished_sweep / "results" / "checkpoints").rglob("*.pt"))
    name = killed["resumable"][0]
    copy_dir = tmp_path / "uninterrupted"
    shutil.copytree(finished_sweep, copy_dir, symlinks=True)
    (copy_dir / "results" / "curves" / f"{name}.parquet").unlink()
    configfile = tiny_with(workflow_copy, tmp_path, sweep_grids)
    result = snakemake(snakemake_bin, workflow_copy, copy_dir, f"results/curves/{name}.parquet", configfile=configfile)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    model, trial, seed = name.split("/")
    assert train_jobs(result.stdout + result.stderr) == {(model, trial, seed.removeprefix("seed"))}
    timing = ["wall_seconds", "eval_seconds"]
    again = pd.read_parquet(copy_dir / "results" / "curves" / f"{name}.parquet").drop(columns=timing)
    pd.testing.assert_frame_equal(again, pd.read_parquet(curves / f"{name}.parquet").drop(columns=timing))
