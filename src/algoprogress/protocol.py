"""The measurement protocol: which curves each model trains, which trial is measured and on which seeds.

Three roles of a training run (a curve), by its seed:

- **selection**: every trial of a model trains on each of its ``seeds``. A model with several trials (a
  sweep) has one chosen on them: the trial with the least median compute, over these seeds, at the
  headline threshold (``choose_trials``; a seed not reached counts as infinite compute).
- **confirmation**: the chosen trial trains again on each of the model's ``confirmation_seeds``; the
  model's compute at threshold is the median over them. No trial was chosen on these seeds, so the least
  of several noisy trials (the winner's curse of the lower envelope) does not make a model that was
  searched more widely look cheaper. The per-seed least over trials on the selection seeds stays in the
  results, named as what it is: an optimistic bound. A model with a single trial has nothing to choose:
  its compute is the median over all its seeds, selection and confirmation alike.
- **calibration**: where a threshold is defined by the reference (``value: reference``), the reference's
  calibration trial trains on ``analysis.calibration.seeds`` to its full budget, and the level is fixed by
  them alone (``thresholds.reference_level``), not by the runs being measured.

A seed has one role per model (the config refuses overlaps), so a curve's role is a function of (model,
seed). Which trial is confirmed depends on finished curves: the workflow plans the confirmation runs of a
model with several trials after its checkpoint rule ``select_trials`` has run (rules/analysis.smk).
Nothing here imports a library: the workflow plans with this module while Snakemake parses it, in the small
Snakemake environment (envs/snakemake.yaml); the functions on tables take and give pandas objects.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SELECTION, CONFIRMATION, CALIBRATION = "selection", "confirmation", "calibration"
REFERENCE_LEVEL = "reference"


def reference_defined(thresholds: list[dict]) -> list[dict]:
    """The thresholds whose level the reference's calibration runs fix."""
    return [threshold for threshold in thresholds if threshold["value"] == REFERENCE_LEVEL]


def measurement_plan(config: dict) -> dict[str, dict]:
    """Per model (a validated config): its trials, its seeds by role, and whether a trial is chosen."""
    reference = config["analysis"]["reference_model"]
    calibrating = bool(reference_defined(config["thresholds"]))
    plan = {}
    for model in config["models"]:
        trials = [trial["name"] for trial in model["trials"]]
        settings = model["resolved_training"]
        plan[model["name"]] = {
            "trials": trials, "chooses": len(trials) > 1,
            SELECTION: list(settings["seeds"]), CONFIRMATION: list(settings["confirmation_seeds"]),
            CALIBRATION: list(config["analysis"]["calibration"]["seeds"]) if calibrating and model["name"] == reference
            else [],
            "calibration_trial": calibration_trial(config) if calibrating and model["name"] == reference else None,
        }
    return plan


def for_selection(plan: dict) -> dict:
    """What the choice of trials depends on (no confirmation seeds): adding a confirmation seed leaves the choice
    made, so that only that seed's run is planned."""
    return {model: {key: value for key, value in entry.items() if key != CONFIRMATION} for model, entry in plan.items()}


def calibration_trial(config: dict) -> str:
    """The reference's trial its calibration runs train: the one named, or its only trial."""
    reference = next(m for m in config["models"] if m["name"] == config["analysis"]["reference_model"])
    return config["analysis"]["calibration"]["trial"] or reference["trials"][0]["name"]


def role_of(plan: dict, model: str, seed: int) -> str:
    roles = plan[model]
    for role in (CALIBRATION, CONFIRMATION, SELECTION):
        if int(seed) in roles[role]:
            return role
    return SELECTION  # a curve of a seed no longer configured: it was trained as a selection run


def with_roles(table: pd.DataFrame, plan: dict) -> pd.DataFrame:
    """The table (a row per curve, with model and seed) with each curve's ``role``."""
    roles = [role_of(plan, model, seed) if model in plan else SELECTION
             for model, seed in zip(table["model"], table["seed"], strict=True)]
    return table.assign(role=roles)


def _median_compute(rows: pd.DataFrame) -> float:
    """The median over curves of the compute at threshold, a curve not reached counting as infinite."""
    compute = rows["train_flops"].astype(float).where(rows["reached"].astype(bool), math.inf)
    return float(compute.median(skipna=False)) if len(compute) else math.nan


def _nan_last(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def choose_trials(table: pd.DataFrame, plan: dict) -> dict[str, dict]:
    """Per model: the trial whose selection runs need the least median compute at the threshold of ``table``
    (the headline's; one row per curve, as ``thresholds.compute_at_threshold`` gives), ties to the first trial
    in the grid's order; where no trial reaches, the one whose selection runs came closest (the highest median
    of their best evaluations). Also each trial's median (null where infinite): what the choice was made on."""
    chosen = {}
    for model, entry in plan.items():
        rows = table.loc[(table["model"] == model) & table["seed"].isin(entry[SELECTION])]
        medians = {trial: _median_compute(rows.loc[rows["trial"] == trial]) for trial in entry["trials"]}
        finite = {trial: value for trial, value in medians.items() if math.isfinite(value)}
        if finite:
            trial = min(finite, key=lambda name: (finite[name], entry["trials"].index(name)))
        else:
            best = {trial: float(rows.loc[rows["trial"] == trial, "best_metric"].median()) for trial in entry["trials"]}
            trial = max(entry["trials"], key=lambda name: (_nan_last(best[name]), -entry["trials"].index(name)))
        chosen[model] = {"trial": trial, "selection_flops": finite.get(trial),
                         "medians": {name: finite.get(name) for name in entry["trials"]}}
    return chosen


def _rows_where(table: pd.DataFrame, masks) -> pd.DataFrame:
    """The rows of ``table`` any of the boolean ``masks`` (Series on its index) marks."""
    return table.loc[functools.reduce(operator.or_, masks, table["model"].isin(()))]


def measured_rows(table: pd.DataFrame, plan: dict, chosen: dict[str, dict]) -> pd.DataFrame:
    """The rows each model's compute at threshold is the median of: a model with several trials, its chosen
    trial's confirmation runs; a model with one trial, all its runs but calibration runs."""
    def measured(model, entry):
        mine = table["model"] == model
        if entry["chooses"]:
            return mine & (table["trial"] == chosen[model]["trial"]) & table["seed"].isin(entry[CONFIRMATION])
        return mine & table["seed"].isin(entry[SELECTION] + entry[CONFIRMATION])

    return _rows_where(table, (measured(model, entry) for model, entry in plan.items()))


def selection_rows(table: pd.DataFrame, plan: dict) -> pd.DataFrame:
    """Every trial's selection runs (what the optimistic bound, the least over trials per seed, is taken over)."""
    return _rows_where(table, ((table["model"] == model) & table["seed"].isin(entry[SELECTION])
                               for model, entry in plan.items()))


def measured_curves(curves: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The curves (rows of every evaluation) of the runs the thresholds stage's ``table`` marks as measured (all
    of them where it marks none)."""
    if "measured" not in table.columns:
        return curves
    keys = table.loc[table["measured"].astype(bool), ["model", "trial", "seed"]].drop_duplicates()
    return curves.merge(keys.astype({"model": str, "trial": str}), on=["model", "trial", "seed"], how="inner")
