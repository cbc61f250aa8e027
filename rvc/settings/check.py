"""Checking values against their declarations: the choices of a ``Literal`` and the declared range."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rvc.errors import UserError
from rvc.settings.declare import Setting, is_options, settings_of


def problems_of(options: object) -> list[UserError]:
    """Return what the declarations say is wrong with ``options``: values outside their choices or range."""
    found = []
    for option in settings_of(type(options)):
        value = _value(options, option)
        if value is None and option.optional:
            continue
        if option.choices and value not in option.choices:
            choices = ", ".join(str(choice) for choice in option.choices)
            found.append(option_error(option, f"${option.name} {value!r}: use one of {choices}"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            problem = _range_problem(option, value)
            if problem:
                found.append(option_error(option, f"${option.name} {_number(value)} {problem}"))
    return found


def range_text(option: Setting) -> str:
    """Return the option's allowed range in words ("between 1 and 1024", "greater than 0 and at most 1"), or ""."""
    low, high, above = option.minimum, option.maximum, option.above
    if low is not None and high is not None:
        return f"between {_number(low)} and {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"at least {_number(low)}")
    elif above is not None:
        parts.append(f"greater than {_number(above)}")
    if high is not None:
        parts.append(f"at most {_number(high)}")
    return " and ".join(parts)


def _range_problem(option: Setting, value: float) -> str | None:
    """Return what is wrong with a number for ``option`` ("must be at least 1"), or None when it fits."""
    bounds = range_text(option)
    if not math.isfinite(value):
        return f"is not a finite number: use one {bounds}" if bounds else "is not a finite number"
    low, high, above = option.minimum, option.maximum, option.above
    if (
        (low is not None and value < low)
        or (above is not None and value <= above)
        or (high is not None and value > high)
    ):
        return f"must be {bounds}"
    return None


def _number(value: float) -> str:
    """Write a number as a user typed it: 1000000000, 0.0001, inf."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_declared(options: object) -> None:
    """Raise the first of :func:`problems_of`, as a UserError naming its field."""
    found = problems_of(options)
    if found:
        raise found[0]


def option_error(option: Setting, message: str) -> UserError:
    return UserError(message, field=option.name, options=option.owner)


def _value(options: object, option: Setting) -> Any:
    """Return the value of ``option`` in ``options``, looking inside nested options dataclasses."""
    if option.owner is type(options):
        return getattr(options, option.name)
    for field in dataclasses.fields(options):  # type: ignore[arg-type]
        inner = getattr(options, field.name)
        if is_options(type(inner)) and any(s.name == option.name for s in settings_of(type(inner))):
            return _value(inner, option)
    raise KeyError(option.name)
