"""Declaring an option: :func:`setting` on a dataclass field, read back as :class:`Setting` by :func:`settings_of`."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

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
    step: float | None
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
    step: float | None = None,
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
    step : the web UI's increment (a slider's step); unset: the widget's own.
    metavar, parse, group : argparse's metavar, a parser for the flag's text, and the help section.
    cli : False for a field no flag sets. factory : a default_factory instead of ``default``.
    """
    metadata = {
        "help": help,
        _KEY: _Declared(label, flag, minimum, maximum, above, step, metavar, parse, group, cli),
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
    step: float | None  # the web UI's increment (a slider's step)
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


def is_options(annotation: Any) -> bool:
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
        if is_options(annotation):
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
                step=declared.step,
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


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """Return ``cls`` with the options ``values`` names (nested options dataclasses built from the same values)."""
    hints = typing.get_type_hints(cls)
    given: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        annotation = hints[field.name]
        if is_options(annotation):
            given[field.name] = build(annotation, values)
        elif field.name in values:
            given[field.name] = values[field.name]
    return cls(**given)
