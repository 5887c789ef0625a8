"""The headline in a few lines, printed at the end of every successful run (the Snakefile's ``onsuccess``) from
``results/trend.json``: the threshold, the doubling time with its intervals, the efficiency factor, the models of
the fit, the notes. Standard library only: it runs in Snakemake's own process (envs/snakemake.yaml)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from algoprogress.fileio import read_json

TREND = Path("results", "trend.json")


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _months(fit: dict) -> str:
    """A fit's doubling-time interval in months; an upper end that is not finite (the slope's interval reaches zero
    or beyond: no doubling ruled out) is "unbounded"."""
    low, high = fit.get("doubling_time_months_low"), fit.get("doubling_time_months_high")
    if low is None and high is None:
        return "n/a"
    return f"{_number(low)} to {'unbounded' if fit.get('doubling_time_unbounded') or high is None else _number(high)}"


def _factor(value) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def summary(trend: dict) -> list[str]:
    """The headline of a trend.json as lines of text."""
    head = trend["headline"]
    threshold = trend["thresholds"][head["threshold"]]
    definition = threshold["definition"]
    level = definition.get("resolved_value", definition["value"])
    defined = " (the reference's own level)" if definition["value"] == "reference" else ""
    models = threshold["fits"][head["window"]][head["set"]].get("models", [])
    interval, bootstrap = trend.get("interval", {}), trend.get("bootstrap", {})
    percent = f"{trend['confidence_level']:.0%}"
    lines = [
        f"Headline: {head['threshold']}: {definition['metric']} >= {_number(level, 4)}{defined}; "
        f"{head['set']} fit over {trend['n']} models, {head['window']} window",
        f"  doubling time of algorithmic efficiency: {_number(trend['doubling_time_months'])} months; {percent} "
        f"intervals: published {_months(interval)}, OLS {_months(trend)}, bootstrap {_months(bootstrap)}",
        f"  efficiency factor {trend['reference_model']} -> {trend['best_model']}: "
        f"{_factor(trend['efficiency_factor'])} in {_number(trend['years_reference_to_best'], 2)} years (the trend's "
        f"{_factor(interval.get('efficiency_factor_trend'))}, {percent} interval "
        f"{_number(interval.get('efficiency_factor_low'))} to {_number(interval.get('efficiency_factor_high'))}); "
        f"Moore's law over the same span: {_factor(trend['moore_factor_same_span'])}",
        f"  models of the fit: {', '.join(models)}",
    ]
    return lines + [f"  note: {note}" for note in trend.get("notes", [])]


def print_headline(path: str | Path = TREND) -> None:
    """Print the headline of ``path`` (nothing where there is none: a run of some targets only). A trend.json it
    cannot summarise (of another version, damaged) gets one line saying so: the run itself succeeded."""
    if not os.path.isfile(path):
        return
    written = dt.datetime.fromtimestamp(os.path.getmtime(path)).strftime("%Y-%m-%d %H:%M")
    try:
        lines = summary(read_json(path))
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"warning: {path}: no headline printed ({type(error).__name__}: {error})", flush=True)
        return
    print("\n".join([*lines, f"  (from {path}, written {written}; every threshold, fit and interval: results/trend.csv,"
                               " the report: make report)"]), flush=True)
