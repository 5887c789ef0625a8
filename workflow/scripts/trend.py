"""Trend: OLS of log2(compute at threshold) on publication date, per threshold, window and set (frontier
and all models), with bootstrap intervals -> trend.json (the headline at its top level), trend.csv and
the paper's figure (a panel per threshold, each drawing the headline's set and window).

Snakemake rule `trend`; also a CLI:
    python workflow/scripts/trend.py --config config/config.yaml --thresholds results/thresholds.parquet \
        --out-dir results
"""

import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)
import pandas as pd

from algoprogress.analysis import analyse_measured
from algoprogress.cli import config_or_fail, entry
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
    headline = result["headline"]
    panels = [{"points": points_by[t["name"]], "fits": result["thresholds"][t["name"]]["fits"], "headline": headline,
               "title": f"Training compute to reach {t['name']} ({t['metric']} >= {t['value']:.4g})"
                        + (" - the headline" if t["name"] == headline["threshold"] else "")}
              for t in thresholds_cfg]
    efficiency_figure(panels, figure_out, analysis_cfg["confidence_level"], analysis_cfg["robust_errors"])
    print(rows.to_string(index=False), file=sys.stderr)


def arguments(parser):
    parser.add_argument("--config", required=True, help="workflow config YAML (models' dates, analysis settings)")
    parser.add_argument("--thresholds", required=True, help="Parquet written by thresholds.py")
    parser.add_argument("--out-dir", required=True, help="folder for trend.json, trend.csv, efficiency.png")


def from_args(args):
    config = config_or_fail(args.config)
    out = pathlib.Path(args.out_dir)
    return dict(thresholds_file=args.thresholds, published=publication_dates(config),
                thresholds_cfg=config["thresholds"], analysis_cfg=config["analysis"], plan=sweep_plan(config),
                json_out=out / "trend.json", csv_out=out / "trend.csv", figure_out=out / "efficiency.png")


def from_snakemake(job):
    return dict(thresholds_file=job.input.thresholds, published=job.params.published,
                thresholds_cfg=job.params.thresholds, analysis_cfg=job.params.analysis, plan=job.params.plan,
                json_out=job.output.json, csv_out=job.output.csv, figure_out=job.output.figure)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
