"""Parameter sweeps: grids over training keys, expanded into named trials. Nothing here imports torch.

Any training block (the global `training:`, a recipe, a model's `training:`) may hold `sweep:`, a
mapping from a training key to a list of values. Per key, the most specific level that sets the key
wins (model > recipe > global), whether it sets a scalar or a grid; a scalar and a grid on the same
key at one level contradict each other. Every combination of a model's merged grid (the full
product) is a *trial*, named from its values in sorted key order (`epochs2-lr0.05`); a model
without a grid has the single trial `base`.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
from decimal import Decimal

BASE_TRIAL = "base"

# training keys that cannot vary per trial, and why
FIXED_KEYS = {
    "seeds": "seeds are separate runs already",
    "confirmation_seeds": "seeds are separate runs already",
    "recipe": "a recipe is a level of settings; sweep its keys instead",
    "sweep": "a grid cannot hold a grid",
    "workers": "a runtime setting, it does not change the curve",
    "eval_batch_size": "a runtime setting, it does not change the curve",
    "gpus": "a runtime setting, it does not change the curve",
    "check_every_steps": "a runtime setting, it does not change the curve",
}

# a trial name is `key` + value per grid key, joined by `-`; a value never contains `-` or `/`
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")


class SweepError(ValueError):
    """A sweep problem, described in one line that names the key (config.py reports it as a ConfigError)."""


def check_grid(grid: dict, properties: dict, where: str, check_value) -> None:
    """Check one level's `sweep:` (at `where`, e.g. `models[2].training`): known keys that may vary,
    each value valid by that key's own schema (``check_value(value, schema, key)`` raises), no duplicates."""
    for key, values in grid.items():
        name = f"{where}.sweep.{key}"
        if key in FIXED_KEYS:
            raise SweepError(f"{name}: cannot vary per trial ({FIXED_KEYS[key]})")
        if key not in properties:
            close = difflib.get_close_matches(key, list(properties), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SweepError(f"{name}: not a training key{hint}")
        if not values:
            raise SweepError(f"{name}: empty grid; give at least one value")
        for index, value in enumerate(values):
            check_value(value, properties[key], f"{name}[{index}]")
            if any(_same(value, earlier) for earlier in values[:index]):
                raise SweepError(f"{name}: duplicate value {json.dumps(value)}")


def merged_grid(levels: list[tuple[str, dict, dict]]) -> dict[str, list]:
    """The grid of a model from its levels, least specific first: (where, scalars set there, grid there).

    Per key the most specific level that sets it wins, scalar or grid. Keys sorted, values sorted."""
    grid: dict[str, list] = {}
    for where, scalars, level_grid in levels:
        for key in sorted(scalars.keys() & level_grid.keys()):
            raise SweepError(f"{where}.{key}: {json.dumps(scalars[key])} contradicts {where}.sweep.{key}; set one")
        for key in scalars:
            grid.pop(key, None)
        grid.update(level_grid)
    return {key: sorted(grid[key], key=_sort_key) for key in sorted(grid)}


def trial_count(grid: dict[str, list]) -> int:
    return math.prod(len(values) for values in grid.values())


def check_plan_size(models: list[dict], limit: int) -> None:
    """One training job per trial and selection seed, and one per confirmation seed: refuse a plan above
    `max_training_jobs` before expanding it."""
    sizes = {model["name"]: trial_count(model["sweep"]) * len(model["resolved_training"]["seeds"])
             + len(model["resolved_training"]["confirmation_seeds"]) for model in models}
    total = sum(sizes.values())
    if total > limit:
        largest = max(sizes, key=sizes.get)
        raise SweepError(f"max_training_jobs: the plan has {total} training jobs (trials x seeds, and confirmation "
                         f"seeds; {largest}: "
                         f"{sizes[largest]}), above the limit of {limit}; shrink the grids or raise the limit")


def format_value(value) -> str:
    """A grid value as it appears in a trial name: no `/`, no spaces, no `-` (the separator);
    numbers exactly (0.05, 0.00001, 2), negative numbers as `neg0.5`."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(Decimal(repr(value)), "f")
    elif isinstance(value, dict):
        return "_".join(f"{key}{format_value(value[key])}" for key in sorted(value))
    else:
        return _UNSAFE.sub("_", str(value))
    return text.replace("-", "neg")


def trial_name(values: dict) -> str:
    """`epochs2-lr0.05`: each grid key and its value, in sorted key order; `base` without a grid."""
    return "-".join(f"{key}{format_value(values[key])}" for key in sorted(values)) or BASE_TRIAL


def trial_values(grid: dict[str, list], where: str, model_name: str) -> list[dict]:
    """Every combination of the grid, in a stable order (keys sorted, each key's values sorted), with
    its name; names that collide are refused (`where`: the model's key, e.g. `models[2]`)."""
    keys = sorted(grid)
    combinations = [dict(zip(keys, chosen, strict=True)) for chosen in itertools.product(*(grid[key] for key in keys))]
    named: dict[str, dict] = {}
    for values in combinations:
        name = trial_name(values)
        if name in named:
            raise SweepError(f"{where}.training.sweep: model {model_name!r}: values {named[name]} and {values} "
                             f"both name the trial {name!r}; choose values that differ once written")
        named[name] = values
    return [{"name": name, "values": values} for name, values in named.items()]


def _same(value, other) -> bool:
    return value == other and isinstance(value, bool) == isinstance(other, bool)


def _sort_key(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, json.dumps(value, sort_keys=True))
