"""Makes the package under src/ importable for the stage scripts.

Both ways of running a script put this folder on sys.path: Python does for `python script.py`, and
Snakemake's `script:` directive does for local scripts. Importing this module then adds src/.
"""

import pathlib
import sys

SRC = str(pathlib.Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
