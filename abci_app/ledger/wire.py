"""Records: typed msgspec Structs that travel as canonical msgpack arrays.

A ``Record`` is written as the array of its fields in declaration order
(``array_like``), so its encoding has no map order to disagree about. The
field types a record may use are ``I64`` (a signed 64-bit ``int``), ``str``,
``bytes``, ``bool``, another ``Record``, and ``tuple[T, ...]`` of those;
decoding checks every type exactly (``bool`` is never accepted as ``int``).

Two ways in, on purpose:

* ``Record.decode`` is for bytes from outside (a transaction body, a p2p
  message): it decodes, re-encodes and compares, so only the canonical
  encoding is accepted. msgspec alone would accept a non-shortest integer, a
  ``str8`` where ``fixstr`` fits, and an array cut short where trailing fields
  have defaults; the comparison refuses all of them.
* ``decoder(cls).decode`` is for bytes the ledger wrote itself (the state): no
  re-check, C speed. Records in the store were encoded by ``Record.encode``,
  so they are canonical by construction.
"""

from __future__ import annotations

from typing import Annotated, Any, Self, TypeVar

import msgspec

from abci_app.ledger.codec import MAX_INT, MIN_INT

I64 = Annotated[int, msgspec.Meta(ge=MIN_INT, le=MAX_INT)]
"""An integer field: amounts, nonces and times are signed 64-bit in every client language."""

ENCODER = msgspec.msgpack.Encoder()
R = TypeVar("R", bound="Record")


class WireError(ValueError):
    """A wire value does not have the shape of the record, or is not canonical."""


class Record(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True, gc=False):
    """Base of every message body and stored record (frozen, compared and hashed by value)."""

    def encode(self) -> bytes:
        """The canonical bytes of this record."""
        return ENCODER.encode(self)

    def to_wire(self) -> list[Any]:
        """The record as a generic wire value (nested arrays), as ``codec.decode`` returns it."""
        value: list[Any] = msgspec.msgpack.decode(self.encode())
        return value

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode bytes from outside the ledger; refuse anything not in canonical form."""
        try:
            record: Self = decoder(cls).decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 in a str escapes DecodeError
            raise WireError(f"{cls.__name__}: {exc}") from exc
        if ENCODER.encode(record) != data:
            raise WireError(f"{cls.__name__}: bytes are not in canonical form")
        return record

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        """A record from a generic wire value (nested arrays)."""
        try:
            record: Self = msgspec.convert(value, cls, strict=True)
        except msgspec.ValidationError as exc:
            raise WireError(f"{cls.__name__}: {exc}") from exc
        return record


_DECODERS: dict[type[Record], msgspec.msgpack.Decoder[Any]] = {}


def decoder(cls: type[R]) -> msgspec.msgpack.Decoder[R]:
    """The trusted fast decoder of one record type (for bytes the ledger wrote itself)."""
    found = _DECODERS.get(cls)
    if found is None:
        found = _DECODERS[cls] = msgspec.msgpack.Decoder(cls)
    return found


def field_names(cls: type[Record]) -> tuple[str, ...]:
    return cls.__struct_fields__


def as_dict(record: Record) -> dict[str, Any]:
    """Field name -> value, one level deep (nested records stay records)."""
    return {name: getattr(record, name) for name in record.__struct_fields__}


def plain(value: Any) -> Any:
    """JSON-friendly form: records as objects (field order), bytes as lowercase hex, tuples as lists."""
    if isinstance(value, Record):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    return value
