"""Compiled policies as JSON and back: strict, typed by the dataclasses' own annotations.

`encode` writes what pydantic's `model_dump(mode="json")` writes for the same policy (enums by
value, dates in ISO form, tuples as lists), so the policy digest is one computation whether
the policy was validated in this process or read from the compiled-policy cache. `decode`
refuses anything the annotations do not allow: a missing or unknown field, a value of another
type, an enum value or date that does not parse. It checks types, not the schema's rules
(patterns, lengths, references): the data it reads was validated by the schema when it was
written, and is trusted as verifier's own state (see docs/policy.md, "The compiled-policy
cache").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class DecodeError(ValueError):
    """The data does not fit the dataclass."""


def encode(value: Any) -> Any:
    """`value` (a dataclass, enum, date, tuple, mapping or JSON scalar) as JSON-ready data.

    A dataclass may name fields it leaves out while they are None (`OMITTED_WHEN_NONE`).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        omitted: frozenset[str] = getattr(value, "OMITTED_WHEN_NONE", frozenset())
        return {
            f.name: encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.name in omitted and getattr(value, f.name) is None)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    return value


def from_model(cls: type[T], model: Any) -> T:
    """The one way a validated pydantic model becomes its compiled dataclass `cls` (same field
    names): its JSON dump, decoded, so that a compiled policy read from the cache and one
    compiled in this process are built the same way.

    Raises:
        DecodeError: the model's fields are not the dataclass's (a bug, caught by the tests).
    """
    return decode(cls, model.model_dump(mode="json"))


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def decode(cls: type[T], data: Any) -> T:
    """The dataclass `cls` built from `data`, refusing anything its annotations do not allow.

    Raises:
        DecodeError: a field is missing or unknown, or a value is of another type.
    """
    return typing.cast(T, _value(cls, data, str(getattr(cls, "__name__", cls))))


def _dataclass(cls: type[Any], data: Any, at: str) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(f"{at}: expected an object")
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = {f.name for f in fields}
    unknown = set(data) - names
    if unknown:
        raise DecodeError(f"{at}: unknown fields {sorted(unknown)}")
    omitted: frozenset[str] = getattr(cls, "OMITTED_WHEN_NONE", frozenset())
    values: dict[str, Any] = {}
    for f in fields:
        if f.name not in data:
            if f.name in omitted:
                values[f.name] = None
                continue
            raise DecodeError(f"{at}: missing field {f.name!r}")
        values[f.name] = _value(hints[f.name], data[f.name], f"{at}.{f.name}")
    return cls(**values)


def _value(kind: Any, data: Any, at: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        (real,) = [option for option in options if option is not type(None)]
        return _value(real, data, at)
    if origin is tuple:
        item, ellipsis = typing.get_args(kind)
        if ellipsis is not Ellipsis or not isinstance(data, list):
            raise DecodeError(f"{at}: expected a list")
        return tuple(_value(item, element, f"{at}[{i}]") for i, element in enumerate(data))
    if origin in (dict, Mapping):
        key_kind, item = typing.get_args(kind)
        if key_kind is not str or not isinstance(data, dict):
            raise DecodeError(f"{at}: expected an object")
        return {str(k): _value(item, v, f"{at}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _dataclass(kind, data, at)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(data)
        except ValueError:
            raise DecodeError(f"{at}: {data!r} is not a {kind.__name__}") from None
    if kind is dt.date:
        if not isinstance(data, str):
            raise DecodeError(f"{at}: expected a date")
        try:
            return dt.date.fromisoformat(data)
        except ValueError:
            raise DecodeError(f"{at}: {data!r} is not a date") from None
    if kind in (str, bool) and type(data) is kind:
        return data
    if kind is int and type(data) is int:
        return data
    raise DecodeError(f"{at}: expected {getattr(kind, '__name__', kind)}")
