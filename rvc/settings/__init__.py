"""Options declared once: every field of an options dataclass says its default, help, CLI flag and UI label.

A field is declared with :func:`setting`; :func:`settings_of` reads the
declarations back, with the choices of a ``Literal`` annotation and the range
given, flattening nested options dataclasses (``PrepareOptions.slicer``).
From them the CLI's argparse flags are generated (:func:`add_flags`,
:func:`from_args`), the web UI's labels and help lines are read, form values
are parsed (:func:`from_form`) and values are checked (:func:`check_declared`).
Errors name their field (``UserError.field``); each front end names it its own
way (:func:`cli_message`, :func:`ui_message`).

The parts: ``declare`` (:func:`setting`, :class:`Setting`, :func:`settings_of`), ``check``
(ranges and choices), ``messages`` (options named per front end), ``flags`` (argparse) and
``forms`` (widget values). Only the standard library is imported here: the CLI builds its parser from
these declarations, and ``--help`` stays fast.
"""

from rvc.settings.check import check_declared, option_error, problems_of, range_text
from rvc.settings.declare import Setting, build, labels_of, setting, setting_of, settings_of
from rvc.settings.flags import add_flags, argument_group, from_args
from rvc.settings.forms import form_value, from_form
from rvc.settings.messages import cli_message, named, ui_help, ui_message

__all__ = [
    "Setting",
    "add_flags",
    "argument_group",
    "build",
    "check_declared",
    "cli_message",
    "form_value",
    "from_args",
    "from_form",
    "labels_of",
    "named",
    "option_error",
    "problems_of",
    "range_text",
    "setting",
    "setting_of",
    "settings_of",
    "ui_help",
    "ui_message",
]
