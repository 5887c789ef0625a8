"""Calibration benchmark: whole experiments simulated with known truth, run through the project's own analysis.

Each simulated experiment goes the workflow's way from learning curves to the headline: the reference's calibration
runs fix the reference-defined level (``thresholds.resolve_thresholds``), every trial's selection runs are cut at it
(``thresholds.compute_at_threshold``), each model's trial is chosen on them (``protocol.choose_trials``), the chosen
trial's confirmation runs are simulated and cut, the rows are given their roles (``protocol.with_roles``,
``protocol.measured_rows``), and ``analysis.analyse_measured`` gives the headline (frontier OLS, all-models OLS, the
package's bootstrap of both, the efficiency factor, and the published ``interval`` of each: for the frontier, the
headline, ``intervals.frontier_parametric_interval``; for all models ``intervals.slope_interval``, each with the
level's error; the efficiency factor's from the trend). Beside them, the other candidates of ``algoprogress.intervals``
(the table's columns are computed by ``intervals.headline_intervals``; tests/test_calibration.py holds that the
published ones are the same numbers).

**Truth.** Model i (15 or 29 of them, published 2012-06 to 2020-12 by month, a few sharing a date; the reference
``m00`` is the earliest, 2012-06-01) needs ``c_i = C0 + SLOPE * (year_i - year_ref)`` log2 FLOPs to reach the level
``L``, exactly on the trend (``SLOPE = -0.75`` log2/year: a doubling time of 16 months). ``L`` is the reference's
true final accuracy less the threshold's margin: what its calibration runs estimate. The truth of the slope is
``SLOPE``; the truth of the efficiency factor is the ratio of the true computes of the reference and of the model the
tool names as best, ``2 ** (c_ref - c_best)`` (the factor the tool publishes names that pair; whether it named the
truly best model is in the records, ``best_is_true``). A model that never reaches has no truth: were it named best
(measured as reached by luck), the experiment has no factor's truth.

**Noise.** Each model has ``TRIALS`` budgets whose true cost exceeds ``c_i`` by ``TRIAL_OFFSETS`` log2, each with a
persistent trial effect ``N(0, sd)`` (the trial's luck, shared by all its runs: more seeds do not average it out),
and each run (a trial on a seed) a seed effect ``N(0, sd)``: the run's noise-free curve crosses ``L`` at
``c_i + offset + trial effect + seed effect``. A curve is logistic in log2 compute, from chance ``A0`` to the model's
plateau, of width ``WIDTH``; plateaus rise with date (the reference's sits ``margin`` above ``L``, the newest models'
up to ``PLATEAU_RISE`` higher, so that the reference crosses ``L`` where its curve is flattest, as AlexNet does);
``NEVER_SHARE`` of the models other than the reference plateau below ``L`` (never reach). Evaluations every
``SPACING`` log2 of compute up to each trial's budget (``HEADROOM`` log2 past its expected crossing) and one at
step 0; each evaluation is Binomial(n_val, accuracy) / n_val, independently. The margin and calibration runs go with
the validation set: the bundled config's (500 images, margin 0.03, 2 calibration runs) or the ImageNet config's
(50,000 images, margin 0.01, 3). "1 seed": one selection and one confirmation seed per model; "3 seeds": three of each.

**Cells.** ``full``: 15 and 29 models x sd 0.1, 0.3, 0.6 x 500 and 50,000 images x 1 and 3 seeds (24 cells);
``variants``: the bundled-like cell with one assumption changed (a level given as a number; margin 0.05; true
per-model scatter around the trend; 30% of models off the trend by +1..3 log2, not aimed at efficiency); ``quick``:
two cells, for tests/test_calibration.py. Each cell runs in chunks of ``CHUNK`` experiments, each chunk with its own
random stream (``SeedSequence([seed, cell, chunk])``): a part run with ``--only`` or ``--jobs`` gives the same numbers
as the whole.

    PYTHONPATH=src .venv/bin/python bench/calibration.py --cells quick --experiments 20 --seed 1
    PYTHONPATH=src .venv/bin/python bench/calibration.py --cells full --experiments 1000 --seed 1 --jobs 2 --out FILE
    PYTHONPATH=src .venv/bin/python bench/calibration.py --summarise part1.csv part2.csv   # parts run with --only

Prints the machine, versions, date and command, then two Markdown tables, one row per cell: the coverage of the
truth by each 95% interval; the bias of the point estimates (slope in log2/year, log2 of the efficiency factor), the
median doubling time and mean widths. ``--out`` writes every experiment's numbers (CSV; ``--summarise`` reads them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, not installed

from algoprogress import intervals
from algoprogress.analysis import analyse_measured
from algoprogress.config import analysis_settings
from algoprogress.protocol import CALIBRATION, CONFIRMATION, SELECTION, choose_trials, measured_rows, with_roles
from algoprogress.provenance import cpu_model
from algoprogress.thresholds import (
    compute_at_threshold,
    lower_envelope,
    resolve_thresholds,
    seed_values,
    with_level_shifts,
)
from algoprogress.trend import decimal_year

SLOPE = -0.75  # log2 per year: 16 months' doubling
C0 = 60.0  # the reference's true log2 compute at the level
REFERENCE = "m00"  # the earliest model, published 2012-06-01
TRIALS, TRIAL_OFFSETS = ["b0", "b1", "b2", "b3"], np.array([0.0, 0.25, 0.5, 1.0])
A0, WIDTH, PLATEAU_TOP, PLATEAU_RISE = 0.10, 0.8, 0.86, 0.10
NEVER_SHARE, NEVER_GAP = 0.12, (0.02, 0.06)
OFF_TREND = (1.0, 3.0)  # log2 above the trend: the true cost of a model not aimed at efficiency (sensitivity cells)
SPACING, HEADROOM, SPAN, CALIBRATION_HEADROOM = 0.25, 2.0, 6.0, 3.0
METRIC = "val_top1"
EVALUATION = {500: {"margin": 0.03, "calibration_seeds": [1000, 1001]},  # config/config.yaml
              50_000: {"margin": 0.01, "calibration_seeds": [1000, 1001, 1002]}}  # config/imagenet.yaml
SETTINGS = analysis_settings({"reference_model": REFERENCE})  # the defaults: headline = frontier, whole span
CELL_KEYS = ("models", "sd", "n_val", "seeds", "level", "margin", "scatter", "off_trend", "crossing")
CHUNK = 25  # experiments per random stream (and per job with --jobs)


def cell_grid(kind: str) -> list[dict]:
    """The cells: models x noise sd x validation images x seeds (``quick``: two small cells, for a test;
    ``variants``: the bundled-like cell with one assumption changed at a time)."""
    if kind == "quick":
        return [{"models": 15, "sd": 0.3, "n_val": 500, "seeds": 1},
                {"models": 15, "sd": 0.3, "n_val": 50_000, "seeds": 3}]
    if kind == "variants":
        base = {"models": 15, "sd": 0.3, "n_val": 500, "seeds": 1}
        return [{**base, "level": "fixed"}, {**base, "margin": 0.05}, {**base, "scatter": 0.3},
                {**base, "off_trend": 0.3}, {**base, "n_val": 50_000, "seeds": 3, "scatter": 0.3},
                {**base, "n_val": 50_000, "seeds": 3, "off_trend": 0.3},
                {**base, "crossing": "first"}, {**base, "level": "fixed", "crossing": "first"}]
    return [{"models": m, "sd": s, "n_val": v, "seeds": k}
            for m, s, v, k in itertools.product((15, 29), (0.1, 0.3, 0.6), (500, 50_000), (1, 3))]


# --- the simulated world ---------------------------------------------------------------------------------------

def design(rng: np.random.Generator, cell: dict) -> pd.DataFrame:
    """Per model: name, date, true log2 compute at the level, plateau, whether it never reaches."""
    n = cell["models"]
    months = np.sort(rng.integers(1, 103, n - 1))  # 2012-07 .. 2020-12
    for i in rng.choice(np.arange(1, n - 1), size=max(1, n // 10), replace=False):  # a few share a date
        months[i] = months[i - 1]
    months = np.r_[0, np.sort(months)]
    dates = [f"{2012 + (5 + m) // 12}-{(5 + m) % 12 + 1:02d}-01" for m in months]
    years = np.array([decimal_year(d) for d in dates])
    level = PLATEAU_TOP - margin_of(cell)
    age = (years - years[0]) / (years.max() - years[0])
    plateau = PLATEAU_TOP + PLATEAU_RISE * age * rng.uniform(0.5, 1.0, n)
    plateau[0] = PLATEAU_TOP
    never = np.zeros(n, dtype=bool)
    never[1:] = rng.random(n - 1) < NEVER_SHARE
    plateau[never] = level - rng.uniform(*NEVER_GAP, never.sum())
    true_log2 = C0 + SLOPE * (years - years[0]) + rng.normal(0, cell.get("scatter", 0.0), n)
    off = np.r_[False, rng.random(n - 1) < cell.get("off_trend", 0.0)]  # models not aimed at efficiency
    true_log2[off] += rng.uniform(*OFF_TREND, off.sum())
    return pd.DataFrame({"model": [f"m{i:02d}" for i in range(n)], "published": dates, "year": years,
                         "true_log2": true_log2, "plateau": plateau, "never": never, "level": level})


def curves_of(rng: np.random.Generator, runs: pd.DataFrame, n_val: int, level: float) -> pd.DataFrame:
    """Learning curves of ``runs`` (model, trial, seed, crossing: log2 compute where the noise-free curve crosses
    ``level``, end: the trial's budget, plateau), evaluated every SPACING log2 up to ``end`` and at step 0."""
    k = int(round(SPAN / SPACING)) + 1
    x = runs["end"].to_numpy()[:, None] - SPACING * np.arange(k)[::-1][None, :]
    plateau = runs["plateau"].to_numpy()[:, None]
    share = np.clip((level - A0) / (plateau - A0), 1e-6, 1 - 1e-6)  # where on its rise the curve meets the level
    centre = runs["crossing"].to_numpy()[:, None] - WIDTH * np.log(share / (1 - share))
    centre = np.where(plateau > level, centre, runs["crossing"].to_numpy()[:, None])  # never reaches: nominal
    accuracy = A0 + (plateau - A0) / (1 + np.exp(-(x - centre) / WIDTH))
    accuracy = np.c_[np.full(len(runs), A0), accuracy]
    observed = rng.binomial(n_val, accuracy) / n_val
    flops = np.c_[np.zeros(len(runs)), 2.0 ** x]
    steps = np.arange(k + 1)
    frame = pd.DataFrame({
        "model": np.repeat(runs["model"].to_numpy(), k + 1), "trial": np.repeat(runs["trial"].to_numpy(), k + 1),
        "seed": np.repeat(runs["seed"].to_numpy(), k + 1), "step": np.tile(steps, len(runs)),
        "train_flops": flops.ravel(), METRIC: observed.ravel(),
    })
    return frame.assign(epoch=frame["step"].astype(float), images_seen=frame["step"], wall_seconds=0.0)


def runs_of(rng, world: pd.DataFrame, trial_effect: np.ndarray, sd: float, seeds: list[int],
            trials: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """The runs (trial x seed) of every model; ``trials``: per model the trial indices (all by default)."""
    rows = []
    for i, model in enumerate(world.itertuples()):
        for t in (trials or {}).get(model.model, range(len(TRIALS))):
            expected = model.true_log2 + TRIAL_OFFSETS[t]
            for seed in seeds:
                rows.append((model.model, TRIALS[t], seed, expected + trial_effect[i, t] + rng.normal(0, sd),
                             expected + HEADROOM, model.plateau))
    return pd.DataFrame(rows, columns=["model", "trial", "seed", "crossing", "end", "plateau"])


def calibration_runs(rng, world: pd.DataFrame, sd: float, seeds: list[int]) -> pd.DataFrame:
    ref = world.iloc[0]
    return pd.DataFrame({"model": REFERENCE, "trial": "calibration", "seed": seeds,
                         "crossing": ref.true_log2 + rng.normal(0, sd, len(seeds)),
                         "end": ref.true_log2 + CALIBRATION_HEADROOM, "plateau": ref.plateau})


def plan_of(world: pd.DataFrame, cell: dict) -> dict:
    seeds = cell["seeds"]
    calibration = EVALUATION[cell["n_val"]]["calibration_seeds"]
    return {m: {"trials": list(TRIALS), "chooses": True, SELECTION: list(range(seeds)),
                CONFIRMATION: list(range(100, 100 + seeds)), CALIBRATION: calibration if m == REFERENCE else [],
                "calibration_trial": "calibration" if m == REFERENCE else None} for m in world["model"]}


def margin_of(cell: dict) -> float:
    return cell.get("margin", EVALUATION[cell["n_val"]]["margin"])


def threshold_of(rng, world: pd.DataFrame, cell: dict, plan: dict) -> dict:
    """The headline threshold: the reference-defined level, resolved from the reference's calibration runs as the
    workflow does (``thresholds.resolve_thresholds``); with ``level: fixed``, the true level given as a number."""
    if cell.get("level", "reference") == "fixed":
        return {"name": "fixed-level", "metric": METRIC, "value": float(world["level"].iloc[0]),
                "level_standard_error": 0.0, "crossing": cell.get("crossing", "monotone")}
    seeds = plan[REFERENCE][CALIBRATION]
    calibration = curves_of(rng, calibration_runs(rng, world, cell["sd"], seeds), cell["n_val"],
                            world["level"].iloc[0])
    threshold = {"name": "reference-level", "metric": METRIC, "value": "reference", "margin": margin_of(cell),
                 "crossing": cell.get("crossing", "monotone")}
    return resolve_thresholds(calibration, [threshold], REFERENCE, {"trial": "calibration", "seeds": seeds},
                              val_images=cell["n_val"])[0]


def experiment(rng: np.random.Generator, cell: dict, draws: int, boot_seed: int) -> tuple[dict, dict]:
    """One whole simulated experiment: (the truth and the tool's results, the inputs of the new intervals)."""
    world = design(rng, cell)
    plan = plan_of(world, cell)
    sd, n_val, true_level = cell["sd"], cell["n_val"], world["level"].iloc[0]
    effect = rng.normal(0, sd, (len(world), len(TRIALS)))
    threshold = threshold_of(rng, world, cell, plan)
    crossing = threshold["crossing"]
    selection_runs = runs_of(rng, world, effect, sd, plan[REFERENCE][SELECTION])
    selection = curves_of(rng, selection_runs, n_val, true_level)
    table = compute_at_threshold(selection, METRIC, threshold["value"], threshold_name=threshold["name"],
                                 crossing=crossing)
    chosen = choose_trials(table, plan)
    picks = {m: [TRIALS.index(c["trial"])] for m, c in chosen.items()}
    confirmation_runs = runs_of(rng, world, effect, sd, plan[REFERENCE][CONFIRMATION], picks)
    confirmation = curves_of(rng, confirmation_runs, n_val, true_level)
    table = pd.concat([table, compute_at_threshold(confirmation, METRIC, threshold["value"],
                                                   threshold_name=threshold["name"], crossing=crossing)],
                      ignore_index=True)
    table = with_roles(table, plan)
    table = table.assign(measured=table.index.isin(measured_rows(table, plan, chosen).index))
    # as workflow/scripts/thresholds.py: each run cut at the level shifted either way, the level's error
    table = with_level_shifts(table, pd.concat([selection, confirmation]), [threshold]).assign(
        level_standard_error=threshold["level_standard_error"])
    published = dict(zip(world["model"], world["published"], strict=True))
    settings = {**SETTINGS, "bootstrap": {"draws": draws, "seed": boot_seed}}
    result, _, points_by = analyse_measured(table, published, [threshold], settings)
    rec, inputs = record(world, cell, threshold, result, points_by[threshold["name"]], table)
    rec.update(crossing_errors(table, pd.concat([selection_runs, confirmation_runs])))
    return rec, inputs


def crossing_errors(table: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """The crossing's bias: over the measured runs that reached, the mean of log2 of the measured compute at
    threshold less where the run's noise-free curve crosses the true level (its evaluation noise, the crossing rule
    and the interpolation; with a reference-defined level, the level's error too), and the reference's alone."""
    measured = table.loc[table["measured"] & table["reached"].astype(bool)].merge(runs, on=["model", "trial", "seed"])
    error = np.log2(measured["train_flops"].to_numpy(dtype=float)) - measured["crossing"].to_numpy(dtype=float)
    reference = measured["model"].to_numpy() == REFERENCE
    return {"crossing_error": float(error.mean()) if len(error) else math.nan,
            "crossing_error_reference": float(error[reference].mean()) if reference.any() else math.nan}


def record(world, cell, threshold, result, points, table) -> tuple[dict, dict]:
    """The experiment's numbers (truth and the tool's published intervals), and the inputs of the new intervals."""
    truth = world.set_index("model")
    fits = result["thresholds"][threshold["name"]]["fits"]["full"]
    rec = {"level_error": threshold["value"] - truth["level"].iloc[0], "n_frontier": fits["frontier"]["n"],
           "n_all": fits["all"]["n"],
           "false_reached": int(points.loc[points["model"].map(truth["never"]), "compute"].notna().sum())}
    for name, fit in (("frontier", fits["frontier"]), ("all", fits["all"])):
        rec[f"ols_{name}"] = (fit["slope_log2_per_year"], fit["slope_low"], fit["slope_high"])
        boot = fit["bootstrap"]
        rec[f"boot_{name}"] = (fit["slope_log2_per_year"], boot.get("slope_low"), boot.get("slope_high"))
    best = result["best_model"]
    reached = truth.loc[~truth["never"], "true_log2"]
    never = bool(best and truth.loc[best, "never"])  # a model that never reaches, measured as reached: no truth
    rec.update(best=best, best_is_true=best == reached.idxmin(), best_never=never,
               true_log2_ef=truth.loc[REFERENCE, "true_log2"] - truth.loc[best, "true_log2"] if best and not never
               else math.nan)
    ef = result.get("efficiency_factor")
    rec["ef_tool"] = (math.log2(ef) if ef else math.nan, math.nan, math.nan)
    for name in ("frontier", "all"):  # the intervals the analysis publishes (the same as two candidates below)
        published = fits[name]["interval"]
        rec[f"published_{name}"] = tuple(published[k] for k in ("slope_log2_per_year", "slope_low", "slope_high"))
        factor = [published[k] for k in ("efficiency_factor_trend", "efficiency_factor_low", "efficiency_factor_high")]
        rec[f"published_ef_{name}"] = tuple(math.log2(v) if v else math.nan for v in factor)
    seeds = seed_values(lower_envelope(table.loc[table["measured"]]))
    inputs = {"models": points["model"].tolist(),
              "years": np.array([decimal_year(d) for d in points["published"]]),
              "seed_computes": [seeds[(threshold["name"], m)] for m in points["model"]],
              "on_frontier": points["on_frontier"].to_numpy(dtype=bool), "reference": REFERENCE, "best": best,
              "sensitivity": points["level_sensitivity"].to_numpy(dtype=float),
              "level_se": threshold["level_standard_error"]}
    return rec, inputs


# --- what is reported -------------------------------------------------------------------------------------------

SLOPE_INTERVALS = {
    "ols_frontier": "OLS t, frontier (published beside)", "boot_frontier": "package bootstrap, frontier",
    "ols_all": "OLS t, all models", "boot_all": "package bootstrap, all models",
    "slope_all_level": "OLS t, all models + level error (published: all models)",
    "slope_frontier_param": "parametric bootstrap, frontier + level error (published: the frontier, the headline)",
}
EF_INTERVALS = {
    "ef_tool": "the measured factor (no interval)", "ef_direct": "two models' own, residual sd + level (candidate)",
    "ef_replicates": "two models' own, run-to-run sd + level (candidate)",
    "ef_trend": "the all-models trend's, over their dates",
    "ef_trend_frontier": "the frontier trend's, over their dates (published with the headline)",
}


def new_intervals(inputs: dict, seed: int) -> dict:
    return intervals.headline_intervals(**inputs, seed=seed)


def summarise(cell: dict, records: list[dict]) -> list[dict]:
    """Per interval: coverage of the truth (share of the experiments that have the interval), mean width, bias of
    the point estimate, and for the slope the median doubling time."""
    rows = []
    for name, label in {**SLOPE_INTERVALS, **EF_INTERVALS}.items():
        slope = name in SLOPE_INTERVALS
        truth = np.array([SLOPE if slope else r["true_log2_ef"] for r in records], dtype=float)
        est = np.array([[np.nan if v is None else v for v in r[name]] for r in records], dtype=float)
        has = np.isfinite(est[:, 1]) & np.isfinite(est[:, 2]) & np.isfinite(truth)
        point = np.isfinite(est[:, 0]) & np.isfinite(truth)
        rows.append({**cell, "name": name, "runs": len(records), "quantity": "slope" if slope else "log2 EF",
                     "interval": label,
                     "coverage": float(np.mean((est[has, 1] <= truth[has]) & (truth[has] <= est[has, 2])))
                     if has.any() else math.nan,
                     "experiments": int(has.sum()), "width": float(np.mean(est[has, 2] - est[has, 1]))
                     if has.any() else math.nan,
                     "bias": float(np.mean(est[point, 0] - truth[point])) if point.any() else math.nan,
                     "doubling_months": float(np.median(-12 / est[point, 0])) if slope and point.any() else math.nan,
                     **{f"{key}_bias": _mean([r.get(key, math.nan) for r in records])
                        for key in ("crossing_error", "crossing_error_reference")}})
    return rows


def _mean(values: list) -> float:
    values = np.array(values, dtype=float)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else math.nan


def run_chunk(job: tuple) -> list[dict]:
    """``count`` experiments of ``cell`` from their own seed sequence (the same numbers whatever the --jobs)."""
    cell, seed, index, chunk, count, draws = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, chunk]))
    records = []
    for k in range(count):
        rec, inputs = experiment(rng, cell, draws, boot_seed=chunk * 10_000 + k)
        rec.update(new_intervals(inputs, seed=chunk * 10_000 + k))
        rec.update(cell_index=index, **cell, experiment=chunk * CHUNK + k)
        records.append(rec)
    return records


def flat(record: dict) -> dict:
    """A record with each (point, low, high) as three columns."""
    out = {}
    for key, value in record.items():
        if isinstance(value, tuple | list | np.ndarray):
            out.update({f"{key}_{part}": v for part, v in zip(("point", "low", "high"), value, strict=True)})
        else:
            out[key] = value
    return out


def unflat(frame: pd.DataFrame) -> list[dict]:
    """``flat``'s records back, from a CSV that ``--out`` wrote."""
    records = []
    for row in frame.to_dict("records"):
        for name in [*SLOPE_INTERVALS, *EF_INTERVALS]:
            row[name] = tuple(row.pop(f"{name}_{part}") for part in ("point", "low", "high"))
        records.append(row)
    return records


def summarise_files(paths: list[str]) -> list[dict]:
    """The table of experiments already run (``--out`` CSVs, e.g. parts run with ``--only``), cell by cell."""
    frame = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    rows = []
    for _, group in frame.groupby("cell_index", sort=True):
        first = {k: group[k].iloc[0] for k in CELL_KEYS if k in group and group[k].notna().all()}
        cell = {k: v.item() if hasattr(v, "item") else v for k, v in first.items()}
        rows += summarise(cell, unflat(group))
    return rows


def machine() -> str:
    import scipy
    import statsmodels

    return (f"{cpu_model()}, {os.cpu_count()} CPUs; Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, pandas {pd.__version__}, statsmodels {statsmodels.__version__}")


SHORT = {"ols_frontier": "OLS frontier", "boot_frontier": "boot frontier", "ols_all": "OLS all",
         "boot_all": "boot all", "slope_all_level": "*all + level*", "slope_frontier_param": "**frontier param.**",
         "ef_tool": "measured (= direct)", "ef_direct": "direct, resid.", "ef_replicates": "direct, runs",
         "ef_trend": "trend", "ef_trend_frontier": "**frontier trend**"}  # bold: the headline's, italic: all models'


def cell_label(row: dict) -> str:
    extra = [f"{k} {row[k]}" for k in ("level", "margin", "scatter", "off_trend", "crossing")
             if k in row and row[k] == row[k]]
    return (f"| {row['models']} | {row['sd']} | {row['n_val']:,} | {row['seeds']} | {', '.join(extra) or '-'} "
            f"| {row['experiments']} |")


def markdown(rows: list[dict]) -> str:
    """Two tables, one row per cell: coverage of each 95% interval; bias of the point estimates and mean widths."""
    by_cell = {}
    for r in rows:
        by_cell.setdefault(tuple(sorted((k, v) for k, v in r.items() if k in CELL_KEYS)), {})[r["name"]] = r
    head = "| models | sd | val images | seeds | variant | experiments |"
    slope, ef = list(SLOPE_INTERVALS), [n for n in EF_INTERVALS if n != "ef_tool"]
    cover = [head + "".join(f" slope: {SHORT[n]} |" for n in slope) + "".join(f" EF: {SHORT[n]} |" for n in ef),
             "|---" * (6 + len(slope) + len(ef)) + "|"]
    slope_bias = ("ols_frontier", "ols_all", "slope_frontier_param")
    ef_bias = ("ef_tool", "ef_trend", "ef_trend_frontier")
    widths = ("ols_frontier", "slope_all_level", "slope_frontier_param", "ef_trend")
    bias = [head + "".join(f" slope bias: {SHORT[n]} |" for n in slope_bias)
            + " median doubling (months): OLS frontier, OLS all |"
            + "".join(f" log2 EF bias: {SHORT[n]} |" for n in ef_bias)
            + "".join(f" width: {SHORT[n]} |" for n in widths) + " crossing bias: measured runs, reference |",
            "|---" * (6 + len(slope_bias) + 1 + len(ef_bias) + len(widths) + 1) + "|"]
    for cell in by_cell.values():
        first = cell["ols_frontier"]
        label = cell_label({**first, "experiments": first["runs"]})
        cover.append(label + "".join(f" {cell[n]['coverage']:.3f} |" if cell[n]["experiments"] else " n/a |"
                                     for n in slope + ef))
        bias.append(label + "".join(f" {cell[n]['bias']:+.4f} |" for n in slope_bias)
                    + f" {cell['ols_frontier']['doubling_months']:.1f}, {cell['ols_all']['doubling_months']:.1f} |"
                    + "".join(f" {cell[n]['bias']:+.3f} |" for n in ef_bias)
                    + "".join(f" {cell[n]['width']:.3f} |" for n in widths)
                    + " " + ", ".join(f"{first[k]:+.3f}" if np.isfinite(first[k]) else "n/a"
                                       for k in ("crossing_error_bias", "crossing_error_reference_bias")) + " |")
    return "\n".join(cover) + "\n\n" + "\n".join(bias) + "\n\n" + goal_table(rows)


GOAL_COVERAGE, GOAL_BIAS = (0.93, 0.97), 0.05  # the goal: 95% intervals covering in 93-97% of experiments


def goal_table(rows: list[dict]) -> str:
    """Over the cells: per interval, how many cover the truth in 93-97% of their experiments, and the range; per
    point estimate of log2 of the efficiency factor, how many have a bias within 0.05."""
    lines = ["| interval | cells covering in 93-97% | range |", "|---|---|---|"]
    for name in [*SLOPE_INTERVALS, *EF_INTERVALS]:
        values = np.array([r["coverage"] for r in rows if r["name"] == name and r["experiments"]], dtype=float)
        if len(values):
            inside = int(((values >= GOAL_COVERAGE[0]) & (values <= GOAL_COVERAGE[1])).sum())
            kind = "slope" if name in SLOPE_INTERVALS else "EF"
            lines.append(f"| {kind}: {SHORT[name]} | {inside}/{len(values)} | {values.min():.3f}-{values.max():.3f} |")
    lines += ["", "| log2 EF point estimate | cells with bias within 0.05 | range |", "|---|---|---|"]
    for name in ("ef_tool", "ef_trend", "ef_trend_frontier"):
        values = np.array([r["bias"] for r in rows if r["name"] == name], dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            lines.append(f"| {SHORT[name]} | {int((np.abs(values) <= GOAL_BIAS).sum())}/{len(values)} "
                         f"| {values.min():+.3f} .. {values.max():+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=1000, help="simulated experiments per cell")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cells", choices=("quick", "full", "variants"), default="full")
    parser.add_argument("--only", help="comma-separated indices of the grid's cells to run (the same numbers as in "
                                       "a whole run: each cell and chunk has its own random stream)")
    parser.add_argument("--draws", type=int, default=1000, help="the package bootstrap's draws (its default)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (each cell runs in chunks of 25)")
    parser.add_argument("--out", help="CSV of every experiment's numbers")
    parser.add_argument("--summarise", nargs="+", metavar="CSV", help="only print the table of --out CSVs")
    args = parser.parse_args(argv)
    if args.summarise:
        rows = summarise_files(args.summarise)
        print(markdown(rows))
        return rows
    started, began = time.perf_counter(), dt.datetime.now()
    cells = cell_grid(args.cells)
    chosen = range(len(cells)) if args.only is None else [int(i) for i in args.only.split(",")]
    jobs = [(cells[i], args.seed, i, c, min(CHUNK, args.experiments - CHUNK * c), args.draws)
            for i in chosen for c in range(math.ceil(args.experiments / CHUNK))]
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as pool:
            chunks = list(pool.map(run_chunk, jobs))
    else:
        chunks = [run_chunk(job) for job in jobs]
    records = [r for chunk in chunks for r in chunk]
    rows = [row for i in chosen for row in summarise(cells[i], [r for r in records if r["cell_index"] == i])]
    elapsed = time.perf_counter() - started
    command = "PYTHONPATH=src .venv/bin/python bench/calibration.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"{machine()}; {began:%Y-%m-%d %H:%M}; {elapsed:.0f} s wall in {args.jobs} process(es); "
          f"{args.experiments} experiments per cell (a coverage of 0.95 has a Monte Carlo standard error of "
          f"{math.sqrt(0.95 * 0.05 / args.experiments):.3f})\n\n    {command}\n")
    if args.out:
        pd.DataFrame([flat(r) for r in records]).to_csv(args.out, index=False)
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    main()
