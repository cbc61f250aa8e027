"""Reading and writing the experiment folder's JSON records as typed dataclasses.

One way for every record: ``read_object`` gives the file's JSON object or a ``UserError`` that
names the file and says what to do (missing, unreadable, not JSON); ``from_json`` builds the
dataclass, checking each field against its annotation, so a damaged or hand-edited file is
refused where it is read, by name, instead of failing later as a ``KeyError`` deep in a stage.
Keys the dataclass does not know are ignored: a newer version may add fields.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rvc.errors import UserError
from rvc.fileio import atomic_write_json

T = TypeVar("T")


class _Mismatch(Exception):
    """A value that does not fit its field; carries where in the record it is."""

    def __init__(self, where: str, expected: str, got: Any = dataclasses.MISSING) -> None:
        shown = "" if got is dataclasses.MISSING else f" (got {_shown(got)})"
        super().__init__(f"{where}: expected {expected}{shown}")


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def damaged(path: Path, why: str, remedy: str) -> UserError:
    return UserError(f"{path} is damaged ({why}): {remedy}")


def read_object(path: Path, missing: str, remedy: str) -> dict[str, Any]:
    """Return the JSON object in ``path``; UserError naming it when it is missing (``missing``: what to do)
    or damaged (``remedy``: what to do)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path} does not exist: {missing}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise damaged(path, f"cannot be read: {error}", remedy) from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise damaged(path, f"not JSON: {error}", remedy) from None
    if not isinstance(data, dict):
        raise damaged(path, "not a JSON object", remedy)
    return data


def from_json(cls: type[T], data: Mapping[str, Any], path: Path, remedy: str, *, where: str = "") -> T:
    """Build the dataclass ``cls`` from a record's JSON object; UserError naming ``path`` when it does not fit.

    where : the object's place in the file (``"train."``), for the field named in the error.
    """
    try:
        return _build(cls, data, where)
    except _Mismatch as error:
        raise damaged(path, str(error), remedy) from None


def load(cls: type[T], path: Path, missing: str, remedy: str, version: int) -> T:
    """Read the record ``cls`` of format ``version`` from ``path`` (a missing file: ``missing``).

    A file of another format version is refused: its fields can no longer be trusted by name.
    """
    data = read_object(path, missing, remedy)
    if data.get("version", version) != version:
        raise damaged(path, f"unsupported version {data.get('version')!r}", remedy)
    refuse_non_finite(data, path, remedy)
    return from_json(cls, data, path, remedy)


def refuse_non_finite(data: Any, path: Path, remedy: str, where: str = "") -> None:
    """Refuse a NaN or infinite number anywhere in ``data`` (Python's JSON reads ``NaN`` and ``1e999``; the
    stages that add or compare durations would carry it into their messages and choices), naming where."""
    if isinstance(data, float) and not math.isfinite(data):
        raise damaged(path, f"{where or 'a value'}: expected a finite number (got {data})", remedy)
    if isinstance(data, Mapping):
        for key, value in data.items():
            refuse_non_finite(value, path, remedy, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            refuse_non_finite(value, path, remedy, f"{where}[{i}]")


def write(path: Path, record: Any) -> None:
    """Write a dataclass record as indented JSON, atomically (a reader never sees half a file)."""
    atomic_write_json(path, dataclasses.asdict(record))


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, Mapping):
        raise _Mismatch(where.removesuffix(".") or "the record", "an object")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{where}{field.name}"
        if field.name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise _Mismatch(key, "a value (the field is missing)")
            continue
        values[field.name] = _convert(hints[field.name], data[field.name], key)
    return cls(**values)


def _convert(kind: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _convert(option, value, where)
            except _Mismatch:
                continue
        raise _Mismatch(where, " or ".join(_describe(a) for a in args), value)
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch(where, " or ".join(repr(a) for a in args), value)
    if origin in (tuple, list, dict):
        return _convert_container(origin, args, value, where)
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, f"{where}.")  # type: ignore[arg-type]
    return _convert_scalar(kind, value, where)


def _convert_container(origin: type, args: tuple[Any, ...], value: Any, where: str) -> Any:
    """Convert a JSON list to a tuple or list of ``args``, or a JSON object to a dict of ``args[1]``."""
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch(where, "an object")
        return {key: _convert(args[1], item, f"{where}.{key}") for key, item in value.items()}
    accepted = (list, tuple) if origin is tuple else list
    if not isinstance(value, accepted):
        raise _Mismatch(where, "a list")
    if origin is list:
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    # JSON has no tuples: a list, of any length for tuple[X, ...]
    kinds = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
    if len(kinds) != len(value):
        raise _Mismatch(where, f"a list of {len(kinds)} values")
    return tuple(_convert(k, item, f"{where}[{i}]") for i, (k, item) in enumerate(zip(kinds, value, strict=True)))


def _convert_scalar(kind: Any, value: Any, where: str) -> Any:
    if kind is type(None):
        if value is None:
            return None
        raise _Mismatch(where, "null")
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)  # JSON writes 2.0 as 2
    if kind in (int, str, bool) and isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise _Mismatch(where, _describe(kind), value)


def _describe(kind: Any) -> str:
    return "null" if kind is type(None) else getattr(kind, "__name__", str(kind))
