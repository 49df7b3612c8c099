"""Frozen dataclasses that travel as canonical msgpack arrays.

A ``Record`` is written as the array of its fields in declaration order, so its
encoding has no map order to disagree about. Decoding checks the arity and the
type of every field (``bool`` is never accepted as ``int``); the field types a
record may use are ``int``, ``str``, ``bytes``, ``bool``, another ``Record``,
and ``tuple[T, ...]`` of those.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Self

from abci_app.ledger import codec


class WireError(ValueError):
    """A wire value does not have the shape of the record."""


@dataclasses.dataclass(frozen=True)
class Record:
    """Base of every message body and stored record."""

    @classmethod
    def _fields(cls) -> tuple[tuple[str, Any], ...]:
        cached = cls.__dict__.get("_field_types_cache")
        if cached is None:
            hints = typing.get_type_hints(cls)
            cached = tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))
            setattr(cls, "_field_types_cache", cached)  # noqa: B010 - per-class cache
        return cached

    def to_wire(self) -> list[Any]:
        return [_to_wire(getattr(self, name)) for name, _ in self._fields()]

    def encode(self) -> bytes:
        return codec.encode(self.to_wire())

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        fields = cls._fields()
        if not isinstance(value, list):
            raise WireError(f"{cls.__name__}: expected an array of {len(fields)} fields")
        if len(value) != len(fields):
            raise WireError(f"{cls.__name__}: expected {len(fields)} fields, got {len(value)}")
        kwargs = {
            name: _from_wire(tp, item, f"{cls.__name__}.{name}")
            for (name, tp), item in zip(fields, value, strict=True)
        }
        return cls(**kwargs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls.from_wire(codec.decode(data))


def _to_wire(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_wire()
    if isinstance(value, tuple):
        return [_to_wire(item) for item in value]
    return value


def _from_wire(tp: Any, value: Any, where: str) -> Any:
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_wire(value)
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise WireError(f"{where}: expected an array")
        return tuple(_from_wire(item_type, item, where) for item in value)
    if origin is types.UnionType or origin is typing.Union:
        for option in typing.get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _from_wire(option, value, where)
            except WireError:
                continue
        raise WireError(f"{where}: no alternative of {tp} matches")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireError(f"{where}: expected an integer")
        return value
    if tp in (str, bytes, bool):
        if type(value) is not tp:
            raise WireError(f"{where}: expected {tp.__name__}")
        return value
    raise WireError(f"{where}: unsupported field type {tp}")
