"""Atomic file writes: a file on disk is either the old one or the new one, never half."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rvc.errors import UserError


def why_not_a_file(path: Path) -> str:
    """Say why ``path`` is not a file to read: a folder, a broken link, or nothing there (for messages)."""
    path = Path(path)
    if path.is_dir():
        return "is a folder, not a file"
    if path.is_symlink():
        return "is a link to nothing (broken, or a loop)"
    return "does not exist"


def user_path(text: str) -> Path:
    """Return ``Path(text)`` with a leading ``~`` or ``~USER`` expanded; UserError when there is no such home.

    ``Path.expanduser`` raises RuntimeError for ``~USER`` of a user this machine does not have (or ``~``
    without a home): a typo in a path field, not a bug.
    """
    try:
        return Path(text).expanduser()
    except RuntimeError:
        start = str(text).split("/", 1)[0]
        raise UserError(
            f"{str(text)!r} begins with {start}, the home folder of a user this machine does not have: "
            "write the full path"
        ) from None


def _file_in_the_way(folder: Path) -> Path | None:
    """Return the first of ``folder``'s parents, or ``folder`` itself, that exists as something other than a folder
    (a file, or a link that leads to no folder: to itself, or to nothing)."""
    for candidate in (*reversed(folder.parents), folder):
        if candidate.is_symlink() and not candidate.exists():
            return candidate
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def _broken_link(link: Path) -> str:
    """Say what is wrong with a symbolic link that leads to no file or folder."""
    try:
        os.stat(link)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link there points back to itself: fix or remove the link"
    return "a symbolic link there points to nothing: fix or remove the link"


@contextmanager
def writing_to(path: Path, *, folder: bool = False) -> Iterator[None]:
    """Turn a folder where the file ``path`` goes (or, ``folder``: the folder ``path``), or a file where one of
    its folders goes, into a UserError that names it.

    These are the user's paths (``--out``, ``--logs-dir``), not bugs: say which one is in the way
    instead of ending in IsADirectoryError or NotADirectoryError.
    """
    path = Path(path)
    try:
        yield
    except (IsADirectoryError, FileExistsError, NotADirectoryError) as error:
        blocker = _file_in_the_way(path if folder else path.parent)
        what = f"cannot make the folder {path}" if folder else f"cannot write {path}"
        if blocker is not None and blocker.is_symlink() and not blocker.exists():
            raise UserError(f"{what}: {blocker}: {_broken_link(blocker)}") from error
        if blocker == path:
            raise UserError(f"{what}: a file has that name; move it away or choose another place") from error
        if blocker is not None:
            raise UserError(
                f"{what}: {blocker} is a file, not a folder; move that file away or choose another place"
            ) from error
        if not folder and path.is_dir():
            raise UserError(f"cannot write {path}: it is a folder; give the path of a file to write") from error
        raise


def replaceable(path: Path, suffix: str, what: str) -> Path:
    """Return ``path`` if writing a ``what`` (a ``suffix`` file) there replaces nothing else.

    An ``--out`` that names an existing file of another kind (a recording, a config) is refused:
    replacing an index or a model with a newer one is what rebuilding means, replacing a user's
    recording with an index loses it.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() != suffix.lower():
        raise UserError(f"{path} exists and is not {what} ({suffix}): give a new file name, or one ending in {suffix}")
    return path


def make_folder(folder: Path) -> Path:
    """Create ``folder`` and its parents (UserError when a file stands in the way) and return it."""
    folder = Path(folder)
    with writing_to(folder, folder=True):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    ``fsync=False`` is for many small files written in a batch that the caller syncs once.
    """
    path = Path(path)
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        with writing_to(path):
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically; UTF-8, or ASCII escapes where a string cannot be UTF-8.

    A file name that is not valid UTF-8 (bytes from another system's encoding) reaches Python as a
    string with surrogate escapes; written as ``\\udcxx`` escapes it reads back to the same name.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = (json.dumps(obj, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    atomic_write_bytes(path, data)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: Path, default: Any = None) -> Any:
    """Return the parsed JSON at ``path``, or ``default`` when it does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """A stable hash of JSON-able parameters (keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def sync_filesystem(folder: Path) -> None:
    """Flush the written-but-unsynced files of the filesystem holding ``folder`` to disk.

    Linux's ``syncfs`` flushes that one filesystem; ``os.sync`` (the fallback elsewhere) flushes
    every filesystem of the machine, which on a busy machine can take far longer than our files.
    """
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        if hasattr(os, "sync"):
            os.sync()
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) != 0 and hasattr(os, "sync"):
            os.sync()  # syncfs refused (an old kernel or a sandbox): flush everything instead
    finally:
        os.close(fd)
