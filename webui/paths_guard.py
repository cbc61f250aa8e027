"""Resolve paths typed into the UI and refuse any outside the folders the app may touch.

The allowed roots are the logs and assets folders and the dataset folders the
user named (Prepare Dataset adds them with ``allow_dataset_folder``). Paths are
resolved with symlinks followed, so neither ``..`` nor a link leads out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from rvc.errors import UserError, path_problem
from rvc.fileio import user_path

# Folders that are never a dataset: naming one would open the whole system to the UI's path fields.
_SYSTEM = tuple(
    Path(p) for p in ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr", "/var")
)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class PathGuard:
    """The folders a user-typed path may point into; thread-safe (handlers run in threads)."""

    def __init__(self, base: Path, roots: Iterable[Path]) -> None:
        """``base``: where relative paths start (the app's folder); ``roots``: logs and assets."""
        self.base = Path(base).resolve()
        self._fixed = tuple(Path(root).resolve() for root in roots)
        self._datasets: list[Path] = []
        self._lock = threading.Lock()

    @property
    def roots(self) -> tuple[Path, ...]:
        with self._lock:
            return self._fixed + tuple(self._datasets)

    def _absolute(self, text: str | Path) -> Path:
        raw = str(text).strip()
        if not raw:
            raise UserError("the path is empty: type a file or folder path")
        if "\x00" in raw:
            raise UserError(f"{raw!r} is not a valid path")
        path = user_path(raw)
        path = (path if path.is_absolute() else self.base / path).resolve()
        try:
            path.exists()  # a missing path is the caller's to judge; a name the system refuses is not a path at all
        except OSError as error:
            raise UserError(f"not a usable path: {path_problem(error) or error}") from None
        return path

    def allow_dataset_folder(self, text: str | Path) -> Path:
        """Resolve a dataset folder the user named, add it to the allowed roots and return it."""
        folder = self._absolute(text)
        if any(folder == system or (system != Path("/") and _inside(folder, system)) for system in _SYSTEM):
            raise UserError(f"{folder} is a system folder, not a dataset: name the folder holding your recordings")
        if not folder.is_dir():
            raise UserError(f"dataset folder {folder} does not exist or is not a folder")
        with self._lock:
            if folder not in self._datasets:
                self._datasets.append(folder)
        return folder

    def resolve(self, text: str | Path, what: str = "path", must_exist: bool = False) -> Path:
        """Return the absolute, symlink-free path of ``text`` if it lies inside an allowed root.

        ``what`` names the field in the error message (e.g. "pretrained G file").
        """
        path = self._absolute(text)
        roots = self.roots
        if not any(_inside(path, root) for root in roots):
            listed = ", ".join(str(root) for root in roots)
            raise UserError(
                f"{what} {str(text).strip()!r} resolves to {path}, outside the folders this app may use ({listed}); "
                "put the file in the logs or assets folder, or name its folder as a dataset folder"
            )
        if must_exist and not path.exists():
            raise UserError(f"{what} {path} does not exist")
        return path
