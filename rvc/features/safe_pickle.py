"""Read a PyTorch checkpoint without running any code from it.

``torch.save`` files are pickles, and a pickle may call any importable function
while it loads (``__reduce__`` returning ``(os.system, ("...",))``), so a
checkpoint downloaded from the internet can take over the machine when it is
opened. ``torch.load(weights_only=True)`` guards against that, but refuses the
fairseq checkpoints RVC users have (``hubert_base.pt``, ContentVec): they also
pickle fairseq, omegaconf and argparse objects (training arguments, task
dictionaries) next to the weights.

This module reads both torch formats (the zip archive of torch >= 1.6 and the
older single-stream format) with an unpickler that

- rebuilds tensors from the file's raw storage bytes with our own code,
- allows a short list of data constructors (``OrderedDict``, ``set``, numpy
  scalars, torch dtypes, ...),
- turns ``fairseq.*``, ``omegaconf.*``, ``argparse.Namespace`` and ``typing``
  objects into inert stubs whose pickled state :func:`to_plain` reads back as
  dicts, lists and values,
- refuses every other global (``os.system``, ``builtins.eval``, ...).
"""

from __future__ import annotations

import codecs
import collections
import io
import logging
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np
import torch

from rvc.errors import UserError

log = logging.getLogger(__name__)

# torch's legacy (pre-1.6) format starts with this pickled number, then a protocol version.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Object graphs of configs are shallow and small; these bound what a hostile file may make to_plain build:
# nesting, and values in all (a shared ``[a, a]`` nested 40 deep is 2**40 values once expanded).
_MAX_DEPTH = 64
_MAX_NODES = 200_000  # a fairseq config holds a few thousand


class UnsafeGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (e.g. ``posix.system``)."""

    def __init__(self, qualified_name: str) -> None:
        super().__init__(f"refused global {qualified_name}")
        self.qualified_name = qualified_name


# --- storages and tensors ------------------------------------------------------


class _StorageKind:
    """What ``torch.FloatStorage`` & co. unpickle to: only the element type."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


class _Storage:
    """A storage read from the file: a flat 1-D tensor that tensors are views of."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, tuple | list | torch.Size) or not all(type(v) is int for v in values):
        raise pickle.UnpicklingError(f"tensor {what} is not a tuple of ints")
    return tuple(values)


def _view(flat: torch.Tensor, storage_offset: Any, size: Any, stride: Any) -> torch.Tensor:
    if type(storage_offset) is not int:
        raise pickle.UnpicklingError("tensor storage offset is not an int")
    # as_strided checks the view against the storage's bounds (RuntimeError if outside).
    return flat.as_strided(_ints(size, "size"), _ints(stride, "stride"), storage_offset)


def _storage(value: Any) -> torch.Tensor:
    if not isinstance(value, _Storage):
        raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage of this file")
    return value.flat


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> torch.Tensor:
    return _view(_storage(storage), storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    # requires_grad and hooks do not matter for inference; metadata only holds the
    # conj/neg bits of complex views, which weights never have.
    return _view(_storage(storage), storage_offset, size, stride)


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype):
        raise pickle.UnpicklingError("tensor dtype is not a torch dtype")
    return _view(_storage(storage).view(dtype), storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None) -> Any:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter rebuilt from something that is not a tensor")
    return data


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """Rebuild ``bytes`` as pickle protocol 2 stores them: ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return codecs.encode(text, encoding)


def _stub_getattr(owner: Any, name: Any) -> Any:
    """``getattr`` as newer Pythons pickle enum members (``getattr(EnumClass, "NAME")``), for stubs only."""
    if isinstance(owner, type) and issubclass(owner, Stub) and isinstance(name, str):
        return owner(name)
    raise UnsafeGlobalError("builtins.getattr")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """numpy scalars and arrays (fairseq keeps e.g. the best loss as a numpy float)."""
    core = getattr(np, "_core", None) or np.core
    found: dict[tuple[str, str], Any] = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "scalar")] = core.multiarray.scalar
        found[(module, "_reconstruct")] = core.multiarray._reconstruct
    return found


def _safe_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
        ("builtins", "dict"): dict,
        ("builtins", "list"): list,
        ("builtins", "tuple"): tuple,
        ("builtins", "int"): int,
        ("builtins", "float"): float,
        ("builtins", "str"): str,
        ("builtins", "bool"): bool,
        ("builtins", "bytes"): bytes,
        ("builtins", "getattr"): _stub_getattr,
        ("_codecs", "encode"): _codecs_encode,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    }
    table.update(_numpy_globals())
    return table


# --- stubs for configuration objects --------------------------------------------


class Stub:
    """An inert stand-in for a pickled object of a class we do not import.

    It accepts whatever pickle gives it (constructor arguments, ``__setstate__``
    state, dict items, list items) and keeps it as data. It has no behaviour.
    """

    stub_module: ClassVar[str] = ""
    stub_name: ClassVar[str] = ""
    stub_args: tuple[Any, ...]
    stub_kwargs: dict[str, Any]
    stub_state: Any
    stub_items: dict[Any, Any]
    stub_list: list[Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        obj = object.__new__(cls)
        obj.__dict__.update(stub_args=args, stub_kwargs=kwargs, stub_state=None, stub_items={}, stub_list=[])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["stub_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__["stub_items"][key] = value

    def append(self, value: Any) -> None:
        self.__dict__["stub_list"].append(value)

    def extend(self, values: Any) -> None:
        self.__dict__["stub_list"].extend(values)

    def __repr__(self) -> str:
        return f"<stub {self.stub_module}.{self.stub_name}>"


def _is_stubbed(module: str, name: str) -> bool:
    root = module.split(".", 1)[0]
    return root in ("fairseq", "omegaconf", "typing") or (module, name) == ("argparse", "Namespace")


class ExpansionError(ValueError):
    """A loaded object whose plain form would nest too deep or hold too many values (a hostile file)."""


def to_plain(obj: Any, max_nodes: int = _MAX_NODES, max_depth: int = _MAX_DEPTH) -> Any:
    """Return ``obj`` with every :class:`Stub` replaced by plain data.

    omegaconf containers become their content (dict or list), omegaconf value
    nodes their value, an ``argparse.Namespace`` (or any other stub with a dict
    state) a dict of its attributes, an enum-like stub its constructor argument.
    Tensors and other leaves are returned as they are.
    Raises ExpansionError beyond ``max_depth`` levels or ``max_nodes`` values (a value
    referenced twice counts twice: it is copied twice).
    """
    return _Expansion(max_nodes, max_depth).plain(obj, 0)


class _Expansion:
    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes, self.max_depth = max_nodes, max_depth
        self.nodes = 0

    def plain(self, obj: Any, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ExpansionError(f"it expands to more than {self.max_nodes:,} values")
        if depth > self.max_depth:
            raise ExpansionError(f"it nests deeper than {self.max_depth} levels")
        deeper = depth + 1
        if isinstance(obj, Stub):
            return self.stub(obj, deeper)
        if isinstance(obj, dict):
            return {key: self.plain(value, deeper) for key, value in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.plain(value, deeper) for value in obj]
        return obj

    def stub(self, stub: Stub, depth: int) -> Any:
        state = stub.stub_state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | type(None)):
            state = state[0]  # (dict state, slot state)
        if stub.stub_module.startswith("omegaconf") and isinstance(state, dict):
            # containers keep children in _content; value nodes keep the value in _val (``val`` in old versions).
            for key in ("_content", "_val", "val"):
                if key in state:
                    return self.plain(state[key], depth)
        if isinstance(state, dict):
            # "_parent" links a child back to its container: skip it, it would loop.
            plain = {key: self.plain(value, depth) for key, value in state.items() if key != "_parent"}
            plain.update({key: self.plain(value, depth) for key, value in stub.stub_items.items()})
            return plain
        if stub.stub_items:
            return {key: self.plain(value, depth) for key, value in stub.stub_items.items()}
        if stub.stub_list:
            return [self.plain(value, depth) for value in stub.stub_list]
        if len(stub.stub_args) == 1:
            return self.plain(stub.stub_args[0], depth)  # enum members pickle as Class(value)
        if stub.stub_args:
            return [self.plain(value, depth) for value in stub.stub_args]
        return None


# --- the unpickler --------------------------------------------------------------


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only data: see the module docstring for the rules."""

    def __init__(self, file: IO[bytes], persistent_load: Callable[[Any], Any] | None = None) -> None:
        super().__init__(file)
        self._safe = _safe_globals()
        self._stubs: dict[tuple[str, str], type[Stub]] = {}
        self._persistent = persistent_load

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError("unexpected persistent id in a plain pickle")
        return self._persistent(pid)

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol 2 pickles written by Python 2
            module = "builtins"
        found = self._safe.get((module, name))
        if found is not None:
            return found
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageKind(_STORAGE_DTYPES[name])
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if _is_stubbed(module, name):
            return self._stub_class(module, name)
        raise UnsafeGlobalError(f"{module}.{name}")

    def _stub_class(self, module: str, name: str) -> type[Stub]:
        key = (module, name)
        if key not in self._stubs:
            attrs = {"stub_module": module, "stub_name": name, "__module__": __name__}
            self._stubs[key] = type(f"Stub_{name}", (Stub,), attrs)
        return self._stubs[key]


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _storage_id(pid: Any) -> tuple[_StorageKind, str, int, Any]:
    """Check a persistent id ``('storage', kind, key, location, numel[, view])``."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
        raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:80]}")
    kind, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(kind, _StorageKind) or not isinstance(key, str) or type(numel) is not int or numel < 0:
        raise pickle.UnpicklingError("malformed storage id")
    return kind, key, numel, pid[5] if len(pid) == 6 else None


def _load_zip(path: Path) -> Any:
    """Read the zip format (``archive/data.pkl`` + one raw file per storage)."""
    with zipfile.ZipFile(path) as archive:
        pickles = sorted((n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")), key=len)
        if not pickles:
            raise pickle.UnpicklingError("zip file without data.pkl: not a torch checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder") != b"little":
            raise pickle.UnpicklingError("big-endian checkpoints are not supported")
        storages: dict[str, _Storage] = {}

        def persistent_load(pid: Any) -> _Storage:
            kind, key, numel, _ = _storage_id(pid)
            if key not in storages:
                raw = bytearray(archive.read(f"{prefix}data/{key}"))
                flat = torch.frombuffer(raw, dtype=kind.dtype) if raw else torch.empty(0, dtype=kind.dtype)
                if flat.numel() < numel:
                    raise pickle.UnpicklingError(f"storage {key} is shorter than recorded")
                storages[key] = _Storage(flat)
            return storages[key]

        with archive.open(pickles[0]) as data:
            return RestrictedUnpickler(io.BytesIO(data.read()), persistent_load).load()


def _load_legacy(handle: IO[bytes], file_size: int) -> Any:
    """Read torch's pre-1.6 format: magic, version, sys info, the object, storage keys, raw storages."""

    def plain_load() -> Any:
        return RestrictedUnpickler(handle).load()

    if plain_load() != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a torch checkpoint (no zip archive, no legacy magic number)")
    if plain_load() != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("unsupported legacy torch protocol version")
    sys_info = plain_load()
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise pickle.UnpicklingError("big-endian checkpoints are not supported")
    storages: dict[str, torch.Tensor] = {}

    def persistent_load(pid: Any) -> _Storage:
        kind, key, numel, view = _storage_id(pid)
        if view is not None:
            raise pickle.UnpicklingError("legacy storage views are not supported")
        if key not in storages:
            if numel * _element_size(kind.dtype) > file_size:
                raise pickle.UnpicklingError(f"storage {key} is larger than the file")
            storages[key] = torch.empty(numel, dtype=kind.dtype)
        return _Storage(storages[key])

    result = RestrictedUnpickler(handle, persistent_load).load()
    keys = plain_load()
    if not isinstance(keys, list):
        raise pickle.UnpicklingError("malformed storage key list")
    for key in keys:
        flat = storages.get(key)
        if flat is None:
            raise pickle.UnpicklingError(f"unknown storage key {key!r}")
        header = handle.read(8)
        (numel,) = struct.unpack("<q", header) if len(header) == 8 else (-1,)
        nbytes = flat.numel() * flat.element_size()
        raw = bytearray(handle.read(nbytes))
        if numel != flat.numel() or len(raw) != nbytes:
            raise pickle.UnpicklingError(f"storage {key} is truncated")
        if nbytes:
            # the tensors already built are views of ``flat``: fill it in place
            flat.copy_(torch.frombuffer(raw, dtype=flat.dtype))
    return result


def load_checkpoint(path: Path) -> Any:
    """Load a ``torch.save`` file without running code from it.

    Tries ``torch.load(weights_only=True)`` first, then the restricted
    unpickler, which also reads fairseq checkpoints (their config objects come
    back as :class:`Stub`; pass them through :func:`to_plain`). Tensors are on
    the CPU. Raises UserError naming the file when it is unreadable or asks to
    run code.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any failure: fall back to the reader that knows fairseq files
        log.debug("weights_only load of %s failed (%s); using the restricted unpickler", path, error)
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as handle:
            return _load_legacy(handle, path.stat().st_size)
    except UnsafeGlobalError as error:
        raise UserError(
            f"refusing to load {path}: it asks to run {error.qualified_name} while loading, which a weights file "
            "never needs; it may be malicious. Delete it and get the file from a source you trust."
        ) from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error}") from None
    except Exception as error:  # hostile or broken data can fail anywhere in the unpickler
        raise UserError(
            f"cannot read {path} as a PyTorch checkpoint ({type(error).__name__}: {error}); "
            "check that the file is complete (re-download it) and is a .pt/.pth weights file"
        ) from None
