"""The learning-curve file: one Parquet file per (model, seed), one row per evaluation.

This module is the one place the curve's columns are named. The file's key-value metadata
(``algoprogress`` key, JSON) records how the curve was made: fvcore's raw multiply-add count, the
FLOP convention, the resolved training settings, package versions and the device.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from algoprogress.fileio import atomic_path

METADATA_KEY = b"algoprogress"


def _column(dtype: str, meaning: str, **default):
    return field(metadata={"dtype": dtype, "meaning": meaning}, **default)


@dataclass
class CurveRow:
    """One row of the curve, one evaluation: the curve's columns, in order, each with its pandas dtype and
    meaning. Training builds its rows as CurveRow, so a missing or misnamed column fails at once."""

    model: str = _column("string", "model name (config `models[].name`)")
    arch: str = _column("string", "torchvision constructor")
    seed: int = _column("int64", "training seed")
    trial: str = _column("string", "name of the trial (one model's run with its own settings); `base` by default")
    step: int = _column("int64", "optimisation steps taken before this evaluation")
    epoch: float = _column("float64", "passes over the training split (step / steps per epoch)")
    images_seen: int = _column("int64", "training images processed (step x batch size)")
    recipe: str = _column("string", "name of the training recipe (config `recipes`), or `custom`")
    resolution: int = _column("int64", "training resolution of the last step before the evaluation (px)")
    train_flops: float = _column("float64", "cumulative training FLOP, by the convention in algoprogress.flops")
    train_pfs_days: float = _column("float64", "train_flops in petaflop/s-days (1e15 x 86400 FLOP)")
    train_flops_measured: float = _column("float64",
                                          "cumulative training FLOP measured by torch's FlopCounterMode (cross-check)")
    train_pfs_days_measured: float = _column("float64", "train_flops_measured in petaflop/s-days")
    eval_flops: float = _column("float64",
                                "cumulative evaluation FLOP (2 x forward multiply-adds x images; not training compute)")
    val_top1: float = _column("float64", "top-1 accuracy on the validation split, fraction")
    val_top5: float = _column("float64", "top-5 accuracy on the validation split, fraction")
    val_loss: float = _column("float64", "mean cross-entropy on the validation split")
    train_loss: float = _column("float64", "mean training loss since the previous evaluation")
    lr: float = _column("float64", "learning rate of the last step before the evaluation")
    wall_seconds: float = _column("float64", "seconds since training started, evaluations included")
    eval_seconds: float = _column("float64", "cumulative seconds spent evaluating")
    # known when training ends: False until then
    diverged: bool = _column(
        "bool", "training stopped on a non-finite loss after this curve's last row (every row says so)", default=False)


# column -> (pandas dtype, meaning)
CURVE_COLUMNS = {column.name: (column.metadata["dtype"], column.metadata["meaning"]) for column in fields(CurveRow)}


def empty_curve() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, (dtype, _) in CURVE_COLUMNS.items()})


def as_curve(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Rows in the curve's column order and types; a missing or unknown column is an error."""
    frame = pd.DataFrame(rows)
    missing = set(CURVE_COLUMNS) - set(frame.columns)
    extra = set(frame.columns) - set(CURVE_COLUMNS)
    if missing or extra:
        raise ValueError(f"curve columns: missing {sorted(missing)}, unexpected {sorted(extra)}")
    if frame.empty:
        return empty_curve()
    return frame[list(CURVE_COLUMNS)].astype({name: dtype for name, (dtype, _) in CURVE_COLUMNS.items()})


class CurveError(ValueError):
    """A curve file that cannot be trusted (unreadable, or its rows differ from their saved hash)."""


def rows_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a curve's rows (every column, in order): saved in the file's metadata, checked on read."""
    frame = as_curve(frame).copy()
    # one NaN: Parquet stores a NaN as null and reads it back as numpy's NaN, while a computed NaN (the
    # loss of a diverging model, on CPU or GPU) may carry another bit pattern, which pandas hashes apart
    for column in frame.columns[frame.dtypes.map(lambda dtype: dtype.kind == "f")]:
        frame[column] = frame[column].where(frame[column].notna(), np.nan)
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(frame.columns).encode()).hexdigest()


def write_curve(path: str | Path, rows: list[dict] | pd.DataFrame, metadata: dict) -> None:
    """Write atomically: the file at ``path`` is either the complete new curve or untouched."""
    frame = as_curve(rows)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {**metadata, "rows_sha256": rows_digest(frame)}
    merged = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata, default=str).encode()}
    with atomic_path(path) as temporary:
        pq.write_table(table.replace_schema_metadata(merged), temporary)


def read_curve(path: str | Path, verify: bool = True) -> pd.DataFrame:
    """The curve at ``path``; with ``verify``, a file whose rows differ from their hash raises CurveError."""
    try:
        table = pq.read_table(path)
        frame = table.to_pandas()
    except (OSError, pa.ArrowException) as error:
        raise CurveError(f"{path}: unreadable curve ({str(error).splitlines()[0][:200]})") from None
    if verify:
        metadata = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
        saved = metadata.get("rows_sha256")
        if saved is None or rows_digest(frame) != saved:
            raise CurveError(f"{path}: corrupt curve (its rows differ from the hash saved with them)")
    return frame


def corrupt_curves(paths) -> dict[str, str]:
    """{path: one line saying what is wrong} for each existing curve file among ``paths`` that cannot
    be trusted (unreadable, or its rows differ from their saved hash). Reads only."""
    problems = {}
    for path in paths:
        if Path(path).exists():
            try:
                read_curve(path)
            except CurveError as error:
                problems[str(path)] = str(error)
    return problems


def read_curve_metadata(path: str | Path) -> dict:
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else {}


def read_curves(paths) -> pd.DataFrame:
    frames = [read_curve(path) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else empty_curve()
