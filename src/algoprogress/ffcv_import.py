"""FFCV's import and loaders, without compiling the same numba functions in every process.

Importing FFCV fills a numba typed dictionary (``ffcv.fields.rgb_image.IMAGE_MODES``) and its decoders read
it, which compiles numba's typed-dictionary functions: about 2.5 s of CPU in every process that reads or
writes a ``.beton`` (each training job, prepare_data, repair), every time, for the same few machine-code
functions. ``cache_typed_dicts()`` turns on numba's own on-disk cache for them (what ``@njit(cache=True)``
does; numba keys an entry on the function's bytecode, its types and the CPU), so only the first process
compiles them. Call it before the first ``ffcv`` import of a process.

Each FFCV ``Loader`` then compiles its pipeline's stages (reading a sample, decoding labels, cropping,
flipping, normalising): about 1.2 s of CPU for a training job's two loaders, again the same functions every
time. ``cache_loader_functions()`` caches those of ``LOADER_FUNCTIONS`` the same way (numba's key then also
holds the values the function's closure captured: a normalisation table, a flip probability). The JPEG
decoders are left to compile as before: they call FFCV's C library through ctypes, which numba cannot cache.
Neither changes a result: the same functions, compiled once.

The cache lies in one folder per kind of CPU (``cache_folder()``): under ``NUMBA_CACHE_DIR`` where it is set,
else under the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``algoprogress/numba``).
Numba's cache index is not safe for processes of different CPUs that write it at the same moment (as on a
cluster whose nodes share a home folder or an environment): one folder per CPU kind keeps them apart.
Where the cache cannot be read or written (no home folder, a read-only or full disk), the process compiles
as it would without it; where numba or FFCV lack these functions (other versions), nothing changes.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

# the typed-dictionary operations FFCV's import and decoders use (numba/typed/typeddict.py)
TYPED_DICT_FUNCTIONS = ("_make_dict", "_length", "_setitem", "_getitem", "_contains", "_get")


def cache_folder() -> Path:
    """This CPU kind's folder of compiled functions (its LLVM name and a digest of its features)."""
    import llvmlite.binding as llvm

    base = os.environ.get("NUMBA_CACHE_DIR") or (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "algoprogress" / "numba")
    features = hashlib.sha256(llvm.get_host_cpu_features().flatten().encode()).hexdigest()[:12]
    return Path(base) / f"{llvm.get_host_cpu_name()}-{features}"


def _or_compile(operation, *args):
    """A cache read or write that fails on the file system (numba raises there) is a cache miss, not an error."""
    try:
        return operation(*args)
    except OSError:
        return None


def _cache_on_disk(dispatcher) -> bool:
    """Turn on numba's on-disk cache for one dispatcher, in this CPU kind's folder; False where it cannot be."""
    from numba.core import config

    # numba reads both settings once, as each function's cache is set up: this folder and no other (numba would
    # fall back to a folder shared by every CPU kind, beside its sources)
    defaults = config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES
    try:
        config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES = str(cache_folder()), "UserProvidedCacheLocator"
        dispatcher.enable_caching()
    except (OSError, RuntimeError):  # no usable folder (no home folder, a read-only disk)
        return False
    finally:
        config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES = defaults
    cache = dispatcher._cache
    cache.load_overload = functools.partial(_or_compile, cache.load_overload)
    cache.save_overload = functools.partial(_or_compile, cache.save_overload)
    return True


@functools.cache
def cache_typed_dicts() -> bool:
    """True when numba caches its typed-dictionary functions on disk from now on in this process."""
    try:
        from numba.typed import typeddict

        dispatchers = [getattr(typeddict, name) for name in TYPED_DICT_FUNCTIONS]
    except (AttributeError, ImportError):  # another numba
        return False
    return all([_cache_on_disk(dispatcher) for dispatcher in dispatchers])


# The functions FFCV's loaders compile for this project's pipelines (ffcv 1.0.2; loaders.py), each read and found
# to depend on its arguments, numpy and the plain values its closure captures only, as (module, qualified name).
LOADER_FUNCTIONS = frozenset({
    ("ffcv.memory_managers.os_cache", "OSCacheManager.compile_reader.<locals>.read"),
    ("ffcv.fields.basics", "BasicDecoder.generate_code.<locals>.decoder"),
    ("ffcv.fields.rgb_image", "get_center_crop"),
    ("ffcv.fields.rgb_image", "get_random_crop"),
    ("ffcv.transforms.flip", "RandomHorizontalFlip.generate_code.<locals>.flip"),
    ("ffcv.transforms.normalize", "NormalizeImage.generate_code_cpu.<locals>.normalize_convert"),
})


def _plain(value) -> bool:
    """A closure value numba's cache key can hold: a number, a small numeric array, or the loop FFCV chose."""
    import numba
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" and value.size <= 4096
    return isinstance(value, (bool, int, float, np.number)) or value is range or value is numba.prange


def _cacheable(function) -> bool:
    return ((function.__module__, function.__qualname__) in LOADER_FUNCTIONS
            and all(_plain(cell.cell_contents) for cell in function.__closure__ or ()))


@functools.cache
def cache_loader_functions() -> bool:
    """True when the ``LOADER_FUNCTIONS`` that FFCV's loaders compile from now on in this process are cached on
    disk (and so are the typed-dictionary functions: this imports FFCV). FFCV compiles every stage through
    ``ffcv.pipeline.compiler.Compiler.compile``, which calls numba's ``njit`` by that module's name: that name
    becomes a ``njit`` that, for these functions, turns the cache on before anything is compiled."""
    typed_dicts = cache_typed_dicts()
    try:
        from ffcv.pipeline import compiler
        from numba.core import typeinfer

        numba_njit = compiler.njit
    except (AttributeError, ImportError):  # another FFCV
        return False

    def njit(signature=None, **options):
        def decorate(function):
            if not _cacheable(function):
                return numba_njit(signature, **options)(function)
            dispatcher = numba_njit(**options)(function)
            _cache_on_disk(dispatcher)
            if signature is not None:  # as numba's own decorator does: compile that signature now, and only it
                with typeinfer.register_dispatcher(dispatcher):
                    dispatcher.compile(signature)
                dispatcher.disable_compile()
            return dispatcher

        return decorate

    compiler.njit = njit
    return typed_dicts
