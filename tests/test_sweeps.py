"""Sweeps: grids in the config, their precedence, validation and trial names (algoprogress.sweeps)."""

import copy
import datetime as dt

import pytest

from algoprogress.config import ConfigError, validate_config
from algoprogress.sweeps import SweepError, format_value, trial_name, trial_values

MODELS = [
    {"name": "alexnet", "published": "2012-06-01"},
    {"name": "resnet18", "published": "2015-12-10"},
]


def config_with(training=None, recipes=None, model_training=None, **extra):
    models = copy.deepcopy(MODELS)
    if model_training is not None:
        models[1]["training"] = model_training
    raw = {"models": models, **extra}
    if training is not None:
        raw["training"] = training
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
    assert message.startswith("max_training_jobs: the plan has 201 training jobs") and "limit of 100" in message
    assert len(validated(model_training=big, max_training_jobs=201)["models"][1]["trials"]) == 100


def test_an_enormous_grid_is_refused_without_being_expanded():
    huge = {"sweep": {key: list(range(1, 101)) for key in ("batch_size", "evals_per_epoch", "first_eval_step",
                                                            "epochs", "warmup_epochs")}}
    assert error_of(model_training=huge).startswith("max_training_jobs: the plan has 10000000001 training jobs")


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
