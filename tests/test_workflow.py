"""The real Snakemake workflow, run in a temporary directory on the tiny config."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from algoprogress import curves
from algoprogress.config import load_config
from algoprogress.flops import TRAINING_FLOP_PER_MULTIPLY_ADD
from algoprogress.headline import summary
from tests.helpers import WORKFLOW_FILES, planned_jobs, snakemake, tiny_with, train_jobs

SCRIPTS = ["prepare_data", "count_flops", "train", "thresholds", "trend", "threshold_sweep", "plot_learning_curves",
           "plot_model_curve", "published_trend", "compare_with_published"]


@pytest.mark.slow
def test_end_to_end_outputs(finished_run, repo):
    """What the pipeline writes, whatever the models reached on this CPU (no assertion on how far they train)."""
    config = load_config(repo / "tests" / "data" / "tiny.yaml")
    seeds = {m["name"]: m["resolved_training"]["seeds"] for m in config["models"]}  # per model
    names = list(seeds)
    results = finished_run / "results"

    for name in names:
        for seed in seeds[name]:
            path = results / "curves" / name / "base" / f"seed{seed}.parquet"
            curve = curves.read_curve(path)
            assert list(curve.columns) == list(curves.CURVE_COLUMNS)
            assert curve["step"].is_monotonic_increasing and curve["step"].iloc[0] == 0
            counted = json.loads((results / "flops" / name / "64px.json").read_text())["by_resolution"]["64"][
                "multiply_adds_per_image"]
            assert curve["train_flops"].tolist() == pytest.approx(
                (TRAINING_FLOP_PER_MULTIPLY_ADD * counted * curve["images_seen"]).tolist())
            assert curves.read_curve_metadata(path)["fvcore_multiply_adds_per_image"] == {"64": counted}
            assert (finished_run / "logs" / "train" / name / "base" / f"seed{seed}.log").read_text().count("step") > 0

        # a FLOP count is a one-thread job: the job is given its rule's threads (that it keeps to them whatever the
        # environment offers: tests/test_flops.py; here the suite's environment offers one too)
        assert "counting on 1 CPU thread(s)" in (finished_run / "logs" / "count_flops" / name / "64px.log").read_text()

    flop_table = pd.read_csv(results / "flop_counts.csv", keep_default_na=False)
    assert sorted(zip(flop_table["model"], flop_table["resolution"], strict=True)) == [(n, 64) for n in sorted(names)]
    assert (flop_table["training_flops_per_image"] == TRAINING_FLOP_PER_MULTIPLY_ADD
            * flop_table["multiply_adds_per_image"]).all()

    threshold_names = [t["name"] for t in config["thresholds"]]
    thresholds = pd.read_csv(results / "thresholds.csv")
    assert sorted(zip(thresholds["threshold_name"], thresholds["model"], thresholds["seed"], strict=True)) == sorted(
        (t, n, s) for t in threshold_names for n in names for s in seeds[n])
    assert thresholds.equals(pd.read_parquet(results / "thresholds.parquet"))
    by_model = pd.read_csv(results / "thresholds_by_model.csv")
    assert sorted(zip(by_model["threshold_name"], by_model["model"], strict=True)) == sorted(
        (t, n) for t in threshold_names for n in names)
    assert (by_model["seeds"] == by_model["model"].map(lambda name: len(seeds[name]))).all()
    trend = json.loads((results / "trend.json").read_text())
    assert trend["headline"]["threshold"] == threshold_names[0] and trend["headline"]["set"] == "frontier"
    for key in ("doubling_time_months", "doubling_time_months_low", "doubling_time_months_high", "n", "bootstrap",
                "efficiency_factor", "notes"):
        assert key in trend
    assert trend["n"] <= len(names) and trend["bootstrap"]["draws"] == 200
    assert trend["bootstrap"]["levels"] == ["seeds within models", "models"]
    # the published interval (calibrated against known truth, docs/method.md): the frontier's parametric bootstrap;
    # the tiny config's levels are numbers, without error
    assert trend["interval"]["method"].startswith("parametric bootstrap of the frontier fit")
    assert trend["interval"]["level_standard_error"] == 0
    if trend["interval"]["slope_low"] is not None:
        assert trend["interval"]["slope_low"] <= trend["interval"]["slope_high"]
    assert sorted(trend["thresholds"]) == sorted(threshold_names)
    table = pd.read_csv(results / "trend.csv")
    assert sorted(zip(table["threshold"], table["set"], strict=True)) == sorted(
        (t, s) for t in threshold_names for s in ("all", "frontier"))
    headline = table.loc[table["headline"]]
    assert len(headline) == 1 and headline["threshold"].iloc[0] == threshold_names[0]
    sweep = pd.read_csv(results / "threshold_sweep.csv")
    assert list(sweep.columns[:3]) == ["threshold", "metric", "set"] and len(sweep) in (0, 5)
    published = json.loads((results / "published" / "trend.json").read_text())
    assert published["thresholds"]["AlexNet-level"]["fits"]["full"]["all"]["doubling_time_months"] == pytest.approx(
        15.7, abs=0.1)
    figures = ["efficiency", "learning_curves", "published", "measured_vs_published", "threshold_sweep"]
    for figure in [*(results / "figures" / f"{f}.png" for f in figures),
                   *(results / "figures" / "curves" / f"{n}.png" for n in names)]:
        assert figure.read_bytes()[:4] == b"\x89PNG", figure
    assert not list(results.rglob("*.pt")), "finished training jobs leave no checkpoint behind"
    manifest = json.loads((results / "data" / "manifest.json").read_text())
    assert manifest["train"]["images"] == 450 and manifest["val"]["images"] == 150


def rerun_with_thresholds(finished_run, snakemake_bin, workflow_copy, tmp_path, thresholds):
    """A copy of the finished run, its thresholds replaced, rerun for real (the analysis rules only)."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    changed = tiny_with(workflow_copy, tmp_path, lambda config: config.update(thresholds=thresholds), "changed.yaml")
    result = snakemake(snakemake_bin, workflow_copy, workdir, configfile=changed)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule train:" not in result.stdout + result.stderr
    return workdir / "results", json.loads((workdir / "results" / "trend.json").read_text())


@pytest.fixture(scope="module")
def extreme_thresholds(finished_run, snakemake_bin, workflow_copy, tmp_path_factory):
    """The finished run's analysis redone (no training) with a threshold no model reaches (the headline, first)
    and one every model meets at step 0: an untrained 10-class model is right about 1 in 10 times."""
    results, trend = rerun_with_thresholds(finished_run, snakemake_bin, workflow_copy,
                                           tmp_path_factory.mktemp("extreme-thresholds"),
                                           [{"name": "unreachable", "metric": "val_top1", "value": 1.0},
                                            {"name": "too-low", "metric": "val_top1", "value": 0.01}])
    return pd.read_csv(results / "thresholds.csv"), trend


@pytest.mark.slow
def test_no_model_reaching_any_threshold_is_reported_not_a_crash(extreme_thresholds):
    """Through the real rules (tables go through Parquet): a threshold no model reaches gives nulls and notes."""
    thresholds, trend = extreme_thresholds
    assert trend["headline"]["threshold"] == "unreachable"
    assert trend["doubling_time_months"] is None and trend["n"] == 0 and trend["efficiency_factor"] is None
    assert "unreachable: no model reaches this threshold: nothing to fit" in trend["notes"]
    assert not thresholds.loc[thresholds["threshold_name"] == "unreachable", "reached"].any()


@pytest.mark.slow
def test_a_threshold_met_at_step_zero_is_flagged_through_the_real_rules(extreme_thresholds):
    """1% top-1 is met at every model's first evaluation: flagged, excluded from the fits, noted."""
    thresholds, trend = extreme_thresholds
    too_low = trend["thresholds"]["too-low"]
    assert all(m["crossed_at_first_evaluation"] and m["excluded"].startswith("threshold met")
               for m in too_low["per_model"])
    for fit in too_low["fits"]["full"].values():  # every model, and the frontier
        assert fit["n"] == 0 and fit["efficiency_factor"] is None
    assert any(note.startswith("too-low: ") and "met the threshold at its first evaluation" in note
               for note in trend["notes"])
    rows = thresholds.loc[thresholds["threshold_name"] == "too-low"]
    assert len(rows) and rows["crossed_at_first_evaluation"].all()


@pytest.mark.slow
@pytest.mark.slow
def test_the_headline_says_threshold_doubling_time_intervals_factor_and_models(finished_run):
    trend = json.loads((finished_run / "results" / "trend.json").read_text())
    lines = summary(trend)
    head = trend["headline"]
    assert lines[0].startswith(f"Headline: {head['threshold']}: val_top1 >= ")
    assert f"over {trend['n']} models" in lines[0]
    assert f"{trend['doubling_time_months']:.3g} months; 95% intervals: published " in lines[1]
    assert ", OLS " in lines[1] and ", bootstrap " in lines[1]
    assert lines[2].startswith(f"  efficiency factor {trend['reference_model']} -> {trend['best_model']}: ")
    models = trend["thresholds"][head["threshold"]]["fits"][head["window"]][head["set"]]["models"]
    assert lines[3] == f"  models of the fit: {', '.join(models)}"
    assert lines[4:] == [f"  note: {note}" for note in trend["notes"]]


@pytest.mark.slow
def test_rerun_has_nothing_to_do(finished_run, snakemake_bin, workflow_copy):
    result = snakemake(snakemake_bin, workflow_copy, finished_run, "-n")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_report_is_self_contained_with_captions(finished_run, snakemake_bin, workflow_copy):
    report = finished_run / "results" / "report.html"
    result = snakemake(snakemake_bin, workflow_copy, finished_run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-2000:]
    html = report.read_text()
    assert "efficiency frontier" in html and "log-compute" in html  # the captions
    assert "flop_counts.csv" in html and "more than 10% apart" in html  # the FLOP table and its caption
    assert "thresholds_by_model.csv" in html and "measured_vs_published.png" in html
    assert 'src="http' not in html  # self-contained: nothing fetched when opened


# the analysis (the tiny config's models have one trial each: no select_trials, nothing to choose)
ANALYSIS_JOBS = {"thresholds": 1, "trend": 1, "threshold_sweep": 1, "compare_with_published": 1,
                 "plot_learning_curves": 1, "all": 1}


def dry_run_with(snakemake_bin, workflow, workdir, tmp_path, change):
    """The output of a dry run of the finished tiny run with the tiny config changed by ``change(config)``."""
    changed = tiny_with(workflow, tmp_path, change, "changed.yaml")
    result = snakemake(snakemake_bin, workflow, workdir, "-n", configfile=changed)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def plan_with(snakemake_bin, workflow, workdir, tmp_path, change):
    """Rule -> job count of `dry_run_with`."""
    return planned_jobs(dry_run_with(snakemake_bin, workflow, workdir, tmp_path, change))


@pytest.mark.slow
def test_changing_a_threshold_reruns_the_analysis_only(finished_run, snakemake_bin, workflow_copy, tmp_path):
    def change(config):
        config["thresholds"][0]["value"] = 0.6

    planned = plan_with(snakemake_bin, workflow_copy, finished_run, tmp_path, change)
    assert planned == {**ANALYSIS_JOBS, "plot_model_curve": 2}


@pytest.mark.slow
def test_a_new_architecture_trains_only_itself(finished_run, snakemake_bin, workflow_copy, tmp_path):
    def change(config):
        config["models"].append({"name": "squeezenet1_1", "published": "2016-02-24"})

    assert plan_with(snakemake_bin, workflow_copy, finished_run, tmp_path, change) == {
        **ANALYSIS_JOBS, "count_flops": 1, "flop_table": 1, "train": 2, "plot_model_curve": 3}


@pytest.mark.slow
def test_one_models_training_setting_retrains_that_model_only(finished_run, snakemake_bin, workflow_copy, tmp_path):
    def change(config):
        config["models"][1]["training"]["lr"] = 0.02  # MobileNetV2, trained on one seed

    output = dry_run_with(snakemake_bin, workflow_copy, finished_run, tmp_path, change)
    assert planned_jobs(output) == {**ANALYSIS_JOBS, "train": 1, "plot_model_curve": 2}
    assert train_jobs(output) == {("mobilenet_v2", "base", "0")}


@pytest.mark.slow
def test_runtime_settings_retrain_nothing(finished_run, snakemake_bin, workflow_copy, tmp_path):
    """Data-loading workers and the evaluation batch decide how a job runs, not its curve: no rerun."""
    def change(config):
        config["training"].update(workers=2, eval_batch_size=75)

    assert plan_with(snakemake_bin, workflow_copy, finished_run, tmp_path, change) == {}


def plan_after_editing(module_name, snakemake_bin, workflow, workdir, tmp_path):
    """Dry-run plan after appending a comment to a package module of the workflow copy (then restored)."""
    module = workflow / "src" / "algoprogress" / module_name
    original = module.read_text()
    module.write_text(original + "\n# an edit of the code\n")
    try:
        return plan_with(snakemake_bin, workflow, workdir, tmp_path, lambda config: None)
    finally:
        module.write_text(original)


@pytest.mark.slow
def test_changed_analysis_code_reruns_the_analysis_only(finished_run, snakemake_bin, workflow_copy, tmp_path):
    planned = plan_after_editing("trend.py", snakemake_bin, workflow_copy, finished_run, tmp_path)
    assert planned == {**ANALYSIS_JOBS, "published_trend": 1, "plot_model_curve": 2, "flop_table": 1}


def workflow_code(workflow):
    return sorted([*(workflow / "workflow" / "scripts").glob("*.py"), *(workflow / "src").rglob("*.py"),
                   *(workflow / "rules").glob("*.smk"), workflow / "Snakefile"])


@pytest.mark.slow
def test_a_checkout_that_leaves_the_code_as_it_was_reruns_nothing(finished_run, snakemake_bin, workflow_copy,
                                                                   tmp_path):
    """Every script, module and rule file rewritten with its own content (a checkout of another branch and back, an
    upgrade that changes nothing of them, a copy that does not keep times): file times decide no rerun (the
    profile's rerun-triggers), and the analysis' code inputs compare by content."""
    for path in workflow_code(workflow_copy):
        path.write_bytes(path.read_bytes())
    assert plan_with(snakemake_bin, workflow_copy, finished_run, tmp_path, lambda config: None) == {}


def bumped(workflow, old, new):
    """versions.py of the workflow copy with ``old`` replaced by ``new``; returns its original text."""
    module = workflow / "src" / "algoprogress" / "versions.py"
    original = module.read_text()
    assert old in original
    module.write_text(original.replace(old, new))
    return original


@pytest.mark.slow
def test_a_new_training_version_retrains_every_curve_and_says_so(finished_run, snakemake_bin, workflow_copy,
                                                                 tmp_path):
    original = bumped(workflow_copy, '"training v1"', '"training v2"')
    try:
        output = dry_run_with(snakemake_bin, workflow_copy, finished_run, tmp_path, lambda config: None)
    finally:
        (workflow_copy / "src" / "algoprogress" / "versions.py").write_text(original)
    finished = {(p.parts[-3], p.parts[-2], p.stem.removeprefix("seed"))
                for p in (finished_run / "results" / "curves").rglob("*.parquet")}
    assert train_jobs(output) == finished and "count_flops" not in planned_jobs(output)
    assert "before: 'training v1' now: 'training v2'" in output


@pytest.mark.slow
def test_a_moved_workflow_plans_nothing(finished_run, snakemake_bin, workflow_copy, tmp_path):
    """The workflow and its working directory moved elsewhere together (their names kept): no job is planned, and
    no result file holds this machine's path to either."""
    moved = tmp_path / "elsewhere"
    for folder in (workflow_copy, finished_run):
        shutil.copytree(folder, moved / folder.name, symlinks=True)
    result = snakemake(snakemake_bin, moved / workflow_copy.name, moved / finished_run.name, "-n")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]
    for path in (finished_run / "results").rglob("*"):
        if path.is_file() and path.suffix in {".json", ".csv", ".tsv", ".parquet", ".html", ".txt"}:
            content = path.read_bytes()
            assert str(finished_run).encode() not in content and str(workflow_copy).encode() not in content, path


# the last commit before the code's versions were params (algoprogress.versions)
BEFORE_VERSIONS = "880c673"


@pytest.mark.slow
def test_a_run_finished_before_versioned_params_keeps_its_training(finished_run, snakemake_bin, workflow_copy, repo,
                                                                   tmp_path):
    """The upgrade recorded in README.md: a run that the previous release finished (its Snakemake records made by
    that release's workflow, from git) plans its FLOP counts and training again for the new params only; `--touch
    --allowed-rules count_flops train` records them, and then no training and no FLOP count is planned."""
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", BEFORE_VERSIONS, *WORKFLOW_FILES],
                             capture_output=True, timeout=60)
    if archive.returncode != 0:
        pytest.skip(f"no git history of {BEFORE_VERSIONS} here: {archive.stderr.decode()[:200]}")
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    recorded = snakemake(snakemake_bin, old, workdir, "--touch", configfile=old / "tests" / "data" / "tiny.yaml")
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    before = snakemake(snakemake_bin, workflow_copy, workdir, "-n")
    assert {"train", "count_flops"} <= set(planned_jobs(before.stdout)), before.stdout[-2000:]
    assert "before: <nothing exclusive> now: 'flop count v1'" in before.stdout
    upgrade = snakemake(snakemake_bin, workflow_copy, workdir, "--touch", "--allowed-rules", "count_flops", "train")
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    after = planned_jobs(snakemake(snakemake_bin, workflow_copy, workdir, "-n").stdout)
    assert "train" not in after and "count_flops" not in after


@pytest.mark.slow
def test_diverging_model_is_a_result_not_a_failure(finished_run, snakemake_bin, workflow_copy, tmp_path):
    """A model whose loss becomes non-finite: its job succeeds with the curve so far, marked diverged, and the
    analysis counts it as not reaching the thresholds; nothing partial is left anywhere. (A copy of the finished
    run with one model's learning rate changed: that model alone is retrained, and diverges.)"""
    def diverge(config):
        config["models"][1]["training"].update(lr=1.0e12, schedule="constant", momentum=0.0)  # one seed

    configfile = tiny_with(workflow_copy, tmp_path, diverge, "diverging.yaml")
    config = yaml.safe_load(configfile.read_text())
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    result = snakemake(snakemake_bin, workflow_copy, workdir, configfile=configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    # every successful run ends with the headline, from the trend.json it has just written
    trend = json.loads((workdir / "results" / "trend.json").read_text())
    assert "\n".join(summary(trend)) in result.stdout and result.stdout.rstrip().endswith("the report: make report)")
    bad, good = config["models"][1]["name"], config["models"][0]["name"]
    assert f"wildcards: model={good}," not in result.stdout + result.stderr
    log = (workdir / "logs" / "train" / bad / "base" / "seed0.log").read_text()
    assert "WARNING" in log and "non-finite loss" in log
    diverged = curves.read_curve(workdir / "results" / "curves" / bad / "base" / "seed0.parquet")
    assert diverged["diverged"].all()
    assert not curves.read_curve(workdir / "results" / "curves" / good / "base" / "seed0.parquet")["diverged"].any()
    assert not list((workdir / "results").rglob("*partial*")) and not list((workdir / "results").rglob("*.pt"))
    thresholds = pd.read_csv(workdir / "results" / "thresholds.csv")
    assert not thresholds.loc[thresholds["model"] == bad, "reached"].any()


@pytest.mark.parametrize(
    "change,key",
    [
        ({"models": [{"name": "resnet19", "published": "2015-12-10"}, {"name": "alexnet", "published": "2012-06-01"}]},
         "models[0].arch"),
        ({"models": [{"name": "resnet18", "published": "2015-31-12"}, {"name": "alexnet", "published": "2012-06-01"}]},
         "models[0].published"),
        ({"training": {"batch_size": "big"}}, "training.batch_size"),
        ({"models": [{"name": "resnet18"}, {"name": "alexnet", "published": "2012-06-01"}]}, "models[0].published"),
    ],
)
def test_bad_config_stops_before_any_job_with_one_line(snakemake_bin, repo, tmp_path, change, key):
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(yaml.safe_dump(change))
    result = snakemake(snakemake_bin, repo, tmp_path / "run", configfile=configfile)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert errors == [lines[-1]] and errors[0].startswith(f"config error: {key}:"), lines
    assert not any("rule " in line or "Traceback" in line for line in lines), lines
    assert not (tmp_path / "run" / "results").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_stage_is_a_cli_with_help(repo, script):
    result = subprocess.run([sys.executable, str(repo / "workflow" / "scripts" / f"{script}.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage:" in result.stdout and "Snakemake rule" in result.stdout


def test_training_jobs_request_a_gpu_and_keep_a_checkpoint(repo, snakemake_bin, tmp_path):
    """The rule as Snakemake sees it (an edit that snakefmt reorders must not lose these)."""
    result = snakemake(snakemake_bin, repo, tmp_path / "run", "-n", "--forcerun", "train", "-p")
    train_jobs = [block for block in (result.stdout + result.stderr).split("\n\n") if "rule train:" in block]
    assert train_jobs and all("gpu=1" in block for block in train_jobs), train_jobs[:1]


@pytest.mark.slow
def test_gpu_limit_defaults_to_the_machines_gpu_count(finished_run):
    """Without --resources gpu=N the local run never has more training jobs than GPUs; without GPUs no
    gpu limit is set, and --cores alone bounds the training jobs (each asks for its threads)."""
    from algoprogress.gpus import count_machine_gpus

    logs = "".join(path.read_text() for path in (finished_run / ".snakemake" / "log").glob("*.snakemake.log"))
    gpus = count_machine_gpus()
    if gpus:
        assert f'gpu=Resource("gpu", {gpus})' in logs
    else:
        assert 'Resource("gpu"' not in logs


def test_a_multi_gpu_model_requests_its_gpus(repo, snakemake_bin, tmp_path):
    """`training.gpus` of a model becomes its training job's `gpu` request (and threads = workers x gpus)."""
    def two_gpus(config):
        config["models"][1]["training"] = {"gpus": 2, "workers": 3}

    override = tiny_with(repo, tmp_path, two_gpus, "gpus.yaml")
    result = snakemake(snakemake_bin, repo, tmp_path / "run", "-n", "--forcerun", "train", "-p", "--cores", "8",
                       "--resources", "gpu=4",
                       configfile=override)
    blocks = {block.split("wildcards: model=")[1].split(",")[0]: block
              for block in (result.stdout + result.stderr).split("\n\n") if "rule train:" in block}
    assert "gpu=2" in blocks["mobilenet_v2"] and "threads: 6" in blocks["mobilenet_v2"]
    assert "gpu=1" in blocks["shufflenet_v2_x0_5"]
