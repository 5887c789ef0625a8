"""FLOP counts: one table of every model's count at each resolution (both counters, their ratio, the
operators fvcore left uncounted, and where the two disagree by more than 10%), for the report.

Snakemake rule `flop_table`; also a CLI:
    python workflow/scripts/flop_table.py --out flop_counts.csv results/flops/*/*px.json
"""

import pathlib
import sys

import algoprogress_path  # noqa: F401  (makes src/ importable)

from algoprogress.cli import entry, fail
from algoprogress.fileio import read_json, write_csv
from algoprogress.flops import count_table


def run(count_files, out):
    by_model = {}
    for path in count_files:
        try:
            by_model.setdefault(pathlib.Path(path).parent.name, []).append(read_json(path))
        except (OSError, ValueError) as error:
            fail(f"{path}: not a FLOP count ({error}); delete it and rerun: the workflow recounts it")
    table = count_table(by_model)
    write_csv(out, table)
    for row in table.loc[table["disagreement"] != ""].itertuples():
        print(f"WARNING: {row.model} at {row.resolution} px: {row.disagreement}", file=sys.stderr)
    print(table.drop(columns=["uncounted_operators", "disagreement"]).to_string(index=False), file=sys.stderr)


def arguments(parser):
    parser.add_argument("counts", nargs="+", help="count_flops JSON files, results/flops/<model>/<resolution>px.json")
    parser.add_argument("--out", required=True, help="CSV file to write")


def from_args(args):
    return dict(count_files=args.counts, out=args.out)


def from_snakemake(job):
    return dict(count_files=list(job.input.counts), out=job.output.csv)


if __name__ == "__main__":
    entry(run, __doc__, arguments, from_args, from_snakemake, globals().get("snakemake"))
