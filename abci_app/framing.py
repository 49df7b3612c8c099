"""ABCI socket framing of the CometBFT v0.38 line.

Every protobuf message on an ABCI socket is preceded by its length as an
unsigned varint (protobuf's base-128 encoding), as CometBFT's ``protoio``
delimited reader and writer do. (Tendermint 0.34 used a zig-zag signed varint;
the two are incompatible.)
"""

from __future__ import annotations

import asyncio

# CometBFT refuses ABCI messages above 100 MiB; a FinalizeBlock request carries
# a whole block, so the limit must sit above the block size consensus parameter.
MAX_FRAME_BYTES = 100 * 1024 * 1024
# A uint64 needs at most ten base-128 digits.
MAX_VARINT_BYTES = 10


class FrameError(Exception):
    """The peer sent bytes that are not a well-formed ABCI frame."""


def encode_uvarint(value: int) -> bytes:
    """Base-128 little-endian varint of a non-negative integer."""
    if value < 0:
        raise ValueError("uvarint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frame(payload: bytes) -> bytes:
    """One length-delimited frame."""
    return encode_uvarint(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> bytes | None:
    """Read one frame; ``None`` on a clean end of stream between frames.

    Raises ``FrameError`` for an over-long varint, an oversized frame or a
    stream that ends inside a frame.
    """
    length = 0
    for index in range(MAX_VARINT_BYTES):
        byte = await reader.read(1)
        if not byte:
            if index == 0:
                return None
            raise FrameError("connection closed inside a length prefix")
        length |= (byte[0] & 0x7F) << (7 * index)
        if not byte[0] & 0x80:
            break
    else:
        raise FrameError("length prefix longer than 10 bytes")
    if length > max_bytes:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"connection closed after {len(exc.partial)} of {length} frame bytes") from exc
