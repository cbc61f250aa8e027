"""Naming options in messages: each front end calls an option its own way (a CLI flag, a UI label)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rvc.errors import UserError
from rvc.settings.declare import Setting, is_options, setting_of


def named(text: str, cls: type, name: Callable[[Setting], str]) -> str:
    """Return ``text`` with each ``$option`` of ``cls`` it mentions called ``name(option)``."""
    return UserError(text, options=cls).named(lambda option: _name_or(cls, option, name, option))


def _name_or(cls: type | None, option: str, name: Callable[[Setting], str], fallback: str) -> str:
    if cls is not None and is_options(cls):
        try:
            return name(setting_of(cls, option))
        except KeyError:
            pass
    return fallback


def cli_message(error: UserError) -> str:
    """Return the error's message naming options by their CLI flags (``--batch-size``)."""
    return error.named(lambda option: _name_or(error.options, option, flag_name, "--" + option.replace("_", "-")))


def ui_message(error: UserError, labels: Mapping[str, str] | None = None) -> str:
    """Return the error's message naming options by their UI labels, quoted (``'Batch size'``).

    labels : the labels of form fields that are not options (e.g. the experiment name).
    """
    extra = labels or {}
    return error.named(lambda option: _name_or(error.options, option, label_name, f"'{extra.get(option, option)}'"))


def ui_help(option: Setting) -> str:
    """Return the option's help line as the web UI shows it (other options named by their labels)."""
    return named(option.help, option.owner, label_name)


def flag_name(option: Setting) -> str:
    return option.flag


def label_name(option: Setting) -> str:
    return f"'{option.label}'"
