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

The allowed globals and the tensor rebuilders are in :mod:`rvc.features.pickle_globals`, the
stubs and :func:`~rvc.features.pickle_stubs.to_plain` in :mod:`rvc.features.pickle_stubs`.
"""

from __future__ import annotations

import io
import logging
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from rvc.errors import UserError
from rvc.features.pickle_globals import STORAGE_DTYPES, Storage, StorageKind, UnsafeGlobalError, safe_globals
from rvc.features.pickle_stubs import Stub, is_stubbed

log = logging.getLogger(__name__)

# torch's legacy (pre-1.6) format starts with this pickled number, then a protocol version.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


# --- the unpickler --------------------------------------------------------------


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only data: see the module docstring for the rules."""

    def __init__(self, file: IO[bytes], persistent_load: Callable[[Any], Any] | None = None) -> None:
        super().__init__(file)
        self._safe = safe_globals()
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
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageKind(STORAGE_DTYPES[name])
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if is_stubbed(module, name):
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


def _storage_id(pid: Any) -> tuple[StorageKind, str, int, Any]:
    """Check a persistent id ``('storage', kind, key, location, numel[, view])``."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
        raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:80]}")
    kind, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(kind, StorageKind) or not isinstance(key, str) or type(numel) is not int or numel < 0:
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
        storages: dict[str, Storage] = {}

        def persistent_load(pid: Any) -> Storage:
            kind, key, numel, _ = _storage_id(pid)
            if key not in storages:
                raw = bytearray(archive.read(f"{prefix}data/{key}"))
                flat = torch.frombuffer(raw, dtype=kind.dtype) if raw else torch.empty(0, dtype=kind.dtype)
                if flat.numel() < numel:
                    raise pickle.UnpicklingError(f"storage {key} is shorter than recorded")
                storages[key] = Storage(flat)
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

    def persistent_load(pid: Any) -> Storage:
        kind, key, numel, view = _storage_id(pid)
        if view is not None:
            raise pickle.UnpicklingError("legacy storage views are not supported")
        if key not in storages:
            if numel * _element_size(kind.dtype) > file_size:
                raise pickle.UnpicklingError(f"storage {key} is larger than the file")
            storages[key] = torch.empty(numel, dtype=kind.dtype)
        return Storage(storages[key])

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
