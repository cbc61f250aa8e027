"""The CLI's flags, generated from the declarations: one argparse flag per option."""

from __future__ import annotations

import argparse
import functools
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from rvc.errors import UserError
from rvc.settings.declare import Setting, build, settings_of
from rvc.settings.messages import cli_message, flag_name, named

T = TypeVar("T")


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Return ``cls`` with the values of the flags :func:`add_flags` added (absent ones keep their default)."""
    return build(cls, vars(args))


# ------------------------------------------------------------------ the CLI


def add_flags(
    parser: argparse.ArgumentParser, cls: type, *, changes_only: bool = False, exclude: Iterable[str] = ()
) -> None:
    """Add one flag per option of ``cls`` (its ``dest`` is the field's name).

    changes_only : an absent flag leaves the value alone (``config`` changes a saved file): no
        default is set, and a switch takes a value (``--auto-stop true``).
    """
    skip = set(exclude)
    for option in settings_of(cls):
        if not option.cli or option.name in skip:
            continue
        target = parser if option.group is None else argument_group(parser, option.group)
        target.add_argument(option.flag, dest=option.name, **_flag_arguments(option, changes_only))


def argument_group(parser: argparse.ArgumentParser, title: str) -> Any:
    """Return the parser's group of flags titled ``title``, made when it has none yet."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)


def _flag_arguments(option: Setting, changes_only: bool) -> dict[str, Any]:
    text = named(option.help, option.owner, flag_name).replace("%", "%%")
    if changes_only:
        text = f"{text} (default: {option.default})"
    arguments: dict[str, Any] = {"help": text, "default": argparse.SUPPRESS if changes_only else option.default}
    if option.kind is bool and not changes_only:
        return arguments | {"action": argparse.BooleanOptionalAction}
    arguments["type"] = functools.partial(_flag_value, option.parse) if option.parse else _parser(option)
    if option.choices:
        arguments["choices"] = option.choices
    else:
        arguments["metavar"] = option.metavar or (option.name.upper() if changes_only else None)
    return arguments


def _flag_value(parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except UserError as error:  # argparse reports it as "argument --flag: ..."
        raise argparse.ArgumentTypeError(cli_message(error)) from None


_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


def _parser(option: Setting) -> Callable[[str], Any]:
    """Return argparse's ``type`` for the option: text -> value."""
    kind = option.kind
    if kind is bool:
        convert: Callable[[str], Any] = _switch
    elif kind is list:
        item = typing.get_args(option.base)[0]
        convert = functools.partial(numbers_from_text, item, None)
    elif kind is tuple:
        items = typing.get_args(option.base)
        convert = functools.partial(numbers_from_text, items[0], len(items))
    else:
        convert = kind
    if not option.optional:
        return convert
    optional = functools.partial(_or_none, convert)
    optional.__name__ = getattr(convert, "__name__", "value")  # type: ignore[attr-defined]  # argparse's "invalid int value"
    return optional


def _switch(text: str) -> bool:
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def numbers_from_text(item: Callable[[str], Any], count: int | None, text: str) -> Any:
    try:
        values = [item(part) for part in text.replace(",", " ").split()]
    except ValueError:  # argparse would name the partial: "invalid functools.partial(<function ...>) value"
        kind = "whole numbers" if item is int else "numbers"
        example = "10,20" if item is int else "0.8,0.99"
        raise argparse.ArgumentTypeError(
            f"expected {kind} separated by commas, e.g. {example} (got {text!r})"
        ) from None
    if count is None:
        return values
    if len(values) != count:
        raise argparse.ArgumentTypeError(f"expected {count} numbers, e.g. 0.8,0.99")
    return tuple(values)


def _or_none(convert: Callable[[str], Any], text: str) -> Any:
    return None if text.strip().lower() in ("none", "off", "") else convert(text)
