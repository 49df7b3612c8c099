"""ABCI socket framing and request decoding of the CometBFT v0.38 line.

Every protobuf message on an ABCI socket is preceded by its length as an
unsigned varint (protobuf's base-128 encoding), as CometBFT's ``protoio``
delimited reader and writer do. (Tendermint 0.34 used a zig-zag signed varint;
the two are incompatible.)

Decoding is lenient where CometBFT can be made to send what strict protobuf
refuses: ``abci_query?path=0xff`` on CometBFT's RPC hex-decodes the argument
into the query path, so the ``string`` field carries bytes that are not UTF-8,
which Python's protobuf rejects for the whole ``Request``. Such a frame is
re-read with a copy of the request messages whose string fields are ``bytes``,
so the server learns what was asked and can answer it (see ``decode_request``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import DecodeError

from abci_app.pb.tendermint.abci import types_pb2 as abci

# CometBFT refuses ABCI messages above 100 MiB; a FinalizeBlock request carries
# a whole block, so the limit must sit above the block size consensus parameter.
MAX_FRAME_BYTES = 100 * 1024 * 1024
# A uint64 needs at most ten base-128 digits.
MAX_VARINT_BYTES = 10


class FrameError(Exception):
    """The peer sent bytes that are not a well-formed ABCI frame (the stream cannot be resynchronised)."""


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


async def read_length(reader: asyncio.StreamReader, first: bytes) -> int:
    """The rest of a length prefix whose first byte ``first`` was already read.

    Raises ``FrameError`` for an over-long varint or a stream that ends inside it.
    """
    byte = first
    length = 0
    for index in range(MAX_VARINT_BYTES):
        if index:
            byte = await reader.read(1)
            if not byte:
                raise FrameError("connection closed inside a length prefix")
        length |= (byte[0] & 0x7F) << (7 * index)
        if not byte[0] & 0x80:
            return length
    raise FrameError("length prefix longer than 10 bytes")


async def read_body(reader: asyncio.StreamReader, length: int) -> bytes:
    """The ``length`` payload bytes of a frame; ``FrameError`` if the stream ends first."""
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"connection closed after {len(exc.partial)} of {length} frame bytes") from exc


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> bytes | None:
    """Read one frame; ``None`` on a clean end of stream between frames.

    Raises ``FrameError`` for an over-long varint, an oversized frame or a
    stream that ends inside a frame.
    """
    first = await reader.read(1)
    if not first:
        return None
    length = await read_length(reader, first)
    if length > max_bytes:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    return await read_body(reader, length)


# -- request decoding ----------------------------------------------------------------


@dataclass(frozen=True)
class Undecodable:
    """A frame whose payload strict protobuf refuses as a ``Request``.

    ``kind`` names the request (``"query"``, ...) when the lenient reading
    could tell, and ``lenient`` is that reading: a message of the same shape
    as ``abci.Request`` whose request string fields are ``bytes``.
    """

    reason: str
    kind: str | None = None
    lenient: Any = None


def decode_request(payload: bytes) -> abci.Request | Undecodable:
    """Decode a frame payload; never raises.

    Returns the strict ``abci.Request`` when protobuf accepts it, otherwise an
    ``Undecodable`` that says why and, when the bytes are a ``Request`` apart
    from strings that are not UTF-8, which request it is.
    """
    request = abci.Request()
    try:
        request.ParseFromString(payload)
    except DecodeError:
        pass
    else:
        return request
    lenient = lenient_request_class()()
    try:
        lenient.ParseFromString(payload)
    except DecodeError as exc:
        return Undecodable(reason=f"not a protobuf Request: {exc}")
    kind = lenient.WhichOneof("value")
    if kind is None:
        return Undecodable(reason="not a protobuf Request")
    return Undecodable(reason=f"{kind} request carries a string that is not valid UTF-8", kind=kind,
                       lenient=getattr(lenient, kind))


@cache
def lenient_request_class() -> Any:
    """``tendermint.abci.Request`` with every ``string`` field of the request messages read as ``bytes``.

    Built once from the generated descriptors in a private descriptor pool, so
    the generated classes (and the default pool) stay as they are.
    """
    pool = descriptor_pool.DescriptorPool()
    for proto in _file_protos(abci.DESCRIPTOR, set()):
        if proto.name == abci.DESCRIPTOR.name:
            for message in proto.message_type:
                if not message.name.startswith("Request"):
                    continue
                for field in message.field:
                    if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                        field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tendermint.abci.Request"))


def _file_protos(file: FileDescriptor, seen: set[str]) -> Iterator[descriptor_pb2.FileDescriptorProto]:
    """``file`` and its imports as descriptor protos, imports first."""
    for dependency in file.dependencies:
        yield from _file_protos(dependency, seen)
    if file.name not in seen:
        seen.add(file.name)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        yield proto
