"""Makes the package under src/ importable for the stage scripts.

Both ways of running a script put this folder on sys.path: Python does for `python script.py`, and
Snakemake's `script:` directive does for local scripts. Importing this module then adds src/.
"""

import pathlib
import sys

SRC = str(pathlib.Path(__file__).resolve().parents[2] / "src")
# first, even when already listed: Snakemake's `script:` hands the job the parent's sys.path, where an
# installed algoprogress (another checkout's, say) may stand before this checkout's src/
if SRC in sys.path:
    sys.path.remove(SRC)
sys.path.insert(0, SRC)
