import numpy as np
import pytest
from PIL import Image

from algoprogress.config import validate_config
from algoprogress.data import DataError, image_folder, prepare_dataset, stratified_split
from algoprogress.fileio import read_json, sha256_of_file

MODELS = [{"name": "resnet18", "published": "2015-12-10"}, {"name": "mobilenet_v2", "published": "2018-01-13"}]


def test_stratified_split_is_deterministic_disjoint_and_balanced():
    labels = np.repeat(np.arange(4), [10, 20, 30, 5])
    train, val = stratified_split(labels, 0.2, seed=3)
    again_train, again_val = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    assert not set(train) & set(val) and len(train) + len(val) == len(labels)
    assert list(np.bincount(labels[val])) == [2, 4, 6, 1]
    other_train, _ = stratified_split(labels, 0.2, seed=4)
    assert not np.array_equal(train, other_train)


def test_stratified_split_caps_each_class():
    labels = np.repeat(np.arange(3), 50)
    train, val = stratified_split(labels, 0.5, seed=0, max_per_class=10)
    assert list(np.bincount(labels[np.concatenate([train, val])])) == [10, 10, 10]


def test_mnist_betons_load_with_ffcv(mnist_betons):
    import torch

    from algoprogress.loaders import train_loader, val_loader

    folder, manifest = mnist_betons
    assert manifest["train"]["images"] == 200 and manifest["val"]["images"] == 100
    assert set(manifest["val"]["images_per_class"].values()) == {10}
    assert manifest["train"]["sha256"] == sha256_of_file(folder / "train.beton")
    assert read_json(folder / "manifest.json") == manifest

    cpu = torch.device("cpu")
    batches = list(val_loader(folder / "val.beton", 64, 64, 1, cpu))
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    assert images.shape == (100, 3, 64, 64) and images.dtype == torch.float32
    assert sorted(labels.bincount().tolist()) == [10] * 10
    assert -2.2 < float(images.min()) < -1.5 and 2.0 < float(images.max()) < 2.7  # normalised digits

    first = [b[1].tolist() for b in train_loader(folder / "train.beton", 50, 64, 1, seed=5, device=cpu)]
    second = [b[1].tolist() for b in train_loader(folder / "train.beton", 50, 64, 1, seed=5, device=cpu)]
    assert first == second and len(first) == 4  # seeded order, full batches only


def write_image_folder(root, broken=False):
    """Real image files of several kinds: RGB JPEG, greyscale JPEG, CMYK JPEG, PNG saved as .jpg."""
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            kind = i % 4
            if kind == 0:
                image.save(root / name / f"{i}.jpg", quality=90)
            elif kind == 1:
                image.convert("L").save(root / name / f"{i}.jpg")
            elif kind == 2:
                image.convert("CMYK").save(root / name / f"{i}.jpg")
            else:
                image.save(root / name / f"{i}.jpg", format="PNG")  # PNG content, JPEG name
    if broken:
        (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_image_folder_of_mixed_real_files_is_written(tmp_path):
    root = write_image_folder(tmp_path / "images")
    config = validate_config({"dataset": {"source": "imagefolder", "train_path": str(root), "val_fraction": 0.5,
                                          "resolution": 32, "write_mode": "jpg"}, "models": MODELS})
    manifest = prepare_dataset(config["dataset"], tmp_path / "t.beton", tmp_path / "v.beton", tmp_path / "m.json", 2)
    assert manifest["classes"] == ["cat", "dog"]
    assert manifest["train"]["images"] == 6 and manifest["val"]["images"] == 6


def test_undecodable_file_is_named_and_nothing_is_written(tmp_path):
    root = write_image_folder(tmp_path / "images", broken=True)
    config = validate_config({"dataset": {"source": "imagefolder", "train_path": str(root), "resolution": 32},
                              "models": MODELS})
    with pytest.raises(DataError, match="broken.jpg"):
        prepare_dataset(config["dataset"], tmp_path / "t.beton", tmp_path / "v.beton", tmp_path / "m.json", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_empty_class_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "images")
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        image_folder(root)
