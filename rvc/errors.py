"""Errors that carry a message meant for the user."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable

# "$chunk" in the message of an error about an options dataclass: that option, named by each front end.
_MENTION = re.compile(r"\$([a-z][a-z0-9_]*)")


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, wrong option).

    The message says what is wrong, naming the file or option, and what to do.
    The CLI prints it without a traceback and exits with status 2.

    An error about an option sets ``field`` (the dataclass field's name) and
    ``options`` (the options dataclass, see :mod:`rvc.settings`); its message
    may mention options as ``$name``. Each front end names them its own way
    (:meth:`named`): the CLI by flag (``--batch-size``), the web UI by label.
    A message that does not mention its own field is prefixed with its name.
    """

    def __init__(self, message: str, *, field: str | None = None, options: type | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.options = options

    def named(self, name: Callable[[str], str]) -> str:
        """Return the message with its field and the options it mentions called ``name(field)``."""
        if self.options is None and self.field is None:
            return self.message
        text = _MENTION.sub(lambda match: name(match.group(1)), self.message)
        if self.field is not None and f"${self.field}" not in self.message:
            text = f"{name(self.field)}: {text}"
        return text

    def __str__(self) -> str:
        return self.named(lambda field: field)


# What to do about a path the system refused, by errno.
_PATH_REMEDIES = {
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.EISDIR: "it is a folder: give the path of a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another place",
    errno.EEXIST: "a file has that name: move it away or choose another place",
    errno.ENOENT: "check the path",
    errno.EACCES: "permission denied: choose a place you may use, or change its permissions",
    errno.EPERM: "permission denied: choose a place you may use, or change its permissions",
    errno.ELOOP: "a symbolic link there points back to itself: fix or remove the link",
    errno.ENOSPC: "the disk is full: free some space and run it again",
    errno.EROFS: "the disk is read-only: choose another place",
}
_SYMLINK_LOOP = "Symlink loop from "  # Path.resolve()'s RuntimeError before Python 3.13 (then OSError ELOOP)


def path_problem(error: BaseException) -> str | None:
    """Say which path the system refused, why, and what to do; None when ``error`` is not about a path.

    An OSError that carries a file name (a name too long, a folder where a file goes, a full disk) is a
    problem with a path the user gave or chose, not a bug: the command line says it in one line.
    """
    if isinstance(error, OSError) and error.filename is not None:
        why = error.strerror or type(error).__name__
        remedy = _PATH_REMEDIES.get(error.errno or 0, "check the path and run it again")
        return f"{os.fsdecode(error.filename)}: {why}; {remedy}"
    if isinstance(error, RuntimeError) and str(error).startswith(_SYMLINK_LOOP):
        path = str(error).removeprefix(_SYMLINK_LOOP).strip("'\"")
        return f"{path}: {_PATH_REMEDIES[errno.ELOOP]}"
    return None
