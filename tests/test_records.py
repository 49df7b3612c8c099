"""Records (msgspec Structs) encode byte-for-byte as the reflection encoder they replaced did,
and only canonical bytes decode at the boundary."""

from __future__ import annotations

import struct
import typing
from typing import Annotated, Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import abci_app.ledger.router  # noqa: F401 - imports every module, so every record class exists
import node.p2p.messages  # noqa: F401 - the feed records
from abci_app.ledger.codec import MAX_INT, MIN_INT
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.params import Params
from abci_app.ledger.wire import Record, WireError, decoder


def all_record_types() -> list[type[Record]]:
    found: dict[str, type[Record]] = {}
    pending = list(Record.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__struct_fields__:
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


RECORD_TYPES = all_record_types()


def _hints(cls: type[Record]) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(name, hints[name]) for name in cls.__struct_fields__]


def _strategy(tp: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    if typing.get_origin(tp) is Annotated:
        (base, *_meta) = typing.get_args(tp)
        assert base is int
        return st.integers(MIN_INT, MAX_INT)
    if tp is str:
        return st.text(max_size=40)
    if tp is bytes:
        return st.binary(max_size=70)
    if tp is bool:
        return st.booleans()
    if isinstance(tp, type) and issubclass(tp, Record):
        return records(tp, depth + 1)
    if typing.get_origin(tp) is tuple:
        (item, _ellipsis) = typing.get_args(tp)
        return st.lists(_strategy(item, depth + 1), max_size=3 if depth < 2 else 1).map(tuple)
    raise AssertionError(f"record field type {tp} has no strategy")


def records(cls: type[Record], depth: int = 0) -> st.SearchStrategy[Record]:
    fields = {name: _strategy(tp, depth) for name, tp in _hints(cls)}
    return st.builds(cls, **fields)


def reference_wire(value: Any) -> Any:
    """What the former reflection encoder wrote: fields in declaration order, tuples as arrays."""
    if isinstance(value, Record):
        return [reference_wire(getattr(value, name)) for name in value.__struct_fields__]
    if isinstance(value, tuple):
        return [reference_wire(item) for item in value]
    return value


def reference_bytes(record: Record) -> bytes:
    data: bytes = msgpack.packb(reference_wire(record), use_bin_type=True)
    return data


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_basic_encoding_is_byte_identical_to_the_reference(cls: type[Record], data: st.DataObject) -> None:
    record = data.draw(records(cls))
    expected = reference_bytes(record)
    assert record.encode() == expected
    assert cls.decode(expected) == record
    assert decoder(cls).decode(expected) == record
    assert record.to_wire() == msgpack.unpackb(expected, raw=False)


def test_every_module_record_is_covered() -> None:
    names = {cls.__name__ for cls in RECORD_TYPES}
    assert {"Account", "Order", "Trade", "SettlementReport", "PlaceOrder", "AcceptOffer", "FeedBody"} <= names


def account() -> Account:
    return Account(id="ab" * 20, pubkey=b"k" * 32, role="consumer", zone="z", dso="cd" * 20, active=True,
                   balance=5, locked=0, debt=0, nonce=1, registered_at=0)


def test_invalid_non_shortest_integer() -> None:
    good = account().encode()
    # balance 5 as uint16 instead of a positive fixint: msgspec alone would accept it.
    bad = good.replace(b"\xc3\x05\x00", b"\xc3\xcd\x00\x05\x00", 1)
    assert bad != good and msgspec_accepts(Account, bad)
    with pytest.raises(WireError, match="canonical"):
        Account.decode(bad)


def test_invalid_truncated_array_of_a_record_with_defaults() -> None:
    full = Params().encode()
    truncated = msgpack.packb(reference_wire(Params())[:-1], use_bin_type=True)
    assert msgspec_accepts(Params, truncated)
    assert Params.decode(full) == Params()
    with pytest.raises(WireError, match="canonical"):
        Params.decode(truncated)


def test_invalid_extra_field() -> None:
    extra = msgpack.packb([*reference_wire(account()), 0], use_bin_type=True)
    with pytest.raises(WireError, match="at most length"):
        Account.decode(extra)


def test_invalid_bool_as_integer() -> None:
    wire = reference_wire(account())
    wire[6] = True  # balance
    with pytest.raises(WireError, match="Expected `int`, got `bool`"):
        Account.decode(msgpack.packb(wire, use_bin_type=True))


def test_invalid_integer_beyond_64_bits_signed() -> None:
    wire = reference_wire(account())
    raw = msgpack.packb(wire, use_bin_type=True).replace(b"\xc3\x05", b"\xc3\xcf" + struct.pack(">Q", MAX_INT + 1), 1)
    with pytest.raises(WireError, match="<= 9223372036854775807"):
        Account.decode(raw)


def test_invalid_string_as_bytes() -> None:
    wire = reference_wire(account())
    wire[1] = "k" * 32  # pubkey as str
    with pytest.raises(WireError, match="Expected `bytes`, got `str`"):
        Account.decode(msgpack.packb(wire, use_bin_type=True))


def msgspec_accepts(cls: type[Record], data: bytes) -> bool:
    """The trap the boundary check guards against: the fast decoder alone takes these bytes."""
    decoder(cls).decode(data)
    return True
