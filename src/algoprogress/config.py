"""Configuration: JSON-Schema validation with defaults, and the checks a schema cannot express.

Every problem is raised as a ``ConfigError`` whose message is one line naming the key
(``models[2].published: ...``), so a run stops before any job starts with a message a user can act
on. Nothing here imports torch: the Snakefile calls it while it parses.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import itertools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from algoprogress import sweeps
from algoprogress.architectures import check_arch, own_source_file, source_digest, source_file
from algoprogress.protocol import reference_defined

# flop_resolutions is re-exported: rules/common.smk imports it from here
from algoprogress.schedules import flop_resolutions, training_resolutions  # noqa: F401

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "config" / "schema"


# the window that spans every publication date (`analysis.windows` adds others)
FULL_WINDOW = "full"


class ConfigError(ValueError):
    """A configuration problem, described in one line that names the key."""


def _load_schema(name: str) -> dict:
    with open(SCHEMA_DIR / name) as handle:
        return yaml.safe_load(handle)


def _with_defaults(validator_class):
    """A validator class that also fills in each property's ``default`` (jsonschema's FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(prefix: str, path) -> str:
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<config>"


def _describe(error: jsonschema.ValidationError, prefix: str) -> str:
    key = _key_path(prefix, error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, allowed, n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return f"{key}: unknown key {', '.join(hints)}; allowed keys: {', '.join(allowed)}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"{_key_path(prefix, [*error.absolute_path, missing[0]])}: missing required key"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{key}: expected {expected}, got {type(error.instance).__name__} {error.instance!r}"
    if error.validator == "minItems":
        return f"{key}: needs at least {error.validator_value} entries, got {len(error.instance)}"
    if error.validator == "pattern" and isinstance(error.instance, str):
        return f"{key}: {error.instance!r} is not of the form {error.validator_value}"
    return f"{key}: {error.message}"


def _validate(instance: Any, schema: dict, prefix: str, fill_defaults: bool) -> None:
    cls = _DefaultFillingValidator if fill_defaults else jsonschema.Draft202012Validator
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(instance))
    if error is not None:
        raise ConfigError(_describe(error, prefix))


def _dates_to_strings(value: Any) -> Any:
    """YAML reads an unquoted 2012-06-01 as a date; the schema wants the ISO string."""
    if isinstance(value, dict):
        return {k: _dates_to_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_to_strings(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return value


def _canonical(value: Any) -> Any:
    """Every mapping with its keys sorted: Snakemake's params trigger compares dicts in key order,
    so the same settings written in another order must not look like a change (and retrain)."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def parse_date(text: str, key: str, today: dt.date | None = None) -> dt.date:
    try:
        date = dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not a valid date (YYYY-MM-DD)") from None
    if date > (today or dt.date.today()):
        raise ConfigError(f"{key}: {text} is in the future")
    return date


def analysis_settings(given: dict | None = None) -> dict:
    """The `analysis` section: ``given`` validated, with every default the schema states filled in (for a stage run
    without a whole config, such as the published-table CLI; a whole config gets them from `validate_config`)."""
    settings = copy.deepcopy(given or {})
    _validate(settings, _load_schema("config.schema.yaml")["properties"]["analysis"], "analysis", fill_defaults=True)
    return settings


def validate_config(raw: dict, today: dt.date | None = None, check_paths: bool = True) -> dict:
    """Validate ``raw`` (as read from YAML), fill defaults, and resolve each model's settings.

    Returns a new dict; ``raw`` is not modified. Each model gets ``arch`` (defaulting to its name),
    ``resolved_training``: the global training settings with its own overrides applied (no grid
    values), and its sweep (algoprogress.sweeps): ``sweep``, the merged grid, and ``trials``.
    ``check_paths=False`` skips the check that the image folders exist (the bill of a config
    planned on another machine).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"<config>: expected a mapping at the top level, got {type(raw).__name__}")
    config = _dates_to_strings(copy.deepcopy(raw))
    # the global keys the user set (the others get defaults), for the scalar-versus-grid check
    global_keys = set(config["training"]) if isinstance(config.get("training"), dict) else set()
    schema = _load_schema("config.schema.yaml")
    model_schema = _load_schema("model.schema.yaml")
    _validate(config, schema, "", fill_defaults=True)

    training_schema = {**schema["$defs"]["training"]}
    recipes = config["recipes"]
    for name, recipe in recipes.items():
        _validate(recipe, training_schema, f"recipes.{name}", fill_defaults=False)
        if "recipe" in recipe:
            raise ConfigError(f"recipes.{name}.recipe: a recipe cannot name another recipe")
    _check_recipe(config["training"]["recipe"], recipes, "training.recipe")
    _check_step_fractions(config["training"], "training")
    for name, recipe in recipes.items():
        _check_step_fractions(recipe, f"recipes.{name}")
    seen: dict[str, int] = {}
    unresolved: dict[str, dict] = {}
    for index, model in enumerate(config["models"]):
        prefix = f"models[{index}]"
        _validate(model, model_schema, prefix, fill_defaults=True)
        name = model["name"]
        if name in seen:
            raise ConfigError(f"{prefix}.name: duplicate model name {name!r} (also models[{seen[name]}])")
        seen[name] = index
        model.setdefault("arch", name)
        problem = check_arch(model["arch"])
        if problem:
            raise ConfigError(f"{prefix}.arch: {problem}")
        parse_date(model["published"], f"{prefix}.published", today)
        if "num_classes" in model["kwargs"]:
            raise ConfigError(f"{prefix}.kwargs.num_classes: set by the data set, not per model")
        _validate(model["training"], training_schema, f"{prefix}.training", fill_defaults=False)
        _check_step_fractions(model["training"], f"{prefix}.training")
        recipe = model["training"].get("recipe", config["training"]["recipe"])
        _check_recipe(recipe, recipes, f"{prefix}.training.recipe")
        resolved = {**config["training"], **(recipes[recipe] if recipe else {}), **model["training"]}
        resolved.pop("sweep")
        unresolved[name] = resolved
        model["resolved_training"] = _resolve_resolutions(resolved, config["dataset"], model, prefix)
        levels = [("training", {k: config["training"][k] for k in global_keys}, config["training"]),
                  *([(f"recipes.{recipe}", recipes[recipe], recipes[recipe])] if recipe else []),
                  (f"{prefix}.training", model["training"], model["training"])]
        model["sweep"] = _merged_grid(levels, training_schema["properties"])
    _add_trials(config, unresolved)

    names = [threshold["name"] for threshold in config["thresholds"]]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"thresholds[{index}].name: duplicate threshold name {name!r}")

    reference = config["analysis"]["reference_model"]
    if reference is None:
        config["analysis"]["reference_model"] = config["models"][0]["name"]
    elif reference not in seen:
        raise ConfigError(f"analysis.reference_model: {reference!r} is not the name of a model")

    _check_analysis(config, today)
    _check_protocol(config)
    dataset = config["dataset"]
    if dataset["source"] == "imagefolder":
        if not dataset["train_path"]:
            raise ConfigError("dataset.train_path: required when dataset.source is 'imagefolder'")
        for key in ("train_path", "val_path"):
            if check_paths and dataset[key] and not Path(dataset[key]).is_dir():
                raise ConfigError(f"dataset.{key}: directory {dataset[key]!r} does not exist")
    return _canonical(config)


def _check_analysis(config: dict, today: dt.date | None) -> None:
    """The headline names a threshold and a window that exist; windows' ends are dates or model names."""
    analysis = config["analysis"]
    thresholds = [t["name"] for t in config["thresholds"]]
    models = {m["name"]: m["published"] for m in config["models"]}
    windows = [FULL_WINDOW]
    for index, window in enumerate(analysis["windows"]):
        key = f"analysis.windows[{index}]"
        if window["name"] in windows:
            raise ConfigError(f"{key}.name: duplicate window name {window['name']!r} ('full' is the whole span)")
        windows.append(window["name"])
        ends = []
        for end in ("start", "end"):
            value = window.get(end)
            if value is None:
                continue
            if value in models:
                ends.append(models[value])
            else:
                try:
                    parse_date(value, f"{key}.{end}", today)
                except ConfigError:
                    raise ConfigError(f"{key}.{end}: {value!r} is neither a model name nor a date (YYYY-MM-DD)") \
                        from None
                ends.append(value)
        if len(ends) == 2 and ends[0] > ends[1]:
            raise ConfigError(f"{key}: start {window['start']} is after end {window['end']}")
    headline = analysis["headline"]
    if headline["threshold"] is not None and headline["threshold"] not in thresholds:
        raise ConfigError(f"analysis.headline.threshold: no threshold named {headline['threshold']!r} "
                          f"(thresholds: {', '.join(thresholds)})")
    if headline["window"] not in windows:
        raise ConfigError(f"analysis.headline.window: no window named {headline['window']!r} "
                          f"(windows: {', '.join(windows)})")


def _check_protocol(config: dict) -> None:
    """The seed sets of the measurement protocol (algoprogress.protocol): each seed one role per model; a model with
    several trials has confirmation seeds; a reference-defined level has calibration runs and a margin."""
    for index, model in enumerate(config["models"]):
        settings, key = model["resolved_training"], f"models[{index}].training.confirmation_seeds"
        shared = sorted(set(settings["seeds"]) & set(settings["confirmation_seeds"]))
        if shared:
            raise ConfigError(f"{key}: seed {shared[0]} is also one of {model['name']}'s selection seeds (`seeds`); "
                              "a trial cannot be confirmed on the seeds it was chosen on")
        if len(model["trials"]) > 1 and not settings["confirmation_seeds"]:
            raise ConfigError(f"{key}: {model['name']} has {len(model['trials'])} trials but no confirmation seeds: "
                              "its compute would be the least of noisy trials (the winner's curse); name at least one")
    defined = reference_defined(config["thresholds"])
    if not defined:
        return
    for index, threshold in enumerate(config["thresholds"]):
        if threshold in defined and threshold["margin"] <= 0:
            raise ConfigError(f"thresholds[{index}].margin: 0 on a level resolved from curves (value: reference) puts "
                              "the level where the reference's last evaluation falls; give a margin above 0")
    calibration = config["analysis"]["calibration"]
    names = [threshold["name"] for threshold in defined]
    if not calibration["seeds"]:
        raise ConfigError(f"analysis.calibration.seeds: empty, but threshold {names[0]!r} is the reference's own level "
                          "(value: reference), which its calibration runs fix; name at least one seed")
    reference = next(m for m in config["models"] if m["name"] == config["analysis"]["reference_model"])
    taken = set(reference["resolved_training"]["seeds"]) | set(reference["resolved_training"]["confirmation_seeds"])
    shared = sorted(set(calibration["seeds"]) & taken)
    if shared:
        raise ConfigError(f"analysis.calibration.seeds: seed {shared[0]} is also a seed the reference "
                          f"{reference['name']} is measured on; calibration runs must be runs apart")
    trials = [trial["name"] for trial in reference["trials"]]
    if calibration["trial"] is None and len(trials) > 1:
        raise ConfigError(f"analysis.calibration.trial: the reference {reference['name']} has {len(trials)} trials "
                          f"({', '.join(trials)}): name the one its calibration runs train")
    if calibration["trial"] is not None and calibration["trial"] not in trials:
        raise ConfigError(f"analysis.calibration.trial: {calibration['trial']!r} is not a trial of the reference "
                          f"{reference['name']} ({', '.join(trials)})")


def check_thresholds_for_classes(thresholds: list[dict], num_classes: int) -> None:
    """A top-k threshold needs more than k classes: with k or fewer every model, trained or not, is at 100%."""
    for index, threshold in enumerate(thresholds):
        k = {"val_top1": 1, "val_top5": 5}[threshold["metric"]]
        if num_classes <= k:
            raise ConfigError(f"thresholds[{index}].metric: {threshold['metric']} with {num_classes} classes is "
                              "always 1.0 (met by an untrained model); use val_top1 or a data set with more classes")


def _check_step_fractions(settings: dict, key: str) -> None:
    """A schema cannot say "strictly increasing"."""
    fractions = settings.get("step_fractions")
    if fractions and any(a >= b for a, b in itertools.pairwise(fractions)):
        raise ConfigError(f"{key}.step_fractions: {fractions} is not strictly increasing")


def _merged_grid(levels: list[tuple[str, dict, dict]], properties: dict) -> dict:
    """A model's grid from the `sweep:` of each level (where, settings set there, block); see sweeps."""
    def check_value(value, schema, key):
        _validate(value, schema, key, fill_defaults=False)

    try:
        for where, _, block in levels:
            sweeps.check_grid(block.get("sweep", {}), properties, where, check_value)
        return sweeps.merged_grid([(where, {k: v for k, v in scalars.items() if k != "sweep"}, block.get("sweep", {}))
                                   for where, scalars, block in levels])
    except sweeps.SweepError as error:
        raise ConfigError(str(error)) from None


def _add_trials(config: dict, unresolved: dict[str, dict]) -> None:
    """Each model's trials, each with its resolved settings, once the whole plan is known to fit."""
    try:
        sweeps.check_plan_size(config["models"], config["max_training_jobs"])
        for index, model in enumerate(config["models"]):
            prefix = f"models[{index}]"
            model["trials"] = sweeps.trial_values(model["sweep"], prefix, model["name"])
            for trial in model["trials"]:
                # from the settings before resolutions were filled: a null one follows the trial's own
                settings = {**unresolved[model["name"]], **trial["values"]}
                trial["training"] = _resolve_resolutions(settings, config["dataset"], model, prefix)
    except sweeps.SweepError as error:
        raise ConfigError(str(error)) from None


def _check_recipe(name: str | None, recipes: dict, key: str) -> None:
    if name is not None and name not in recipes:
        close = difflib.get_close_matches(name, list(recipes), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{key}: no recipe named {name!r} in `recipes`{hint}")




# training keys that decide how a job runs, not what it computes (see the schema's descriptions)
RUNTIME_KEYS = ("workers", "eval_batch_size", "checkpoint_every_seconds", "check_every_steps", "channels_last",
                "compile")
# training keys that decide which training jobs run (a curve's own seed is its job's)
SEED_LIST_KEYS = ("seeds", "confirmation_seeds")


def curve_settings(settings: dict) -> dict:
    """What of a model's training settings determines its curve: all but the runtime keys and the seed list. The one
    definition: the train rule's params and the checkpoint fingerprint hold exactly these, so changing another key
    neither retrains a finished curve nor discards a checkpoint, and adding a seed trains only that seed."""
    return {key: value for key, value in settings.items() if key not in RUNTIME_KEYS + SEED_LIST_KEYS}


# dataset keys that change what the .beton files contain (the others: how they are written or checked)
DATA_CONTENT_KEYS = ("name", "source", "train_path", "val_path", "val_fraction", "split_seed",
                     "max_images_per_class", "resolution", "max_side", "write_mode", "jpeg_quality",
                     "compress_probability")


def data_content(dataset: dict) -> dict:
    """The dataset settings that determine the data: a change reruns data preparation and training."""
    return {key: dataset[key] for key in DATA_CONTENT_KEYS}






def _resolve_resolutions(settings: dict, dataset: dict, model: dict, prefix: str) -> dict:
    """Fill the resolutions left null and check them against the model and the stored images."""
    settings = dict(settings)
    if settings["resolution"] is None:
        settings["resolution"] = dataset["resolution"]
    ramp = settings["progressive_resizing"]
    if ramp is not None:
        if ramp["end_epoch"] < ramp["start_epoch"]:
            raise ConfigError(f"{prefix}.training.progressive_resizing: end_epoch is before start_epoch")
        if ramp["end_resolution"] < ramp["start_resolution"]:
            raise ConfigError(f"{prefix}.training.progressive_resizing: end_resolution is below start_resolution")
    resolutions = training_resolutions(settings)
    if settings["eval_resolution"] is None:
        settings["eval_resolution"] = resolutions[-1]
    smallest = min(resolutions + [settings["eval_resolution"]])
    if smallest < 63 and model["arch"] == "alexnet":
        key = "dataset.resolution" if smallest == dataset["resolution"] else f"{prefix}.training"
        raise ConfigError(f"{key}: {smallest} px is too small for alexnet ({prefix}; needs >= 63)")
    if settings["batch_size"] % settings["gpus"]:
        raise ConfigError(
            f"{prefix}.training.batch_size: {settings['batch_size']} does not divide over {settings['gpus']} GPUs"
        )
    return settings


def load_config(path: str | Path, check_paths: bool = True) -> dict:
    """Read a YAML config file and validate it (see ``validate_config``)."""
    path = Path(path)
    try:
        with open(path) as handle:
            raw = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from None
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML") from None
    return validate_config(raw or {}, check_paths=check_paths)


def sweep_plan(config: dict) -> dict[str, dict]:
    """Per model: its sweep grid ({key: [values]}) and each trial's grid values ({trial: {key: value}})."""
    return {model["name"]: {"grid": model.get("sweep", {}),
                            "trials": {trial["name"]: trial["values"] for trial in model.get("trials", [])}}
            for model in config["models"]}


def headline_choice(analysis_cfg: dict, threshold_names: list[str]) -> dict:
    """The headline's threshold, set and window: `analysis.headline`, each part left null defaulting to
    the first threshold, the frontier and the whole span. The one place that says what the headline is."""
    chosen = dict(analysis_cfg.get("headline") or {})
    return {"threshold": chosen.get("threshold") or threshold_names[0], "set": chosen.get("set") or "frontier",
            "window": chosen.get("window") or FULL_WINDOW}


def headline_threshold(config: dict) -> dict:
    """The headline's threshold entry (see ``headline_choice``)."""
    name = headline_choice(config["analysis"], [t["name"] for t in config["thresholds"]])["threshold"]
    return next(t for t in config["thresholds"] if t["name"] == name)


def publication_dates(config: dict) -> dict[str, str]:
    return {model["name"]: model["published"] for model in config["models"]}


def model_table(config: dict) -> dict[str, dict]:
    """Models by name, in config order."""
    return {model["name"]: model for model in config["models"]}


def network_spec(config: dict, name: str, num_classes: int, base_dir: str | Path = ".") -> dict:
    """The network a model trains: architecture, constructor arguments, class count (of the data set:
    algoprogress.datafiles.count_classes, known before any image is read) and, for a model in the user's own
    file (relative to ``base_dir``, the workflow directory) or an in-repo network (``algoprogress.nets``), the
    file's content hash: changing the file changes the spec, so that model and only it is counted and trained again
    (``algoprogress.versions``)."""
    model = model_table(config)[name]
    spec = {"arch": model["arch"], "kwargs": model["kwargs"], "num_classes": num_classes}
    path = source_file(model["arch"], base_dir) or own_source_file(model["arch"])
    if path is not None:
        if not path.is_file():
            index = list(model_table(config)).index(name)
            raise ConfigError(f"models[{index}].arch: file {str(path)!r} does not exist")
        spec["source_sha256"] = source_digest(path)
    return spec


def trial_training(config: dict, name: str, trial: str) -> dict:
    """A trial's resolved training settings, runtime keys included (what the training job runs with)."""
    return next(t["training"] for t in model_table(config)[name]["trials"] if t["name"] == trial)
