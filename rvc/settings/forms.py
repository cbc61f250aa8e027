"""The web UI's forms: widget values parsed by their option's type, then checked."""

from __future__ import annotations

import argparse
import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rvc.settings.check import check_declared, option_error
from rvc.settings.declare import Setting, build, settings_of
from rvc.settings.flags import numbers_from_text

T = TypeVar("T")


def from_form(cls: type[T], form: Mapping[str, Any], keys: Mapping[str, str] | None = None) -> T:
    """Return ``cls`` from a form's values, each parsed by its option's type, then checked.

    keys : the form's key of an option whose name the form spells otherwise (``workers`` ->
        ``extract_workers``). An option missing from the form keeps its default. A value that
        is not of its type raises a UserError naming the option.
    """
    rename = keys or {}
    values = {}
    for option in settings_of(cls):
        key = rename.get(option.name, option.name)
        if key in form:
            values[option.name] = form_value(option, form[key])
    options = build(cls, values)
    check = getattr(options, "check", None)
    if callable(check):
        check()
    else:
        check_declared(options)
    return options


def form_value(option: Setting, value: Any) -> Any:
    """Return a widget's value as the option's type; raise a UserError naming the option when it is not."""
    kind = option.kind
    if option.parse is not None and not isinstance(value, bool):
        return option.parse(str(value if value is not None else ""))
    if kind is bool:
        return bool(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if option.optional:
            return None
        if kind in (int, float):
            raise option_error(option, "enter a number")
    if kind in (int, float):
        return _form_number(option, value)
    if kind in (list, tuple):
        return _form_numbers(option, value)
    if kind is Path:
        return Path(str(value).strip())
    if option.choices and value not in option.choices:
        text = ", ".join(str(choice) for choice in option.choices)
        raise option_error(option, f"{value!r} is not one of {text}")
    return "" if value is None else str(value).strip()  # an emptied dropdown: nothing chosen, not the word None


def _form_number(option: Setting, value: Any) -> int | float:
    if isinstance(value, bool):
        raise option_error(option, "enter a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise option_error(option, f"{value!r} is not a number") from None
    if option.kind is not int:
        return number
    if not math.isfinite(number) or number != int(number):
        low = f" of at least {option.minimum:g}" if option.minimum is not None else ""
        raise option_error(option, f"enter a whole number{low} (got {number:g})")
    whole = int(number)
    return whole if not option.choices or whole in option.choices else _choice_error(option, whole)


def _choice_error(option: Setting, value: Any) -> Any:
    text = ", ".join(str(choice) for choice in option.choices)
    raise option_error(option, f"{value!r} is not one of {text}")


def _form_numbers(option: Setting, value: Any) -> Any:
    try:
        return numbers_from_text(typing.get_args(option.base)[0], 2 if option.kind is tuple else None, str(value or ""))
    except (ValueError, argparse.ArgumentTypeError):
        if option.kind is tuple:
            raise option_error(option, "give two numbers, e.g. 0.8, 0.99") from None
        raise option_error(option, f"{value!r} is not a list of numbers like 50, 100, 150") from None
