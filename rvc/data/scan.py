"""Find the audio files under the input folders, and everything there that is not one, with a reason."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from rvc.audio import extension, is_audio_name


@dataclass(frozen=True)
class Scan:
    audio: tuple[Path, ...]  # candidate audio files, sorted
    rejected: tuple[tuple[Path, str], ...]  # (path, reason) for what is under the inputs but not usable


def scan_inputs(roots: list[Path], skip: tuple[Path, ...] = ()) -> Scan:
    """Walk ``roots`` recursively; return the audio files and the rejected entries.

    Folders in ``skip`` (the experiment's own folder: its clips are not
    recordings) are not entered, also through a link, unless given as a root themselves.
    Linked folders are followed (a recordings folder is often a link to another disk);
    a link to a folder already walked (a loop, or the same folder twice) is listed, not walked again.

    Hidden files and folders (names starting with '.') are skipped without a
    word: they are system metadata (.DS_Store, macOS '._x.wav' resource forks
    that are not audio at all, .git). Anything else that is not an audio file
    is listed with the reason, so nothing vanishes silently.
    """
    audio: list[Path] = []
    rejected: list[tuple[Path, str]] = []
    skipped = {_real(path) for path in skip}
    walked: set[Path] = set()  # real folders already walked
    for root in roots:
        for folder, dirs, files in os.walk(root, followlinks=True, onerror=lambda e: rejected.append(_walk_error(e))):
            base = Path(folder)
            real = _real(base)
            if real in walked:
                dirs[:] = []
                rejected.append((base, f"a link to a folder already read ({real}): not read twice"))
                continue
            walked.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and _real(base / d) not in skipped)
            for name in dirs:
                if is_audio_name(Path(name)) and not _has_files(base / name):
                    rejected.append((base / name, "not a file (a folder named like audio)"))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = base / name
                reason = _file_problem(path)
                if reason is None:
                    audio.append(path)
                else:
                    rejected.append((path, reason))
    return Scan(tuple(sorted(set(audio))), tuple(sorted(set(rejected))))


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop that cannot resolve: compare it as it is
        return path


def _file_problem(path: Path) -> str | None:
    """Return why ``path`` is not a candidate audio file, or None when it is one."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "not a file (a broken link)"
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    if not stat.S_ISREG(info.st_mode):
        return "not a file (a pipe, socket or device)"
    if not is_audio_name(path):
        suffix = extension(path)
        return f"not audio (extension '.{suffix}')" if suffix else "not audio (no extension)"
    return None


def _has_files(folder: Path) -> bool:
    try:
        return any(p.is_file() for p in folder.rglob("*"))
    except OSError:
        return False


def _walk_error(error: OSError) -> tuple[Path, str]:
    path = Path(error.filename or "?")
    if isinstance(error, PermissionError):
        return path, "permission denied (folder): make it readable (chmod +rx)"
    return path, f"unreadable folder: {error.strerror or error}"
