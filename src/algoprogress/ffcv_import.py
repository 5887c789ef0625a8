"""FFCV's import, without compiling numba's typed-dictionary functions in every process.

Importing FFCV fills a numba typed dictionary (``ffcv.fields.rgb_image.IMAGE_MODES``) and its decoders read
it, which compiles numba's typed-dictionary functions: about 2.5 s of CPU in every process that reads or
writes a ``.beton`` (each training job, prepare_data, repair), every time, for the same few machine-code
functions. ``cache_typed_dicts()`` turns on numba's own on-disk cache for them (what ``@njit(cache=True)``
does; numba keys it on the function's bytecode, its signature and the CPU, and keeps it beside numba's
sources or in ``NUMBA_CACHE_DIR``), so only the first process compiles them. It changes no result: the same
functions, compiled once. Call it before the first ``ffcv`` import of a process; where numba cannot cache
(no writable cache directory, another numba), it does nothing and FFCV compiles as before.
"""

from __future__ import annotations

import functools

# the typed-dictionary operations FFCV's import and decoders use (numba/typed/typeddict.py)
TYPED_DICT_FUNCTIONS = ("_make_dict", "_length", "_setitem", "_getitem", "_contains", "_get")


@functools.cache
def cache_typed_dicts() -> bool:
    """True when numba caches its typed-dictionary functions on disk from now on in this process."""
    try:
        from numba.typed import typeddict

        for name in TYPED_DICT_FUNCTIONS:
            getattr(typeddict, name).enable_caching()
    except (AttributeError, ImportError, RuntimeError):  # another numba, or no writable cache directory
        return False
    return True
