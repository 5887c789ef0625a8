"""Published results: the same analysis as for measured curves, on a published compute-to-threshold
table alone (by default Hernandez & Brown 2020's).

Snakemake rule `published_trend`; also a CLI:
    python workflow/scripts/published_trend.py --table resources/published/hernandez_brown_2020.csv --out-dir out
"""

import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.analysis import analyse_published, read_published_table
from algoprogress.cli import entry, fail
from algoprogress.config import analysis_settings
from algoprogress.fileio import sha256_of_file, write_csv, write_json
from algoprogress.plots import efficiency_figure


def run(table_file, analysis_cfg, json_out, csv_out, figure_out):
    try:
        table = read_published_table(table_file)
    except ValueError as error:
        fail(str(error))
    result, rows, points_by = analyse_published(table, analysis_cfg)
    # the table by name and content, not by this machine's path to it
    result["table"] = pathlib.Path(table_file).name
    result["table_sha256"] = sha256_of_file(table_file)
    write_json(json_out, result)
    write_csv(csv_out, rows)
    headline = result["headline"]
    panels = [{"points": points, "fits": result["thresholds"][name]["fits"], "headline": headline,
               "title": f"Published: training compute to reach {name} ({pathlib.Path(table_file).name})"}
              for name, points in points_by.items()]
    efficiency_figure(panels, figure_out, analysis_cfg["confidence_level"], analysis_cfg["robust_errors"])
    print(rows.to_string(index=False), file=sys.stderr)


def arguments(parser):
    parser.add_argument("--table", required=True, help="published CSV: threshold, model, published, compute_pfs_days")
    parser.add_argument("--out-dir", required=True, help="folder for trend.json, trend.csv, efficiency.png")
    parser.add_argument("--confidence-level", type=float, help="the interval's level (the config's default)")
    parser.add_argument("--robust-errors", action="store_true", help="HC3 standard errors")
    parser.add_argument("--bootstrap-draws", type=int, help="bootstrap draws (0: none; the config's default)")


def without_none(settings: dict) -> dict:
    """The options given on the command line (the others take the config schema's defaults)."""
    return {key: without_none(value) if isinstance(value, dict) else value
            for key, value in settings.items() if value is not None}


def from_args(args):
    out = pathlib.Path(args.out_dir)
    given = {"confidence_level": args.confidence_level, "robust_errors": args.robust_errors,
             "bootstrap": {"draws": args.bootstrap_draws}}
    analysis = analysis_settings(without_none(given))
    return dict(table_file=args.table, analysis_cfg=analysis, json_out=out / "trend.json", csv_out=out / "trend.csv",
                figure_out=out / "efficiency.png")


def from_snakemake(job):
    return dict(table_file=job.input.table, analysis_cfg=job.params.analysis, json_out=job.output.json,
                csv_out=job.output.csv, figure_out=job.output.figure)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
