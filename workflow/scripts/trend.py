"""Trend: OLS of log2(compute at threshold) on publication date, per threshold, for all models and
for the efficiency frontier -> trend.json, trend.csv and the paper's figure (a panel per threshold).

Snakemake rule `trend`; also a CLI:
    python workflow/scripts/trend.py --config config/config.yaml --thresholds results/thresholds.parquet \
        --out-dir results
"""

import argparse
import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.analysis import analyse_measured
from algoprogress.cli import config_or_fail, log_to
from algoprogress.fileio import write_csv, write_json
from algoprogress.plots import efficiency_figure


def run(thresholds_file, published, thresholds_cfg, analysis_cfg, json_out, csv_out, figure_out):
    thresholds = pd.read_parquet(thresholds_file)
    result, table, points_by = analyse_measured(thresholds, published, thresholds_cfg, analysis_cfg)
    write_json(json_out, result)
    write_csv(csv_out, table)
    panels = [{"points": points_by[t["name"]], "fits": result["thresholds"][t["name"]]["fits"],
               "title": f"Training compute to reach {t['name']} ({t['metric']} >= {t['value']:g})"}
              for t in thresholds_cfg]
    efficiency_figure(panels, figure_out, analysis_cfg["confidence_level"], analysis_cfg["robust_errors"])
    print(table.to_string(index=False), file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="workflow config YAML (models' dates, analysis settings)")
    parser.add_argument("--thresholds", required=True, help="Parquet written by thresholds.py")
    parser.add_argument("--out-dir", required=True, help="folder for trend.json, trend.csv, efficiency.png")
    args = parser.parse_args(argv)
    log_to(None)
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    published = {m["name"]: m["published"] for m in config["models"]}
    run(args.thresholds, published, config["thresholds"], config["analysis"], out / "trend.json",
        out / "trend.csv", out / "efficiency.png")


if __name__ == "__main__":
    if "snakemake" in globals():
        log_to(snakemake.log[0])
        run(snakemake.input.thresholds, snakemake.params.published, snakemake.params.thresholds,
            snakemake.params.analysis, snakemake.output.json, snakemake.output.csv, snakemake.output.figure)
    else:
        main()
