"""FFCV's import, without compiling numba's typed-dictionary functions in every process.

Importing FFCV fills a numba typed dictionary (``ffcv.fields.rgb_image.IMAGE_MODES``) and its decoders read
it, which compiles numba's typed-dictionary functions: about 2.5 s of CPU in every process that reads or
writes a ``.beton`` (each training job, prepare_data, repair), every time, for the same few machine-code
functions. ``cache_typed_dicts()`` turns on numba's own on-disk cache for them (what ``@njit(cache=True)``
does; numba keys an entry on the function's bytecode, its types and the CPU), so only the first process
compiles them. It changes no result: the same functions, compiled once. Call it before the first ``ffcv``
import of a process.

The cache lies in one folder per kind of CPU (``cache_folder()``): under ``NUMBA_CACHE_DIR`` where it is set,
else under the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``algoprogress/numba``).
Numba's cache index is not safe for processes of different CPUs that write it at the same moment (as on a
cluster whose nodes share a home folder or an environment): one folder per CPU kind keeps them apart.
Where the cache cannot be read or written (no home folder, a read-only or full disk), the process compiles
as it would without it; where numba lacks these functions (another numba), nothing changes.
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


@functools.cache
def cache_typed_dicts() -> bool:
    """True when numba caches its typed-dictionary functions on disk from now on in this process."""
    try:
        from numba.core import config
        from numba.typed import typeddict

        # numba reads both settings once, as each function's cache is set up: this folder and no other (numba
        # would fall back to a folder shared by every CPU kind, beside its sources)
        defaults = config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES
        config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES = str(cache_folder()), "UserProvidedCacheLocator"
        try:
            for name in TYPED_DICT_FUNCTIONS:
                dispatcher = getattr(typeddict, name)
                dispatcher.enable_caching()
                cache = dispatcher._cache
                cache.load_overload = functools.partial(_or_compile, cache.load_overload)
                cache.save_overload = functools.partial(_or_compile, cache.save_overload)
        finally:
            config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES = defaults
    except (AttributeError, ImportError, OSError, RuntimeError):  # another numba; no usable folder
        return False
    return True
