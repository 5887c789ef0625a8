"""Trend: OLS of log2(compute at threshold) on publication date -> doubling time JSON and figure.

Snakemake rule `trend`; also a CLI:
    python workflow/scripts/trend.py --config config/config.yaml --thresholds results/thresholds.csv \
        --json trend.json --figure efficiency.png
"""

import argparse
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

import pandas as pd

from algoprogress.cli import fail, log_to
from algoprogress.config import ConfigError, load_config
from algoprogress.fileio import write_json
from algoprogress.plots import efficiency_figure
from algoprogress.thresholds import per_model
from algoprogress.trend import efficiency_factors, fit_trend


def run(thresholds_csv, published, analysis, threshold, json_out, figure_out):
    models = per_model(pd.read_csv(thresholds_csv))
    points = pd.DataFrame({
        "model": models["model"],
        "published": models["model"].map(published),
        "compute": models["train_flops_median"].where(models["reached"]),
        "lower_bound": models["train_flops_lower_bound"],
    })
    reference = analysis["reference_model"]
    trend = fit_trend(points, reference, analysis["confidence_level"])
    factors = efficiency_factors(points, reference)
    trend["threshold"] = threshold
    trend["per_model"] = [
        {"model": row.model, "published": row.published, "reached": bool(row.reached),
         "train_flops_median": row.train_flops_median, "train_flops_min": row.train_flops_min,
         "train_flops_max": row.train_flops_max, "train_flops_lower_bound": row.train_flops_lower_bound,
         "efficiency_factor_over_reference": factors.get(row.model)}
        for row in models.assign(published=points["published"]).itertuples()
    ]
    write_json(json_out, _finite_or_null(trend))
    label = f"{threshold['name']} ({threshold['metric']} >= {threshold['value']:g})"
    efficiency_figure(points, trend, label, figure_out)
    print(f"doubling time: {trend.get('doubling_time_months')} months (n={trend['n']})", file=sys.stderr)


def _finite_or_null(value):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _finite_or_null(value.item())
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="workflow config YAML (models' dates, analysis settings)")
    parser.add_argument("--thresholds", required=True, help="CSV written by thresholds.py")
    parser.add_argument("--json", required=True, help="trend JSON to write")
    parser.add_argument("--figure", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        fail(str(error))
    published = {m["name"]: m["published"] for m in config["models"]}
    run(args.thresholds, published, config["analysis"], config["threshold"], args.json, args.figure)


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.input.thresholds, snakemake.params.published, snakemake.params.analysis,
            snakemake.params.threshold, snakemake.output.json, snakemake.output.figure)
    else:
        main()
