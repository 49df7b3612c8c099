"""The socket server answers ABCI, survives hostile connections and caps what they can hold."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from abci_app.app import LedgerApplication
from abci_app.framing import MAX_FRAME_BYTES, encode_uvarint, frame, lenient_request_class
from abci_app.ledger.store import MemoryBackend
from abci_app.pb.tendermint.abci import types_pb2 as abci
from abci_app.server import MAX_BUFFERED_BYTES, MAX_CONNECTIONS
from tests.abci_client import AbciClient
from tests.app_process import AppProcess
from tests.harness import Chain
from tests.server_thread import ServerThread

CODE_BAD_QUERY = 100
CODE_INTERNAL = 1


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AppProcess]:
    app = AppProcess(tmp_path / "db")
    yield app
    app.stop()


def connect(server: AppProcess | ServerThread) -> AbciClient:
    return AbciClient("127.0.0.1", server.port)


def echo(client: AbciClient, message: str) -> str:
    response = client.request(abci.Request(echo=abci.RequestEcho(message=message)))
    reply: str = response.echo.message
    return reply


def read_response(client: AbciClient) -> abci.Response:
    response: abci.Response = client._read_response()
    return response


def lenient(**request: dict[str, Any]) -> bytes:
    """A Request frame whose request string fields may hold any bytes (strict protobuf cannot write those)."""
    message = lenient_request_class()()
    for kind, fields in request.items():
        for name, value in fields.items():
            setattr(getattr(message, kind), name, value)
    return frame(message.SerializeToString())


def flush_frame() -> bytes:
    return frame(abci.Request(flush=abci.RequestFlush()).SerializeToString())


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_basic(server: AppProcess) -> None:
    client = connect(server)
    assert echo(client, "hello") == "hello"
    info = client.request(abci.Request(info=abci.RequestInfo())).info
    assert (info.data, info.last_block_height, info.last_block_app_hash) == ("gridledger", 0, b"")
    genesis = Chain()
    init = abci.RequestInitChain(chain_id=genesis.chain_id, initial_height=1,
                                 app_state_bytes=json.dumps(genesis.app_state).encode())
    init.time.seconds = genesis.time
    response = client.request(abci.Request(init_chain=init))
    assert response.init_chain.app_hash == genesis.genesis_hash
    client.close()


@pytest.mark.parametrize(
    ("garbage", "logged"),
    [
        (b"\xff" * 11, "length prefix longer than 10 bytes"),
        (encode_uvarint(200 * 1024 * 1024), "exceeds the limit"),
        (encode_uvarint(100) + b"x" * 10, "closed after 10 of 100 frame bytes"),
    ],
    ids=["long-varint", "oversized", "truncated"],
)
def test_invalid_frame_closes_only_that_connection(server: AppProcess, garbage: bytes, logged: str) -> None:
    """A stream that cannot be resynchronised is closed (with an Exception saying why); the others go on."""
    bystander = connect(server)
    assert echo(bystander, "before") == "before"
    hostile = connect(server)
    hostile.send_raw(garbage)
    if logged.startswith("closed after"):
        hostile.sock.shutdown(socket.SHUT_WR)  # end of stream inside the frame
    assert "malformed frame" in read_response(hostile).exception.error
    assert hostile.is_closed_by_server()
    server.wait_for_log(logged)
    # The other connection, and new ones, are still served.
    assert echo(bystander, "after") == "after"
    assert echo(connect(server), "new") == "new"
    assert server.proc.poll() is None


@pytest.mark.parametrize(
    ("request_frame", "error"),
    [
        (frame(b"\xff\xff\xff\xff"), "not a protobuf Request"),
        (frame(b"\x08\x01"), "request carries no known message"),
        (frame(b""), "request carries no known message"),
        (lenient(info={"version": b"\xc3\x28"}), "info request carries a string that is not valid UTF-8"),
    ],
    ids=["not-protobuf", "unknown-field", "empty", "info-not-utf8"],
)
def test_invalid_request_gets_exception_and_the_connection_stays(server: AppProcess, request_frame: bytes,
                                                                  error: str) -> None:
    client = connect(server)
    client.send_raw(request_frame)
    assert error in read_response(client).exception.error
    assert echo(client, "still open") == "still open"
    assert server.proc.poll() is None


def test_invalid_query_path_not_utf8_gets_bad_query(server: AppProcess) -> None:
    """`abci_query?path=0xff` on CometBFT's RPC: a query answer with code 100, not a lost connection."""
    client = connect(server)
    client.send_raw(lenient(query={"path": b"\xff", "height": 7}) + flush_frame())
    answer = read_response(client).query
    assert (answer.code, answer.codespace, answer.height) == (CODE_BAD_QUERY, "gridledger", 7)
    assert answer.log == "query path is not valid UTF-8: ff"
    assert read_response(client).WhichOneof("value") == "flush"
    # The same connection answers the next (valid) query as usual.
    follow_up = client.request(abci.Request(query=abci.RequestQuery(path="/params"))).query
    assert follow_up.code != 0 and "no block has been committed yet" in follow_up.log
    server.wait_for_log("query request carries a string that is not valid UTF-8")


def test_invalid_echo_not_utf8_is_echoed_with_replacement(server: AppProcess) -> None:
    client = connect(server)
    client.send_raw(lenient(echo={"message": b"ok\xffok"}) + flush_frame())
    assert read_response(client).echo.message == "ok\ufffdok"


class FailingApp(LedgerApplication):
    """An application whose every call past Info raises, as a bug would."""

    def query(self, req: abci.RequestQuery) -> abci.ResponseQuery:
        raise RuntimeError("query bug")

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        raise RuntimeError("check_tx bug")

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        raise RuntimeError("commit bug")

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        raise UnicodeDecodeError("utf-8", b"\xc2", 0, 1, "prepare bug")

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        raise UnicodeDecodeError("utf-8", b"\xc2", 0, 1, "process bug")


def test_invalid_app_exception_in_query_check_tx_or_proposals_is_no_exception(
        caplog: pytest.LogCaptureFixture) -> None:
    """Query and CheckTx answer an application bug with code 1, proposals with a rejection or an empty
    proposal; FinalizeBlock and Commit with an Exception."""
    caplog.set_level(logging.CRITICAL, logger="gridledger.abci")
    with ServerThread(FailingApp(MemoryBackend())) as server:
        client = connect(server)
        query = client.request(abci.Request(query=abci.RequestQuery(path="/params"))).query
        assert (query.code, query.codespace, query.log) == (CODE_INTERNAL, "gridledger", "internal error: RuntimeError")
        check = client.request(abci.Request(check_tx=abci.RequestCheckTx(tx=b"x"))).check_tx
        assert (check.code, check.log) == (CODE_INTERNAL, "internal error: RuntimeError")
        commit = client.request(abci.Request(commit=abci.RequestCommit()))
        assert commit.exception.error == "commit: RuntimeError: commit bug"
        # A proposal the app cannot judge is rejected, one it cannot build is empty: a lost round, not a halt.
        process = client.request(abci.Request(process_proposal=abci.RequestProcessProposal(txs=[b"x"])))
        assert process.process_proposal.status == abci.ResponseProcessProposal.REJECT
        prepare = client.request(abci.Request(prepare_proposal=abci.RequestPrepareProposal(txs=[b"x"])))
        assert prepare.WhichOneof("value") == "prepare_proposal" and list(prepare.prepare_proposal.txs) == []
        assert echo(client, "alive") == "alive"


def test_basic_limits_are_documented() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text()
    assert f"at most {MAX_CONNECTIONS} connections" in text
    assert f"{MAX_BUFFERED_BYTES // 2**20} MiB" in text
    assert f"{MAX_FRAME_BYTES // 2**20} MiB" in text


def test_invalid_connection_beyond_the_cap_is_closed() -> None:
    with ServerThread(LedgerApplication(MemoryBackend()), max_connections=4) as server:
        served = [connect(server) for _ in range(4)]
        for client in served:
            assert echo(client, "in") == "in"
        extra = connect(server)
        assert extra.is_closed_by_server()
        assert server.read(lambda: server.server.refused_connections) == 1
        assert all(echo(client, "still") == "still" for client in served)
        served.pop().close()
        wait_until(lambda: server.read(lambda: len(server.server._connections)) == 3)
        assert echo(connect(server), "room again") == "room again"


def echo_frame(size: int) -> bytes:
    """An Echo request frame of about ``size`` bytes."""
    return frame(abci.Request(echo=abci.RequestEcho(message="e" * size)).SerializeToString())


def test_basic_large_frames_wait_for_the_buffer_budget_small_ones_do_not() -> None:
    limit = 1 << 20
    with ServerThread(LedgerApplication(MemoryBackend()), max_frame_bytes=limit, max_buffered_bytes=limit,
                      frame_timeout=30) as server:
        budget = server.server.budget
        first, second, small = connect(server), connect(server), connect(server)
        big = echo_frame(600_000)
        first.send_raw(big[:300_000])  # holds 600 kB of the budget, half sent
        wait_until(lambda: server.read(lambda: budget.used) > 0)
        second.send_raw(big)  # does not fit next to the first: waits, unread
        wait_until(lambda: server.read(lambda: len(budget._waiters)) == 1)
        assert server.read(lambda: budget.used) == len(big) - 3
        assert echo(small, "not queued") == "not queued"
        first.send_raw(big[300_000:] + flush_frame())
        assert len(read_response(first).echo.message) == 600_000
        second.send_raw(flush_frame())
        assert len(read_response(second).echo.message) == 600_000
        wait_until(lambda: server.read(lambda: budget.used) == 0)


def test_invalid_frame_that_stalls_is_closed_and_its_reservation_freed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gridledger.abci")
    with ServerThread(LedgerApplication(MemoryBackend()), frame_timeout=0.5) as server:
        budget = server.server.budget
        stalled_body, stalled_prefix = connect(server), connect(server)
        stalled_body.send_raw(echo_frame(200_000)[:1000])
        stalled_prefix.send_raw(b"\x80")
        assert stalled_body.is_closed_by_server()
        assert stalled_prefix.is_closed_by_server()
        assert server.read(lambda: budget.used) == 0
        assert "a frame did not arrive within 0.5s" in caplog.text
        assert echo(connect(server), "fine") == "fine"


def test_invalid_slow_connections_cannot_hold_more_than_the_budget(server: AppProcess) -> None:
    """The review's attack: 12 connections each send part of a 100 MiB frame. Memory stays near the budget."""
    process = psutil.Process(server.proc.pid)
    before = process.memory_info().rss
    per_connection = 40 << 20
    chunk = b"\0" * (1 << 20)
    prefix = encode_uvarint(MAX_FRAME_BYTES)
    sent = [0] * 12
    sockets: list[socket.socket] = []
    changed = threading.Condition()
    done = threading.Event()

    def send(index: int) -> None:
        # No short socket timeout: a connection stalls because the server stops reading it, not because a
        # starved app was slow to read it; the test ends the stalled sends by shutting their sockets down.
        with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
            with changed:
                sockets.append(sock)
                changed.notify_all()
            try:
                sock.sendall(prefix)
                while sent[index] < per_connection:
                    sock.sendall(chunk)
                    with changed:
                        sent[index] += len(chunk)
                        changed.notify_all()
            except OSError:
                pass  # shut down by the test: the server was not reading this connection
            done.wait(60)

    senders = [threading.Thread(target=send, args=(i,)) for i in range(12)]
    for thread in senders:
        thread.start()
    try:
        # Two connections fit the budget and are read to the end. Their frames stay half-sent, so they hold
        # the whole budget: the server cannot read the others beyond their socket buffers meanwhile.
        with changed:
            assert changed.wait_for(
                lambda: len(sockets) == len(sent) and sum(size >= per_connection for size in sent) >= 2, 120), sent
            completed = [size >= per_connection for size in sent]
        grown = process.memory_info().rss - before
    finally:
        with changed:
            for sock in sockets:
                with contextlib.suppress(OSError):  # ends a send blocked on a connection the server does not read
                    sock.shutdown(socket.SHUT_RDWR)
        done.set()
        for thread in senders:
            thread.join(60)
    assert sum(completed) == 2, sent
    assert sum(sent) < 12 * per_connection
    assert grown < MAX_BUFFERED_BYTES + (64 << 20), f"app grew by {grown >> 20} MiB"
    assert echo(connect(server), "survived") == "survived"


def test_pipelined_requests_are_answered_in_order_with_few_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """CometBFT pipelines CheckTx: requests already waiting are answered together, one write for many; a
    request with nothing behind it (no Flush either) is still answered at once."""
    from abci_app.server import AbciServer

    writes = []
    original = AbciServer._write

    async def counting(writer: Any, out: bytearray, *, drain: bool) -> bytearray:
        writes.append(len(out))
        return await original(writer, out, drain=drain)

    monkeypatch.setattr(AbciServer, "_write", staticmethod(counting))
    with ServerThread(LedgerApplication(MemoryBackend())) as thread:
        client = AbciClient("127.0.0.1", thread.port)
        try:
            requests = [abci.Request(echo=abci.RequestEcho(message=f"m{i}")).SerializeToString() for i in range(200)]
            client.send_raw(b"".join(frame(r) for r in requests))
            assert [client._read_response().echo.message for _ in range(200)] == [f"m{i}" for i in range(200)]
            assert len(writes) <= 10, f"{len(writes)} writes for 200 pipelined requests"
            # One lone request, no Flush: nothing else is waiting, so its answer goes out before the next read.
            client.send_raw(frame(abci.Request(echo=abci.RequestEcho(message="alone")).SerializeToString()))
            assert client._read_response().echo.message == "alone"
        finally:
            client.close()
