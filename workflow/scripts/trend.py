"""Trend: OLS of log2(compute at threshold) on publication date, per threshold, window and set (frontier
and all models), with bootstrap intervals -> trend.json (the headline at its top level), trend.csv and
the paper's figure (a panel per threshold, each drawing the headline's set and window).

Snakemake rule `trend`; also a CLI:
    python workflow/scripts/trend.py --config config/config.yaml --thresholds results/thresholds.parquet \
        --out-dir results
"""

import argparse
import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.analysis import analyse_measured, headline_choice
from algoprogress.cli import config_or_fail, log_to
from algoprogress.config import publication_dates, sweep_plan
from algoprogress.fileio import write_csv, write_json
from algoprogress.plots import efficiency_figure
from algoprogress.thresholds import with_resolved_values


def run(thresholds_file, published, thresholds_cfg, analysis_cfg, plan, json_out, csv_out, figure_out):
    table = pd.read_parquet(thresholds_file)
    thresholds_cfg = with_resolved_values(thresholds_cfg, table)
    result, rows, points_by = analyse_measured(table, published, thresholds_cfg, analysis_cfg, plan)
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    write_json(json_out, result)
    write_csv(csv_out, rows)
    headline = headline_choice(analysis_cfg, [t["name"] for t in thresholds_cfg])
    panels = [{"points": points_by[t["name"]], "fits": result["thresholds"][t["name"]]["fits"], "headline": headline,
               "title": f"Training compute to reach {t['name']} ({t['metric']} >= {t['value']:.4g})"
                        + (" - the headline" if t["name"] == headline["threshold"] else "")}
              for t in thresholds_cfg]
    efficiency_figure(panels, figure_out, analysis_cfg["confidence_level"], analysis_cfg["robust_errors"])
    print(rows.to_string(index=False), file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="workflow config YAML (models' dates, analysis settings)")
    parser.add_argument("--thresholds", required=True, help="Parquet written by thresholds.py")
    parser.add_argument("--out-dir", required=True, help="folder for trend.json, trend.csv, efficiency.png")
    args = parser.parse_args(argv)
    log_to(None)
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    run(args.thresholds, publication_dates(config), config["thresholds"], config["analysis"], sweep_plan(config),
        out / "trend.json", out / "trend.csv", out / "efficiency.png")


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.input.thresholds, snakemake.params.published, snakemake.params.thresholds,
            snakemake.params.analysis, snakemake.params.plan, snakemake.output.json, snakemake.output.csv,
            snakemake.output.figure)
    else:
        main()
