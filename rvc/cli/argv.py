"""Write a stage's command line from values: the inverse of parsing it, read off the stage's own parser.

The web app runs each stage as ``python -m rvc <stage> ...`` (a job). Building the flags from the
parser's actions, by destination, keeps one declaration of them: a flag renamed in a stage's
``add_arguments`` is followed here, and a destination that no longer exists is an error, not a
silently dropped setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from rvc.cli import HelpFormatter, _stage_module


def stage_parser(stage: str) -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m rvc <stage>`` alone."""
    parser = argparse.ArgumentParser(prog=f"rvc {stage}", formatter_class=HelpFormatter)
    _stage_module(stage).add_arguments(parser)
    return parser


def _flag(action: argparse.Action) -> str:
    longs = [option for option in action.option_strings if option.startswith("--")]
    return (longs or action.option_strings)[0]


def stage_args(stage: str, values: Mapping[str, Any]) -> list[str]:
    """Return the flags of ``stage`` that set each destination of ``values`` (None: left at its default).

    Raises ValueError for a destination the stage's parser does not have.
    """
    actions = {action.dest: action for action in stage_parser(stage)._actions if action.option_strings}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise ValueError(f"`rvc {stage}` has no option for {', '.join(unknown)}")
    argv: list[str] = []
    for dest, value in values.items():
        action = actions[dest]
        if value is None:
            continue
        _refuse_flag_like(action, value)
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(_flag(action) if value else f"--no-{_flag(action).removeprefix('--')}")
        elif isinstance(action, argparse._StoreTrueAction):
            if value:
                argv.append(_flag(action))
        elif isinstance(value, list | tuple) and action.nargs in ("+", "*"):
            if value:
                argv += [_flag(action), *(str(item) for item in value)]
        elif isinstance(value, list | tuple):  # one flag value of several numbers: "0.8,0.99"
            argv += [_flag(action), ",".join(str(item) for item in value)]
        else:
            argv += [_flag(action), str(value)]
    return argv


def _refuse_flag_like(action: argparse.Action, value: Any) -> None:
    """Raise ValueError for a text value that the parser would read as a flag (a form's ``--input=/elsewhere``).

    Numbers are fine (argparse takes ``-12`` as a value); every caller checks its text values first, so
    this is the last guard, not the message a user sees.
    """
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, str | os.PathLike) and str(item).startswith("-"):
            raise ValueError(f"{_flag(action)} {str(item)!r}: a value beginning with '-' would be read as a flag")


def option_values(options: Any) -> dict[str, Any]:
    """Return an options dataclass's values by field name, nested options dataclasses flattened into it.

    The stages' flags set the fields of the same name (``rvc.settings.add_flags``).
    """
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(options):
        value = getattr(options, spec.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            values |= option_values(value)
        else:
            values[spec.name] = value
    return values
