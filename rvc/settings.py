"""Options declared once: every field of an options dataclass says its default, help, CLI flag and UI label.

A field is declared with :func:`setting`; :func:`settings_of` reads the
declarations back, with the choices of a ``Literal`` annotation and the range
given, flattening nested options dataclasses (``PrepareOptions.slicer``).
From them the CLI's argparse flags are generated (:func:`add_flags`,
:func:`from_args`), the web UI's labels and help lines are read, form values
are parsed (:func:`from_form`) and values are checked (:func:`check_declared`).
Errors name their field (``UserError.field``); each front end names it its own
way (:func:`cli_message`, :func:`ui_message`).

Only the standard library is imported here: the CLI builds its parser from
these declarations, and ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from rvc.errors import UserError

T = TypeVar("T")
_KEY = "rvc.setting"


@dataclasses.dataclass(frozen=True)
class _Declared:
    """What :func:`setting` keeps in the field's metadata."""

    label: str | None
    flag: str | None
    minimum: float | None
    maximum: float | None
    above: float | None
    metavar: str | None
    parse: Callable[[str], Any] | None
    group: str | None
    cli: bool


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    label: str | None = None,
    flag: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    metavar: str | None = None,
    parse: Callable[[str], Any] | None = None,
    group: str | None = None,
    cli: bool = True,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Return a dataclass field declared once for every front end.

    help : one line on what the value does and why the default (``$name`` mentions another option).
    label : the web UI's label; unset: the field's name, capitalised.
    flag : the CLI's flag; unset: ``--`` and the name with dashes.
    minimum, maximum : the range, both ends included, checked by :func:`check_declared`.
    above : an open lower end instead of ``minimum``: the value must be greater (a rate, a weight).
        A float option is always refused when it is not finite (inf, nan).
    metavar, parse, group : argparse's metavar, a parser for the flag's text, and the help section.
    cli : False for a field no flag sets. factory : a default_factory instead of ``default``.
    """
    metadata = {
        "help": help,
        _KEY: _Declared(label, flag, minimum, maximum, above, metavar, parse, group, cli),
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One option as every front end sees it."""

    owner: type  # the dataclass that declares it
    name: str
    type: Any  # the annotation, resolved
    default: Any
    help: str
    label: str
    flag: str
    choices: tuple[Any, ...]  # of a Literal annotation; () for any value
    minimum: float | None
    maximum: float | None
    above: float | None  # an open lower end: the value must be greater
    metavar: str | None
    parse: Callable[[str], Any] | None
    group: str | None
    cli: bool

    @property
    def optional(self) -> bool:
        """Whether None is a value (an ``X | None`` annotation)."""
        return type(None) in _union_args(self.type)

    @property
    def base(self) -> Any:
        """The annotation without None: ``int | None`` -> ``int``."""
        rest = [arg for arg in _union_args(self.type) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else self.type

    @property
    def kind(self) -> type:
        """The Python type of a single value: int, float, bool, str, Path, list or tuple."""
        base = self.base
        if self.choices:
            return type(self.choices[0])
        origin = typing.get_origin(base)
        return origin if isinstance(origin, type) else base if isinstance(base, type) else str


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    choices: list[Any] = []
    for arg in _union_args(annotation):
        if typing.get_origin(arg) is Literal:
            choices += typing.get_args(arg)
        elif arg is not type(None):
            return ()  # a Literal among other types (``"auto" | int``): any value of them
    return tuple(choices)


def _is_options(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


_READ: dict[type, tuple[Setting, ...]] = {}


def settings_of(cls: type) -> tuple[Setting, ...]:
    """Return the options of a dataclass in field order, those of nested options dataclasses in place."""
    if cls not in _READ:
        _READ[cls] = _read(cls)
    return _READ[cls]


def _read(cls: type) -> tuple[Setting, ...]:
    hints = typing.get_type_hints(cls)
    defaults = cls()
    found: list[Setting] = []
    for field in dataclasses.fields(cls):
        annotation = hints[field.name]
        if _is_options(annotation):
            found += settings_of(annotation)
            continue
        declared = field.metadata.get(_KEY)
        if not isinstance(declared, _Declared):
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with rvc.settings.setting()")
        found.append(
            Setting(
                owner=cls,
                name=field.name,
                type=annotation,
                default=getattr(defaults, field.name),
                help=field.metadata.get("help", ""),
                label=declared.label or field.name.replace("_", " ").capitalize(),
                flag=declared.flag or "--" + field.name.replace("_", "-"),
                choices=_literal_choices(annotation),
                minimum=declared.minimum,
                maximum=declared.maximum,
                above=declared.above,
                metavar=declared.metavar,
                parse=declared.parse,
                group=declared.group,
                cli=declared.cli,
            )
        )
    names = [s.name for s in found]
    if len(names) != len(set(names)):
        raise TypeError(f"{cls.__name__}: two options share a name in {names}")
    return tuple(found)


def setting_of(cls: type, name: str) -> Setting:
    """Return the option ``name`` of ``cls`` (nested ones included)."""
    for found in settings_of(cls):
        if found.name == name:
            return found
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def labels_of(cls: type) -> dict[str, str]:
    """Return each option's UI label, by name."""
    return {s.name: s.label for s in settings_of(cls)}


# ------------------------------------------------------------------ naming options in messages


def named(text: str, cls: type, name: Callable[[Setting], str]) -> str:
    """Return ``text`` with each ``$option`` of ``cls`` it mentions called ``name(option)``."""
    return UserError(text, options=cls).named(lambda option: _name_or(cls, option, name, option))


def _name_or(cls: type | None, option: str, name: Callable[[Setting], str], fallback: str) -> str:
    if cls is not None and _is_options(cls):
        try:
            return name(setting_of(cls, option))
        except KeyError:
            pass
    return fallback


def cli_message(error: UserError) -> str:
    """Return the error's message naming options by their CLI flags (``--batch-size``)."""
    return error.named(lambda option: _name_or(error.options, option, _flag, "--" + option.replace("_", "-")))


def ui_message(error: UserError, labels: Mapping[str, str] | None = None) -> str:
    """Return the error's message naming options by their UI labels, quoted (``'Batch size'``).

    labels : the labels of form fields that are not options (e.g. the experiment name).
    """
    extra = labels or {}
    return error.named(lambda option: _name_or(error.options, option, _label, f"'{extra.get(option, option)}'"))


def ui_help(option: Setting) -> str:
    """Return the option's help line as the web UI shows it (other options named by their labels)."""
    return named(option.help, option.owner, _label)


def _flag(option: Setting) -> str:
    return option.flag


def _label(option: Setting) -> str:
    return f"'{option.label}'"


# ------------------------------------------------------------------ checking


def problems_of(options: object) -> list[UserError]:
    """Return what the declarations say is wrong with ``options``: values outside their choices or range."""
    found = []
    for option in settings_of(type(options)):
        value = _value(options, option)
        if value is None and option.optional:
            continue
        if option.choices and value not in option.choices:
            choices = ", ".join(str(choice) for choice in option.choices)
            found.append(_error(option, f"${option.name} {value!r}: use one of {choices}"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            problem = _range_problem(option, value)
            if problem:
                found.append(_error(option, f"${option.name} {_number(value)} {problem}"))
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


def _error(option: Setting, message: str) -> UserError:
    return UserError(message, field=option.name, options=option.owner)


def _value(options: object, option: Setting) -> Any:
    """Return the value of ``option`` in ``options``, looking inside nested options dataclasses."""
    if option.owner is type(options):
        return getattr(options, option.name)
    for field in dataclasses.fields(options):  # type: ignore[arg-type]
        inner = getattr(options, field.name)
        if _is_options(type(inner)) and any(s.name == option.name for s in settings_of(type(inner))):
            return _value(inner, option)
    raise KeyError(option.name)


# ------------------------------------------------------------------ building


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """Return ``cls`` with the options ``values`` names (nested options dataclasses built from the same values)."""
    hints = typing.get_type_hints(cls)
    given: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        annotation = hints[field.name]
        if _is_options(annotation):
            given[field.name] = build(annotation, values)
        elif field.name in values:
            given[field.name] = values[field.name]
    return cls(**given)


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
    text = named(option.help, option.owner, _flag).replace("%", "%%")
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
        convert = functools.partial(_numbers, item, None)
    elif kind is tuple:
        items = typing.get_args(option.base)
        convert = functools.partial(_numbers, items[0], len(items))
    else:
        convert = kind
    if not option.optional:
        return convert
    return functools.partial(_or_none, convert)


def _switch(text: str) -> bool:
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _numbers(item: Callable[[str], Any], count: int | None, text: str) -> Any:
    values = [item(part) for part in text.replace(",", " ").split()]
    if count is None:
        return values
    if len(values) != count:
        raise argparse.ArgumentTypeError(f"expected {count} numbers, e.g. 0.8,0.99")
    return tuple(values)


def _or_none(convert: Callable[[str], Any], text: str) -> Any:
    return None if text.strip().lower() in ("none", "off", "") else convert(text)


# ------------------------------------------------------------------ the web UI's forms


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
            raise _error(option, "enter a number")
    if kind in (int, float):
        return _form_number(option, value)
    if kind in (list, tuple):
        return _form_numbers(option, value)
    if kind is Path:
        return Path(str(value).strip())
    if option.choices and value not in option.choices:
        text = ", ".join(str(choice) for choice in option.choices)
        raise _error(option, f"{value!r} is not one of {text}")
    return str(value).strip()


def _form_number(option: Setting, value: Any) -> int | float:
    if isinstance(value, bool):
        raise _error(option, "enter a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _error(option, f"{value!r} is not a number") from None
    if option.kind is not int:
        return number
    if number != int(number):
        low = f" of at least {option.minimum:g}" if option.minimum is not None else ""
        raise _error(option, f"enter a whole number{low} (got {number:g})")
    whole = int(number)
    return whole if not option.choices or whole in option.choices else _choice_error(option, whole)


def _choice_error(option: Setting, value: Any) -> Any:
    text = ", ".join(str(choice) for choice in option.choices)
    raise _error(option, f"{value!r} is not one of {text}")


def _form_numbers(option: Setting, value: Any) -> Any:
    try:
        return _numbers(typing.get_args(option.base)[0], 2 if option.kind is tuple else None, str(value or ""))
    except (ValueError, argparse.ArgumentTypeError):
        if option.kind is tuple:
            raise _error(option, "give two numbers, e.g. 0.8, 0.99") from None
        raise _error(option, f"{value!r} is not a list of numbers like 50, 100, 150") from None
