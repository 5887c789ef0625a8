"""FFCV's import and loaders, without compiling the same numba functions in every process.

Importing FFCV fills a numba typed dictionary (``ffcv.fields.rgb_image.IMAGE_MODES``) and its decoders read
it, which compiles numba's typed-dictionary functions: about 2.5 s of CPU in every process that reads or
writes a ``.beton`` (each training job, prepare_data, repair), every time, for the same few machine-code
functions. ``cache_typed_dicts()`` turns on numba's own on-disk cache for them (what ``@njit(cache=True)``
does; numba keys an entry on the function's bytecode, its types and the CPU), so only the first process
compiles them. Call it before the first ``ffcv`` import of a process.

Each FFCV ``Loader`` then compiles its pipeline's stages (reading a sample, decoding labels, cropping,
flipping, normalising): about 1.2 s of CPU for a training job's two loaders, again the same functions every
time. ``cache_loader_functions()`` caches those of ``LOADER_FUNCTIONS`` the same way (the key then also holds
the values the function's closure captured: a normalisation table, a flip probability), and the JPEG
decoders' stages (``DECODER_FUNCTIONS``, 0.9 s of a training job's CPU), which call FFCV's C library: through
ctypes pointers, which numba cannot cache, so they call the same C functions by linker symbols instead
(``_c_wrappers_by_symbol``), and since their closures hold the compiled functions they call, each cached
function's entries are keyed on a digest of what goes into its machine code (``_identity``) rather than on
numba's pickle of its closure, which differs in every process. None of it changes a result: the same functions,
compiled once (tests/test_data.py compares the batches, from raw pixels and from JPEG files, with FFCV's own
compilation, to the bit).

The cache lies in one folder per kind of CPU (``cache_folder()``): under ``NUMBA_CACHE_DIR`` where it is set,
else under the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``algoprogress/numba``).
Numba's cache index is not safe for processes that add entries to it at the same moment: the processes of one
machine save one at a time (a lock file in the folder), and one folder per CPU kind keeps the nodes of a cluster
that share a home folder or an environment apart (each holds the machine code of its own CPU kind; two nodes of
one kind may still save at once, where their file system's locks do not reach across them).
Where the cache cannot be read or written (no home folder, a read-only or full disk), the process compiles
as it would without it; where numba or FFCV lack these functions (other versions), nothing changes, and with
another FFCV than the one ``LOADER_FUNCTIONS`` was read in, its loaders compile as before.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import types
import weakref
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


def _saved_alone(save, lock_path, *args):
    """Numba names a new entry's file from the index it has just read: two processes saving different entries at
    once could both take one name, and the index would then point an entry at the other's machine code. So one
    process of this machine saves at a time (a lock file beside the cache). Failing, it is a cache miss."""
    try:
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return save(*args)
    except OSError:
        return None


def _cache_on_disk(dispatcher) -> bool:
    """Turn on numba's on-disk cache for one dispatcher, in this CPU kind's folder; False where it cannot be."""
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock

    # numba reads both settings once, as each function's cache is set up: this folder and no other (numba would
    # fall back to a folder shared by every CPU kind, beside its sources); under numba's compiler lock, so that
    # no other thread compiles while they are changed
    with global_compiler_lock:
        defaults = config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES
        try:
            folder = cache_folder()
            config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES = str(folder), "UserProvidedCacheLocator"
            dispatcher.enable_caching()
        # no usable folder (no home folder, a read-only disk); or nothing compiled at all (NUMBA_DISABLE_JIT)
        except (OSError, RuntimeError, AttributeError):
            return False
        finally:
            config.CACHE_DIR, config.CACHE_LOCATOR_CLASSES = defaults
    cache = dispatcher._cache
    cache.load_overload = functools.partial(_or_compile, cache.load_overload)
    cache.save_overload = functools.partial(_saved_alone, cache.save_overload, folder / "save.lock")
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
    ("ffcv.transforms.normalize", "NormalizeImage.generate_code_cpu.<locals>.normalize_convert"),
    ("algoprogress.augmentations", "SeededRandomHorizontalFlip.generate_code.<locals>.flip"),
})


# The JPEG decoder stage of this project's pipelines (ffcv 1.0.2; the centre and random crops of loaders.py):
# besides plain values, its closure holds the functions it calls, compiled: cached when each of those is
# (LOADER_FUNCTIONS, or one of C_WRAPPERS below).
DECODER_FUNCTIONS = frozenset({
    ("ffcv.fields.rgb_image", "ResizedCropRGBImageDecoder.generate_code.<locals>.decode"),
    ("algoprogress.augmentations", "SeededRandomResizedCrop.generate_code.<locals>.decode"),
})

# FFCV's Python wrappers of its C library that this decoder compiles (ffcv/libffcv.py), with the ctypes function
# each calls. Numba cannot cache a call through a ctypes pointer (its address is written into the machine code);
# it can cache a call to a function named by a linker symbol, resolved when the code is loaded.
C_WRAPPERS = {"imdecode": "ctypes_imdecode", "resize_crop": "ctypes_resize"}

# the dispatchers made here with the cache on, each with its identity (_identity): a closure holding one of these
# can be cached in its turn
_IDENTITIES = weakref.WeakKeyDictionary()


def _plain(value) -> bool:
    """A value numba can freeze into machine code and a cache key can hold (in a closure, or a global): None, a
    number, a small numeric array, or the loop FFCV chose."""
    import numba
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" and value.size <= 4096
    return (value is None or isinstance(value, (bool, int, float, np.number))
            or value is range or value is numba.prange)


def _cacheable(function) -> bool:
    return ((function.__module__, function.__qualname__) in LOADER_FUNCTIONS | DECODER_FUNCTIONS
            and all(_plain(cell.cell_contents) or _cached(cell.cell_contents) for cell in function.__closure__ or ()))


def _cached(value) -> bool:
    """A dispatcher made here with the cache on."""
    from numba.core.dispatcher import Dispatcher

    return isinstance(value, Dispatcher) and value in _IDENTITIES


@functools.cache
def _c_wrappers_by_symbol() -> dict:
    """Twins of FFCV's ``C_WRAPPERS``, by the wrapper: the same bytecode, calling the same C function at the same
    address with the signature numba derives from its ctypes declaration, but through a linker symbol of this
    process (``algoprogress_ffcv_<name>``, registered with LLVM here, before any loader can load cached code) that
    numba can cache. (One difference in the machine code, none in the call: a boolean goes to C as the C ABI's
    byte where numba's ctypes path passes a bit; FFCV passes the constant False.) Empty where FFCV's library is
    not as read: the decoders then compile as before."""
    import ctypes

    import llvmlite.binding as llvm
    from ffcv import libffcv
    from numba.core import config
    from numba.core import types as numba_types
    from numba.core.typing.ctypes_utils import make_function_type

    if config.DISABLE_JIT:  # the wrappers then run as Python, and only the ctypes pointer can be called there
        return {}
    twins = {}
    try:
        for wrapper_name, pointer_name in C_WRAPPERS.items():
            wrapper, pointer = getattr(libffcv, wrapper_name), getattr(libffcv, pointer_name)
            if pointer_name not in wrapper.__code__.co_names or wrapper.__closure__:
                return {}
            declared = make_function_type(pointer)
            if declared.cconv is not None:  # not the C calling convention (Windows' stdcall): leave it to ctypes
                return {}
            symbol = f"algoprogress_ffcv_{pointer.__name__}"
            llvm.add_symbol(symbol, ctypes.cast(pointer, ctypes.c_void_p).value)
            by_symbol = numba_types.ExternalFunction(symbol, declared.sig)
            twin = types.FunctionType(wrapper.__code__, {**wrapper.__globals__, pointer_name: by_symbol},
                                      wrapper.__name__, wrapper.__defaults__)
            twin.__qualname__ = f"{wrapper.__qualname__}_by_symbol"  # its own cache file
            twins[wrapper] = twin
    except (AttributeError, TypeError):  # another FFCV: a wrapper or a declaration missing
        return {}
    return twins


def _identity(function, options: dict, signature) -> str:
    """A digest of what goes into a cached function's machine code, the same in every process for the same
    function compiled the same way: its source file's content (numba checks the file of the function it caches,
    not those of the functions compiled into it), its bytecode, names, constants and defaults, the globals numba
    writes into the code (plain values; a twin's C function with its signature), the compiled functions it calls by
    a global name (their file and code), its closure's values (a compiled function there by its own identity, so a
    callee's file counts too), its options and signature. Not covered:
    numba's process-wide settings (``NUMBA_OPT``, ``NUMBA_BOUNDSCHECK``...), which do not change between jobs."""
    from numba.core.dispatcher import Dispatcher
    from numba.core.serialize import dumps
    from numba.core.types import Type

    code = function.__code__
    named = [(name, function.__globals__[name]) for name in code.co_names if name in function.__globals__]
    frozen = sorted((name, f"{value!r} {getattr(value, 'sig', '')}" if isinstance(value, Type) else dumps(value))
                    for name, value in named if isinstance(value, Type) or (_plain(value) and value is not None))
    # compiled functions it calls by a global name (augmentations' hash): by their file and code (one level)
    callees = sorted((name, _source_digest(value.py_func.__code__.co_filename), _code_parts(value.py_func.__code__))
                     for name, value in named if isinstance(value, Dispatcher))
    closure = [_IDENTITIES[value] if _cached(value) else dumps(value)
               for value in (cell.cell_contents for cell in function.__closure__ or ())]
    parts = (function.__module__, function.__qualname__, _source_digest(code.co_filename), _code_parts(code),
             dumps((function.__defaults__, function.__kwdefaults__)), frozen, callees, closure,
             sorted(options.items()), repr(signature))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _code_parts(code) -> tuple:
    """Bytecode, names and constants, a nested code object (a comprehension, a lambda) by its own parts and a set
    in sorted order (its own order changes with the process's string hashing)."""
    constants = tuple(_code_parts(c) if isinstance(c, types.CodeType)
                      else sorted(map(repr, c)) if isinstance(c, frozenset) else repr(c) for c in code.co_consts)
    return code.co_code, code.co_names, constants


@functools.cache
def _source_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:  # no source file: the bytecode stands for it
        return ""


def _keyed_by_identity(dispatcher, identity: str) -> None:
    """Numba keys a cache entry on the function's bytecode and a pickle of its closure's values. A compiled
    function's pickle holds a random name and the process's own numbers for numba's types, so a decoder, whose
    closure holds the functions it calls, would never be found again: its entries (and those of every function
    cached here) are keyed on the identity instead."""
    cache = dispatcher._cache

    def index_key(signature, codegen):
        return signature, codegen.magic_tuple(), identity

    cache._index_key = index_key
    _IDENTITIES[dispatcher] = identity


# the FFCV whose functions LOADER_FUNCTIONS lists were read in: another compiles them as before
LOADER_FUNCTIONS_READ_IN = "1.0.2"


@functools.cache
def cache_loader_functions() -> bool:
    """True when the ``LOADER_FUNCTIONS`` and ``DECODER_FUNCTIONS`` that FFCV's loaders compile from now on in this
    process are cached on disk (and so are the typed-dictionary functions: this imports FFCV). FFCV compiles every
    stage through ``ffcv.pipeline.compiler.Compiler.compile``, which calls numba's ``njit`` by that module's name:
    that name becomes a ``njit`` that compiles ``C_WRAPPERS``' twins in their place and, for these functions, turns
    the cache on before anything is compiled."""
    from importlib.metadata import PackageNotFoundError, version

    typed_dicts = cache_typed_dicts()
    try:
        if version("ffcv") != LOADER_FUNCTIONS_READ_IN:
            return False
        from ffcv.pipeline import compiler
        from numba.core import typeinfer
        from numba.core.dispatcher import Dispatcher

        numba_njit = compiler.njit
    except (AttributeError, ImportError, PackageNotFoundError):  # another FFCV or numba
        return False

    twins = _c_wrappers_by_symbol()

    def njit(signature=None, **options):
        def decorate(function):
            function = twins.get(function, function)
            if not (function in twins.values() or _cacheable(function)):
                return numba_njit(signature, **options)(function)
            dispatcher = numba_njit(**options)(function)
            if not isinstance(dispatcher, Dispatcher):  # NUMBA_DISABLE_JIT: the Python function itself
                return dispatcher
            if _cache_on_disk(dispatcher):
                _keyed_by_identity(dispatcher, _identity(function, options, signature))
            if signature is not None:  # as numba's own decorator does: compile these signatures now, and only them
                with typeinfer.register_dispatcher(dispatcher):
                    for each in signature if isinstance(signature, list) else [signature]:
                        dispatcher.compile(each)
                dispatcher.disable_compile()
            return dispatcher

        return decorate

    compiler.njit = njit
    return typed_dicts
