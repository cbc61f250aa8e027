"""What the restricted unpickler may build: tensors from the file's own storages, and plain data.

Every global a pickle may name maps here to our own constructor (``torch._utils._rebuild_tensor_v2``
to a view of a storage read from the file) or to a harmless data type (``OrderedDict``, numpy
scalars); anything else raises :class:`UnsafeGlobalError`.
"""

from __future__ import annotations

import codecs
import collections
import pickle
from typing import Any

import numpy as np
import torch

from rvc.features.pickle_stubs import Stub


class UnsafeGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (e.g. ``posix.system``)."""

    def __init__(self, qualified_name: str) -> None:
        super().__init__(f"refused global {qualified_name}")
        self.qualified_name = qualified_name


class StorageKind:
    """What ``torch.FloatStorage`` & co. unpickle to: only the element type."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


STORAGE_DTYPES: dict[str, torch.dtype] = {
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


class Storage:
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
    if not isinstance(value, Storage):
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


def safe_globals() -> dict[tuple[str, str], Any]:
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
