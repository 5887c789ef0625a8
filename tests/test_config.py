import copy
import datetime as dt
import re

import pandas as pd
import pytest
import torchvision
import yaml

from algoprogress.architectures import TORCHVISION_CLASSIFIERS
from algoprogress.config import ConfigError, load_config, validate_config

MODELS = [
    {"name": "alexnet", "published": "2012-06-01"},
    {"name": "resnet18", "published": "2015-12-10", "training": {"lr": 0.1}},
]


def minimal(**extra):
    return {"models": copy.deepcopy(MODELS), **extra}


def error_of(config) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config(config, today=dt.date(2026, 1, 1))
    message = str(caught.value)
    assert "\n" not in message, "errors must be one line"
    return message


def test_bundled_config_is_valid_and_meaningful(repo):
    config = load_config(repo / "config" / "config.yaml")
    models = config["models"]
    assert len(models) >= 4
    assert models[0]["name"] == "alexnet" == config["analysis"]["reference_model"]
    years = [int(m["published"][:4]) for m in models]
    assert min(years) == 2012 and max(years) >= 2018 and years == sorted(years)
    # every model's compute at threshold comes from a lower envelope over at least two budgets
    assert all(len(m["trials"]) >= 2 and "epochs" in m["sweep"] for m in models)
    # the headline capability is the reference's own level, as "AlexNet-level" is meant
    headline = config["thresholds"][0] if config["analysis"]["headline"]["threshold"] is None else next(
        t for t in config["thresholds"] if t["name"] == config["analysis"]["headline"]["threshold"])
    assert headline["name"] == "AlexNet-level" and headline["value"] == "reference"


def test_defaults_are_filled_and_overrides_resolved():
    config = validate_config(minimal())
    assert config["dataset"]["resolution"] == 64
    # by default the capability is the reference's own level, as "AlexNet-level" is meant
    assert config["thresholds"] == [{"name": "reference-level", "metric": "val_top1", "value": "reference",
                                     "margin": 0.01, "interpolation": "log-linear", "crossing": "monotone"}]
    assert config["analysis"]["headline"] == {"threshold": None, "set": "frontier", "window": "full"}
    assert config["analysis"]["bootstrap"] == {"draws": 1000, "seed": 0}
    assert config["analysis"]["robust_errors"] is False
    assert config["analysis"]["reference_model"] == "alexnet"
    by_name = {m["name"]: m for m in config["models"]}
    assert by_name["resnet18"]["resolved_training"]["lr"] == 0.1
    assert by_name["alexnet"]["resolved_training"]["lr"] == config["training"]["lr"]
    assert by_name["alexnet"]["arch"] == "alexnet"


def test_input_is_not_modified():
    raw = minimal()
    before = copy.deepcopy(raw)
    validate_config(raw)
    assert raw == before


def test_unknown_architecture_names_the_key():
    config = minimal()
    config["models"][1]["name"] = "resnet19"
    message = error_of(config)
    assert message.startswith("models[1].arch:") and "resnet19" in message and "resnet18" in message


@pytest.mark.parametrize("date", ["2015-13-01", "15-12-10", "yesterday", "2015-02-30"])
def test_malformed_date_names_the_key(date):
    config = minimal()
    config["models"][1]["published"] = date
    assert error_of(config).startswith("models[1].published:")


def test_future_date_is_refused():
    config = minimal()
    config["models"][1]["published"] = "2030-01-01"
    assert "future" in error_of(config)


def test_yaml_dates_are_accepted():
    config = minimal()
    config["models"][0]["published"] = dt.date(2012, 6, 1)
    assert validate_config(config)["models"][0]["published"] == "2012-06-01"


def test_missing_key_names_the_key():
    config = minimal()
    del config["models"][0]["published"]
    assert error_of(config) == "models[0].published: missing required key"
    assert error_of({}).startswith("models: missing required key")


@pytest.mark.parametrize(
    "section,key,value,expected",
    [
        ("training", "batch_size", "64", "training.batch_size: expected integer"),
        ("training", "batch_size", 0, "training.batch_size:"),
        ("training", "batch_size", -5, "training.batch_size:"),
        ("dataset", "resolution", 32, "dataset.resolution:"),
    ],
)
def test_wrong_values_name_the_key(section, key, value, expected):
    message = error_of(minimal(**{section: {key: value}}))
    assert message.startswith(expected)


@pytest.mark.parametrize("value", [1.5, 0, -0.1])
def test_threshold_outside_zero_one_names_the_key(value):
    message = error_of(minimal(thresholds=[{"name": "a", "value": 0.5}, {"name": "b", "value": value}]))
    assert message.startswith("thresholds[1].value:")


def test_duplicate_threshold_names_are_refused():
    message = error_of(minimal(thresholds=[{"name": "a", "value": 0.5}, {"name": "a", "value": 0.7}]))
    assert message.startswith("thresholds[1].name: duplicate")


def test_misspelled_key_suggests_the_right_one():
    message = error_of(minimal(training={"epohcs": 3}))
    assert message.startswith("training: unknown key 'epohcs'") and "did you mean 'epochs'" in message


def test_model_training_override_is_validated():
    config = minimal()
    config["models"][0]["training"] = {"lr": -1}
    assert error_of(config).startswith("models[0].training.lr:")


def test_duplicate_model_names_are_refused():
    config = minimal()
    config["models"][1]["name"] = "alexnet"
    assert error_of(config).startswith("models[1].name: duplicate")


@pytest.mark.parametrize("name", ["../evil", "a/b", "x;rm -rf", "$(id)", ".hidden", "a b", "`id`", "x|y", "..", "a\nb"])
def test_names_that_would_escape_paths_are_refused(name):
    """Names that become paths or wildcards (models, data set, recipes, thresholds) are constrained."""
    config = minimal()
    config["models"][1]["name"] = name
    assert error_of(config).startswith("models[1].name:")
    assert error_of(minimal(dataset={"name": name})).startswith("dataset.name:")
    assert error_of(minimal(recipes={name: {"lr": 0.1}})).startswith("recipes:")
    assert error_of(minimal(thresholds=[{"name": name}])).startswith("thresholds[0].name:")


def test_recipes_apply_between_training_and_the_model():
    config = validate_config(minimal(training={"lr": 0.3, "epochs": 3, "recipe": "quick"},
                                     recipes={"quick": {"lr": 0.2, "batch_size": 32}}), today=dt.date(2026, 1, 1))
    alexnet, resnet = config["models"][0]["resolved_training"], config["models"][1]["resolved_training"]
    assert (alexnet["recipe"], alexnet["lr"], alexnet["batch_size"], alexnet["epochs"]) == ("quick", 0.2, 32, 3)
    assert resnet["lr"] == 0.1  # the model's own setting wins over the recipe


def test_unknown_recipe_and_bad_recipe_settings_name_the_key():
    assert error_of(minimal(training={"recipe": "fsat"}, recipes={"fast": {}})) == (
        "training.recipe: no recipe named 'fsat' in `recipes` (did you mean 'fast'?)")
    assert error_of(minimal(recipes={"fast": {"lr": -1}})).startswith("recipes.fast.lr:")
    assert error_of(minimal(recipes={"fast": {"batch_size": 10, "gpus": 3}}, training={"recipe": "fast"})
                    ).startswith("models[0].training.batch_size: 10 does not divide over 3 GPUs")


def test_reference_model_must_exist():
    assert error_of(minimal(analysis={"reference_model": "vgg"})).startswith("analysis.reference_model:")


def test_imagefolder_paths_must_exist(tmp_path):
    message = error_of(minimal(dataset={"source": "imagefolder", "train_path": str(tmp_path / "missing")}))
    assert message.startswith("dataset.train_path:") and "does not exist" in message


def test_architecture_list_matches_torchvision():
    models = torchvision.models
    assert set(TORCHVISION_CLASSIFIERS) == set(models.list_models(module=models))


def test_load_config_reports_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)


def test_key_order_does_not_matter():
    """Snakemake compares params in key order: the validated config must not depend on it."""
    forward = minimal(training={"lr": 0.1, "epochs": 2}, dataset={"resolution": 64, "val_fraction": 0.5})
    backward = minimal(dataset={"val_fraction": 0.5, "resolution": 64}, training={"epochs": 2, "lr": 0.1})
    assert repr(validate_config(forward)) == repr(validate_config(backward))


@pytest.mark.parametrize("classes, ok", [(4, False), (5, False), (6, True)])
def test_top5_thresholds_need_more_than_five_classes(classes, ok):
    from algoprogress.config import check_thresholds_for_classes

    config = validate_config(minimal(thresholds=[{"name": "t1", "metric": "val_top1", "value": 0.5},
                                                 {"name": "t5", "metric": "val_top5", "value": 0.9}]))
    if ok:
        check_thresholds_for_classes(config["thresholds"], classes)
        return
    with pytest.raises(ConfigError) as caught:
        check_thresholds_for_classes(config["thresholds"], classes)
    assert str(caught.value).startswith("thresholds[1].metric: val_top5 with") and "\n" not in str(caught.value)


def test_threshold_value_may_be_the_reference_level():
    config = validate_config(minimal(thresholds=[{"name": "own", "value": "reference", "margin": 0.01}]))
    assert config["thresholds"][0]["value"] == "reference" and config["thresholds"][0]["margin"] == 0.01
    assert error_of(minimal(thresholds=[{"name": "own", "value": "refrence"}])).startswith("thresholds[0].value:")


@pytest.mark.parametrize("analysis, expected", [
    ({"headline": {"threshold": "nope"}}, "analysis.headline.threshold: no threshold named 'nope'"),
    ({"headline": {"window": "paper"}}, "analysis.headline.window: no window named 'paper'"),
    ({"headline": {"set": "best"}}, "analysis.headline.set:"),
    ({"windows": [{"name": "full"}]}, "analysis.windows[0].name: duplicate window name 'full'"),
    ({"windows": [{"name": "w", "start": "resnet50"}]}, "analysis.windows[0].start: 'resnet50' is neither"),
    ({"windows": [{"name": "w", "start": "resnet18", "end": "alexnet"}]},
     "analysis.windows[0]: start resnet18 is after"),
    ({"bootstrap": {"draws": -1}}, "analysis.bootstrap.draws:"),
])
def test_headline_and_windows_are_checked(analysis, expected):
    assert error_of(minimal(analysis=analysis)).startswith(expected)


def test_a_window_by_model_names_and_dates_is_accepted():
    config = validate_config(minimal(analysis={"windows": [{"name": "paper", "start": "alexnet", "end": "2019-12-31"}],
                                               "headline": {"window": "paper", "set": "all"}}))
    assert config["analysis"]["headline"]["window"] == "paper"


def test_the_bill_may_skip_the_image_folder_check(tmp_path):
    """The bill prices a config planned for another machine: its image folders need not exist here."""
    dataset = {"source": "imagefolder", "train_path": str(tmp_path / "missing")}
    config = validate_config(minimal(dataset=dataset), check_paths=False)
    assert config["dataset"]["train_path"] == dataset["train_path"]
    with pytest.raises(ConfigError, match="dataset.train_path: required"):
        validate_config(minimal(dataset={"source": "imagefolder"}), check_paths=False)


def test_every_model_gets_its_trials_and_the_plan_limit_defaults_to_1000():
    config = validate_config(minimal())
    assert config["max_training_jobs"] == 1000
    assert [[t["name"] for t in m["trials"]] for m in config["models"]] == [["base"], ["base"]]


SHIPPED_CONFIGS = ["config/config.yaml", "config/imagenet.yaml", "tests/data/tiny.yaml"]


def test_every_model_has_one_date_by_one_rule(repo):
    """The date rule of every shipped config: Hernandez & Brown's date where their table lists the model (its arch, or a
    width of it), else the paper's arXiv v1 date, `date_source` saying which; so one paper has one date everywhere."""
    table = pd.read_csv(repo / "resources" / "published" / "hernandez_brown_2020.csv", dtype={"published": str})
    listed = dict(zip(table["arch"], table["published"], strict=True))
    names = dict(zip(table["arch"], table["model"], strict=True))
    by_paper = {}
    for path in SHIPPED_CONFIGS:
        for model in yaml.safe_load((repo / path).read_text())["models"]:
            arch, source = model.get("arch", model["name"]), model.get("date_source", "")
            family = next((name for name in listed if arch == name or arch.startswith(name + "_")), None)
            where = f"{path}: {model['name']}"
            if family is not None:
                assert source.startswith(f"Hernandez & Brown 2020 ({names[family]}"), where
                assert model["published"] == listed[family], where
                paper = family
            else:
                found = re.match(r"arXiv:(\d{4}\.\d{4,5}) v1\b", source)
                assert found, f"{where}: date_source {source!r} names neither rule"
                paper = found.group(1)
                assert found.group(1)[:4] == model["published"][2:4] + model["published"][5:7], where  # YYMM
            by_paper.setdefault(paper, set()).add(model["published"])
    assert {paper: dates for paper, dates in by_paper.items() if len(dates) > 1} == {}


SWEPT = {"sweep": {"epochs": [1, 2]}}


@pytest.mark.parametrize(
    "change,expected",
    [
        # a confirmation seed that is also a selection seed
        (lambda c: c["models"][1].update(training={**SWEPT, "seeds": [0, 1], "confirmation_seeds": [1, 2]}),
         "models[1].training.confirmation_seeds: seed 1 is also one of resnet18's selection seeds"),
        # a model with several trials and no confirmation seed
        (lambda c: c["models"][1].update(training=SWEPT),
         "models[1].training.confirmation_seeds: resnet18 has 2 trials but no confirmation seeds"),
        # a reference-defined level without calibration runs
        (lambda c: c.update(analysis={"calibration": {"seeds": []}}),
         "analysis.calibration.seeds: empty, but threshold 'reference-level' is the reference's own level"),
        # margin 0 on a level resolved from curves
        (lambda c: c.update(thresholds=[{"name": "own", "value": "reference", "margin": 0}]),
         "thresholds[0].margin: 0 on a level resolved from curves"),
        # calibration runs that are measured runs
        (lambda c: c.update(analysis={"calibration": {"seeds": [0]}}),
         "analysis.calibration.seeds: seed 0 is also a seed the reference alexnet is measured on"),
        # a reference with several trials and no calibration trial named, or one it does not have
        (lambda c: c["models"][0].update(training={**SWEPT, "confirmation_seeds": [5]}),
         "analysis.calibration.trial: the reference alexnet has 2 trials (epochs1, epochs2): name the one"),
        (lambda c: c.update(analysis={"calibration": {"trial": "epochs3"}}),
         "analysis.calibration.trial: 'epochs3' is not a trial of the reference alexnet (base)"),
    ],
)
def test_the_protocols_seed_sets_are_checked_before_any_job(change, expected):
    config = minimal()
    change(config)
    assert error_of(config).startswith(expected)


def test_a_fixed_threshold_needs_no_calibration_runs():
    config = validate_config(minimal(thresholds=[{"name": "t", "value": 0.5}], analysis={"calibration": {"seeds": []}}))
    assert config["analysis"]["calibration"]["seeds"] == []
