"""Fuzzed ABCI frames through AbciServer's real transport (a loopback socket).

Requests of every kind are generated from the protobuf descriptors (any field,
any value, request strings that are not UTF-8 included), some are mutated
byte by byte, and each batch ends with an Echo and a Flush. Oracle: every frame
gets exactly one response, in order, of its own kind or an ABCI Exception
(never an Exception for Query or CheckTx, which CometBFT must never see); the
connection stays open. A second test corrupts the framing itself: the server
answers the frames before the damage, closes that one connection, and keeps
serving new ones. Counts are printed.
"""

from __future__ import annotations

import json
import logging
import random
import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abci_app.app import LedgerApplication
from abci_app.framing import Undecodable, decode_request, encode_uvarint, frame, lenient_request_class
from abci_app.ledger.store import MemoryBackend
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.abci_client import AbciClient
from tests.fuzz_ledger import TEMPLATES, Context, KeyRing, sign_raw
from tests.harness import CHAIN_ID, GENESIS_TIME
from tests.market_harness import market_app_state
from tests.server_thread import ServerThread

pytestmark = pytest.mark.fuzz

KINDS = [field.name for field in abci.Request.DESCRIPTOR.oneofs_by_name["value"].fields]
# Calls whose answer CometBFT takes as is: an Exception there would stop the node.
NEVER_EXCEPTION = {"query", "check_tx", "echo", "flush"}
FUZZ_SETTINGS = settings(max_examples=500, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def corpus() -> list[bytes]:
    """Valid signed transactions of every message type (the fuzz_ledger templates)."""
    context = Context(rng=random.Random(7), ring=KeyRing(), time=GENESIS_TIME + 60)
    txs = []
    for _, template in sorted(TEMPLATES.items()):
        signer, msg = template(context)
        txs.append(sign_raw(CHAIN_ID, msg.TYPE, msg.to_wire(), context.ring.keys[signer], 1))
    return txs


TXS = corpus()


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(st.integers(-3, 1_000), st.sampled_from([2**63 - 1, -(2**63), 2**62]),
                         st.integers(-(2**63), 2**63 - 1))
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.one_of(st.integers(0, 1_000), st.integers(0, 2**64 - 1))
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.integers(-(2**31), 2**31 - 1)
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from(sorted(field.enum_type.values_by_number)), st.integers(-5, 100))
    if kind == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=40)
    if field.name in ("tx", "txs"):
        return st.one_of(st.sampled_from(TXS), st.binary(max_size=300))
    if field.name == "path":  # the lenient class reads request strings as bytes
        return st.one_of(st.sampled_from([b"/params", b"/supply", b"/chain", b"/operators", b"\xff", b""]),
                         st.binary(max_size=80))
    return st.binary(max_size=64)


def fill(data: st.DataObject, message: Any, depth: int) -> None:
    """Set a random subset of ``message``'s fields to random values (recursively, at most 3 deep)."""
    for field in message.DESCRIPTOR.fields:
        if not data.draw(st.booleans()):
            continue
        if field.message_type is not None:
            if depth >= 3:
                continue
            if field.is_repeated:
                for _ in range(data.draw(st.integers(0, 2))):
                    fill(data, getattr(message, field.name).add(), depth + 1)
            else:
                fill(data, getattr(message, field.name), depth + 1)
                getattr(message, field.name).SetInParent()
        elif field.is_repeated:
            getattr(message, field.name).extend(data.draw(st.lists(scalar(field), max_size=4)))
        else:
            setattr(message, field.name, data.draw(scalar(field)))


@st.composite
def request_payloads(draw: st.DrawFn) -> bytes:
    """A serialized Request of a random kind, sometimes mutated byte by byte."""
    message = lenient_request_class()()
    kind = draw(st.sampled_from(KINDS))
    getattr(message, kind).SetInParent()
    fill(draw(st.data()), getattr(message, kind), 1)
    payload: bytes = message.SerializeToString()
    mutation = draw(st.sampled_from(["none", "none", "flip", "truncate", "insert", "random"]))
    if mutation == "flip" and payload:
        position = draw(st.integers(0, len(payload) - 1))
        payload = payload[:position] + bytes([payload[position] ^ draw(st.integers(1, 255))]) + payload[position + 1 :]
    elif mutation == "truncate" and payload:
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
    elif mutation == "insert":
        position = draw(st.integers(0, len(payload)))
        payload = payload[:position] + draw(st.binary(min_size=1, max_size=8)) + payload[position:]
    elif mutation == "random":
        payload = draw(st.binary(max_size=200))
    return payload


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    logging.getLogger("gridledger").setLevel(logging.CRITICAL)  # rejections and app failures are expected
    with ServerThread(LedgerApplication(MemoryBackend())) as running:
        client = AbciClient("127.0.0.1", running.port)
        init = abci.RequestInitChain(chain_id=CHAIN_ID, initial_height=1,
                                     app_state_bytes=json.dumps(market_app_state()).encode())
        init.time.seconds = GENESIS_TIME
        assert client.request(abci.Request(init_chain=init)).WhichOneof("value") == "init_chain"
        finalize = abci.RequestFinalizeBlock(height=1, txs=TXS)
        finalize.time.seconds = GENESIS_TIME + 60
        assert client.request(abci.Request(finalize_block=finalize)).WhichOneof("value") == "finalize_block"
        assert client.request(abci.Request(commit=abci.RequestCommit())).WhichOneof("value") == "commit"
        client.close()
        yield running
    logging.getLogger("gridledger").setLevel(logging.NOTSET)


def expected_kind(payload: bytes) -> str | None:
    """The kind the server must answer with (None: an Exception is the only answer)."""
    decoded = decode_request(payload)
    if isinstance(decoded, Undecodable):
        return decoded.kind if decoded.kind in ("query", "echo") else None
    return decoded.WhichOneof("value")


def test_fuzz_frames_each_get_one_answer_and_the_connection_stays(server: ServerThread,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    counts: Counter[str] = Counter()
    client = AbciClient("127.0.0.1", server.port, timeout=30)

    @FUZZ_SETTINGS
    @given(st.lists(request_payloads(), min_size=1, max_size=8))
    def batch(payloads: list[bytes]) -> None:
        end = abci.Request(echo=abci.RequestEcho(message="end of batch")).SerializeToString()
        flush = abci.Request(flush=abci.RequestFlush()).SerializeToString()
        client.send_raw(b"".join(frame(p) for p in [*payloads, end, flush]))
        for payload in payloads:
            response = client._read_response()
            answered = response.WhichOneof("value")
            expected = expected_kind(payload)
            counts["frames"] += 1
            counts["undecodable by strict protobuf"] += isinstance(decode_request(payload), Undecodable)
            counts[f"answered {answered if answered == 'exception' else 'as asked'}"] += 1
            assert answered in (expected, "exception"), (payload.hex(), expected, answered)
            assert not (answered == "exception" and expected in NEVER_EXCEPTION), response.exception.error
        assert client._read_response().echo.message == "end of batch"
        assert client._read_response().WhichOneof("value") == "flush"

    batch()
    client.close()
    assert server.read(lambda: server.server.refused_connections) == 0
    with capsys.disabled():
        print(f"\nABCI frames: {dict(sorted(counts.items()))}")


@st.composite
def damaged_streams(draw: st.DrawFn) -> tuple[bytes, int]:
    """(stream, how many whole frames precede the damage): good frames, then a broken one."""
    good = draw(st.lists(st.sampled_from([b"/params", b"/chain", b"\xff"]), max_size=4))
    frames = b"".join(frame(lenient_request_class()(query={"path": path}).SerializeToString()) for path in good)
    damage = draw(st.sampled_from(["long-prefix", "huge", "short-body", "cut-prefix"]))
    if damage == "long-prefix":
        broken = b"\xff" * draw(st.integers(11, 20))
    elif damage == "huge":
        broken = encode_uvarint(draw(st.integers(100 * 2**20 + 1, 2**64 - 1)))
    elif damage == "short-body":
        size = draw(st.integers(1, 5_000))
        broken = encode_uvarint(size) + draw(st.binary(max_size=size - 1))
    else:
        broken = b"\x80" * draw(st.integers(1, 9))
    return frames + broken, len(good)


def test_fuzz_damaged_framing_closes_only_that_connection(server: ServerThread,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    counts: Counter[str] = Counter()

    @settings(FUZZ_SETTINGS, max_examples=150)
    @given(damaged_streams())
    def stream(case: tuple[bytes, int]) -> None:
        data, whole = case
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # the stream ends in the damage
            reader = AbciClient.__new__(AbciClient)
            reader.sock, reader.buffer = sock, b""
            for _ in range(whole):
                assert reader._read_response().WhichOneof("value") == "query"
            assert "malformed frame" in reader._read_response().exception.error
            assert reader.is_closed_by_server()
        counts["streams"] += 1
        counts["frames answered before the damage"] += whole
        probe = AbciClient("127.0.0.1", server.port)
        assert probe.request(abci.Request(echo=abci.RequestEcho(message="ok"))).echo.message == "ok"
        probe.close()

    stream()
    with capsys.disabled():
        print(f"\ndamaged ABCI streams: {dict(counts)}")
