"""How everything that runs the workflow finds the package under src/: importing this module puts src/ first on
sys.path. The package is not installed anywhere (so no installed copy can stand before this checkout's src/).

Every stage script imports it first: its folder is on sys.path both when Python runs it (`python script.py`) and
when Snakemake's `script:` directive runs it, in the project's venv or in a rule's conda environment alike.
rules/common.smk imports it too, to check the config while Snakemake parses the workflow.
"""

import pathlib
import sys

SRC = str(pathlib.Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
