"""Random resized crops and horizontal flips that the training seed decides (the ImageNet recipes' augmentations).

A fix for FFCV's unseeded random crops and flips (libffcv/ffcv#392, #300), written against FFCV 1.0.2. FFCV's
``RandomResizedCropRGBImageDecoder`` and ``RandomHorizontalFlip`` draw from numba's random generator, which FFCV
never seeds and which numba keeps per thread: the same seed gave other crops and flips in every process, so a rerun
or a resumed job did not train on the images an uninterrupted one did. These two draw the same distributions (the
crop through FFCV's own ``get_random_crop``) from numbers that only the seed and the batch decide: each sample's come
from (seed, the batch's sample indices in order, the sample's index), hashed with splitmix64. The batch's indices are
FFCV's random order, a function of (seed, epoch), so each epoch crops and flips anew (unless a process's batches hold
one image each: its key is then the same every epoch), the same in every run of that seed, on any number of loader
threads, and after a resume. The seed is a constant of the compiled stages: each seed compiles its own.

The crop decoder's loop is a copy of FFCV's ``ResizedCropRGBImageDecoder.generate_code``: ``FFCV_SOURCES`` holds a
digest of the source of every FFCV function these classes copy or call, as FFCV 1.0.2 has it, and a test
(tests/test_data.py) compares it with the installed FFCV, so that an upgrade that changes any of them is seen.
"""

from __future__ import annotations

import numba
import numpy as np
from ffcv.fields.rgb_image import IMAGE_MODES, RandomResizedCropRGBImageDecoder, imdecode, resize_crop
from ffcv.pipeline.compiler import Compiler
from ffcv.transforms import RandomHorizontalFlip

WRITTEN_AGAINST_FFCV = "1.0.2"
# "module:qualified name" -> SHA-256 of its source (inspect.getsource)
FFCV_SOURCES = {
    "ffcv.fields.rgb_image:ResizedCropRGBImageDecoder.generate_code":
        "7fd26b6fd29e4ab5b9be07cf1fc9997312120b87c3427337609f0c7224290a89",
    "ffcv.fields.rgb_image:RandomResizedCropRGBImageDecoder":
        "ddfb66a25fe866cfab39b7b899466c5f1bdd4126dccc0b410092dc7138133e2b",
    "ffcv.fields.rgb_image:get_random_crop": "d79d75c3efeb1f93e0bcfce9b3fc285216a894734c30ab734e2d8690cca9647e",
    "ffcv.libffcv:imdecode": "075c5151b42b362d07bb2ebc882d1756738241399ab3158af339b8cb20ec01b0",
    "ffcv.libffcv:resize_crop": "2892d234b0c75103286fcd66087f037d43f2680d79353cb378f7b927ff5c9efc",
    "ffcv.transforms.flip:RandomHorizontalFlip": "2339f23c43998543ec2391f8e9beb6da26892591e2d62af5ae168b8f7cbf4cff",
}

# one stream of numbers per augmentation, so that a sample's crop and flip are not drawn from one number
CROP_STREAM, FLIP_STREAM = 1, 2


@numba.njit(inline="always")
def _mix(value):
    """splitmix64's finaliser: a 64-bit integer to a well-mixed one (unsigned arithmetic throughout)."""
    value = value + np.uint64(0x9E3779B97F4A7C15)
    value = (value ^ (value >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    value = (value ^ (value >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return value ^ (value >> np.uint64(31))


@numba.njit(inline="always")
def _batch_key(seed, stream, indices):
    """A number for (seed, stream, the batch's sample indices in order)."""
    key = _mix(_mix(np.uint64(seed)) ^ np.uint64(stream))
    for index in indices:
        key = _mix(key ^ np.uint64(index))
    return key


class SeededRandomResizedCrop(RandomResizedCropRGBImageDecoder):
    """FFCV's random resized crop decoder, its crops drawn by numba's generator seeded for each sample from
    (seed, batch, sample) just before FFCV's ``get_random_crop`` draws them (numba's generator is per thread, and a
    sample is decoded on one thread). Its decoding is FFCV's ``ResizedCropRGBImageDecoder.generate_code`` (1.0.2)."""

    def __init__(self, output_size, seed: int, scale=(0.08, 1.0), ratio=(0.75, 4 / 3)):
        super().__init__(output_size, scale, ratio)
        self.seed = seed

    def generate_code(self):
        jpg = IMAGE_MODES["jpg"]
        mem_read = self.memory_read
        my_range = Compiler.get_iterator()
        imdecode_c = Compiler.compile(imdecode)
        resize_crop_c = Compiler.compile(resize_crop)
        get_crop_c = Compiler.compile(self.get_crop_generator)
        scale, ratio = np.array(self.scale), np.array(self.ratio)
        seed, stream = self.seed, CROP_STREAM

        def decode(batch_indices, my_storage, metadata, storage_state):
            destination, temp_storage = my_storage
            key = _batch_key(seed, stream, batch_indices)
            for dst_ix in my_range(len(batch_indices)):
                source_ix = batch_indices[dst_ix]
                field = metadata[source_ix]
                image_data = mem_read(field["data_ptr"], storage_state)
                height = np.uint32(field["height"])
                width = np.uint32(field["width"])
                if field["mode"] == jpg:
                    temp_buffer = temp_storage[dst_ix]
                    imdecode_c(image_data, temp_buffer, height, width, height, width, 0, 0, 1, 1, False, False)
                    selected_size = 3 * height * width
                    temp_buffer = temp_buffer.reshape(-1)[:selected_size]
                    temp_buffer = temp_buffer.reshape(height, width, 3)
                else:
                    temp_buffer = image_data.reshape(height, width, 3)
                np.random.seed(np.uint32(_mix(key ^ np.uint64(source_ix)) >> np.uint64(32)))
                i, j, h, w = get_crop_c(height, width, scale, ratio)
                resize_crop_c(temp_buffer, i, i + h, j, j + w, destination[dst_ix])
            return destination[: len(batch_indices)]

        decode.is_parallel = True
        return decode


class SeededRandomHorizontalFlip(RandomHorizontalFlip):
    """FFCV's random horizontal flip, each sample flipped when a number drawn from (seed, batch, sample) falls
    under ``flip_prob``."""

    def __init__(self, seed: int, flip_prob: float = 0.5):
        super().__init__(flip_prob)
        self.seed = seed

    def generate_code(self):
        my_range = Compiler.get_iterator()
        flip_prob, seed, stream = self.flip_prob, self.seed, FLIP_STREAM

        def flip(images, dst, indices):
            key = _batch_key(seed, stream, indices)
            for i in my_range(images.shape[0]):
                uniform = (_mix(key ^ np.uint64(indices[i])) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                if uniform < flip_prob:
                    dst[i] = images[i, :, ::-1]
                else:
                    dst[i] = images[i]
            return dst

        flip.is_parallel = True
        flip.with_indices = True
        return flip
