"""Errors that carry a message meant for the user."""

from __future__ import annotations

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
