"""Errors that carry a message meant for the user."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, wrong option).

    The message says what is wrong, naming the file or option, and what to do.
    The CLI prints it without a traceback and exits with status 2.
    """
