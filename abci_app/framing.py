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


class FrameReader:
    """Frames from a stream, read in chunks into a buffer of its own.

    Knowing what is buffered lets the server tell whether another request is already waiting: then it
    answers both in one write; if none is, it writes everything it owes before waiting for more (the peer
    may be waiting for those answers). CometBFT pipelines CheckTx requests, so under load one write (one
    system call) carries many answers.
    """

    CHUNK = 256 * 1024

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buffer = bytearray()
        self._start = 0
        """Bytes before this offset are consumed (compacted away in bulk, not per frame)."""

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buffer) - self._start

    async def fill(self) -> bool:
        """Wait for more bytes; False at the end of the stream."""
        chunk = await self._reader.read(self.CHUNK)
        if not chunk:
            return False
        if self._start > len(self._buffer) // 2:
            del self._buffer[:self._start]
            self._start = 0
        self._buffer += chunk
        return True

    def next_frame(self, max_bytes: int) -> bytes | None:
        """The next frame's payload if it is wholly buffered (no waiting, so no timeout is needed), else None.

        Raises ``FrameError`` for an over-long varint or a frame above ``max_bytes``.
        """
        length = 0
        for index in range(min(self.buffered, MAX_VARINT_BYTES)):
            byte = self._buffer[self._start + index]
            length |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if length > max_bytes:
                    raise FrameError(f"frame of {length} bytes exceeds the limit of {max_bytes}")
                begin = self._start + index + 1
                if len(self._buffer) - begin < length:
                    return None
                self._start = begin + length
                return bytes(self._buffer[begin:begin + length])
        if self.buffered >= MAX_VARINT_BYTES:
            raise FrameError("length prefix longer than 10 bytes")
        return None

    async def length(self) -> int:
        """The next frame's length prefix, reading more as needed.

        Raises ``FrameError`` for an over-long varint or a stream that ends inside it.
        """
        while True:
            length = 0
            for index in range(min(self.buffered, MAX_VARINT_BYTES)):
                byte = self._buffer[self._start + index]
                length |= (byte & 0x7F) << (7 * index)
                if not byte & 0x80:
                    self._start += index + 1
                    return length
            if self.buffered >= MAX_VARINT_BYTES:
                raise FrameError("length prefix longer than 10 bytes")
            if not await self.fill():
                raise FrameError("connection closed inside a length prefix")

    async def body(self, length: int) -> bytes:
        """The ``length`` payload bytes of a frame; ``FrameError`` if the stream ends first."""
        while self.buffered < length:
            if not await self.fill():
                raise FrameError(f"connection closed after {self.buffered} of {length} frame bytes")
        payload = bytes(self._buffer[self._start:self._start + length])
        self._start += length
        return payload


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
