"""Canonical msgpack: the subset, shortest forms, and everything the decoder refuses."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest

from abci_app.ledger import codec
from abci_app.ledger.codec import MAX_INT, MIN_INT, CodecError


def nest(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, 1, -1, 127, 128, -32, -33, 255, 65_536, MAX_INT, MIN_INT, "", "zone-a", "é" * 40,
     b"", b"\x00\xff", b"x" * 300, [], [1, "a", b"b", None, [True, []]], nest(16)],
)
def test_roundtrip(value: Any) -> None:
    data = codec.encode(value)
    assert data == msgpack.packb(value, use_bin_type=True)
    assert codec.decode(data) == value


def test_tuples_are_arrays_and_types_survive() -> None:
    data = codec.encode((1, ("a", b"a")))
    assert data == codec.encode([1, ["a", b"a"]])
    decoded = codec.decode(data)
    assert decoded == [1, ["a", b"a"]]
    assert isinstance(decoded, list) and type(decoded[1][0]) is str and type(decoded[1][1]) is bytes  # type: ignore[index]
    assert codec.decode(codec.encode(True)) is True


@pytest.mark.parametrize("value", [{}, {"a": 1}, 1.5, 0.0, {1}, object(), MAX_INT + 1, MIN_INT - 1, [1 << 64],
                                   nest(17), bytearray(b"x"), msgpack.ExtType(5, b""), [msgpack.ExtType(1, b"abc")]])
def test_encode_rejects_outside_subset(value: Any) -> None:
    with pytest.raises(CodecError):
        codec.encode(value)


@pytest.mark.parametrize(
    "data",
    [
        b"\x80",  # empty map
        b"\x81\xa1a\x01",  # map
        b"\x91\x81\x01\x02",  # map inside an array
        b"\xca\x3f\xc0\x00\x00",  # float32
        b"\xcb" + struct.pack(">d", 1.5),  # float64
        b"\xd4\x01\x00",  # fixext1
        b"\xd6\xff" + struct.pack(">I", 1),  # timestamp ext
        b"\xc7\x00\x05",  # ext8 of length 0 (max_ext_len=0 lets it through msgpack)
        b"\x91\xc7\x00\x05",  # the same inside an array
        b"\x01\x02",  # trailing bytes
        b"\x91\x01\x00",  # trailing byte after an array
        b"",  # nothing
        b"\x92\x01",  # truncated array
        b"\xa3ab",  # truncated string
        b"\xc1",  # reserved byte
        b"\xcf" + struct.pack(">Q", MAX_INT + 1),  # uint64 beyond int64
        b"\xcf" + struct.pack(">Q", (1 << 64) - 1),
        b"\xa1\xff",  # string that is not UTF-8
        msgpack.packb(nest(17)),  # nested too deeply
    ],
)
def test_decode_rejects(data: bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\xcc\x05",  # uint8 5 (fixint is shortest)
        b"\xcd\x00\x05",  # uint16 5
        b"\xcf" + struct.pack(">Q", 1),  # uint64 1
        b"\xd0\xff",  # int8 -1 (negative fixint is shortest)
        b"\xd3" + struct.pack(">q", -1),  # int64 -1
        b"\xd1" + struct.pack(">h", 100),  # int16 for a positive value
        b"\xd9\x03abc",  # str8 for a short string
        b"\xda\x00\x03abc",  # str16
        b"\xc5\x00\x01x",  # bin16 for one byte
        b"\xdc\x00\x01\x01",  # array16 of one element
        b"\xdd\x00\x00\x00\x00",  # array32, empty
    ],
)
def test_decode_rejects_non_canonical_widths(data: bytes) -> None:
    assert msgpack.unpackb(data, raw=False) is not None  # plain msgpack reads it
    with pytest.raises(CodecError, match="canonical form"):
        codec.decode(data)


def test_decode_accepts_int64_extremes() -> None:
    assert codec.decode(codec.encode(MAX_INT)) == MAX_INT
    assert codec.encode(MIN_INT) == b"\xd3" + struct.pack(">q", MIN_INT)
    assert codec.decode(b"\xd3" + struct.pack(">q", MIN_INT)) == MIN_INT


def test_decode_max_depth_is_a_parameter() -> None:
    data = codec.encode(nest(3))
    assert codec.decode(data, max_depth=3) == nest(3)
    with pytest.raises(CodecError):
        codec.decode(data, max_depth=2)
