"""The socket server answers ABCI and survives hostile connections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from abci_app.framing import encode_uvarint
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.abci_client import AbciClient
from tests.app_process import AppProcess
from tests.harness import Chain


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AppProcess]:
    app = AppProcess(tmp_path / "db")
    yield app
    app.stop()


def connect(server: AppProcess) -> AbciClient:
    return AbciClient("127.0.0.1", server.port)


def echo(client: AbciClient, message: str) -> str:
    response = client.request(abci.Request(echo=abci.RequestEcho(message=message)))
    reply: str = response.echo.message
    return reply


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
        (encode_uvarint(4) + b"\xff\xff\xff\xff", "malformed request"),
        (encode_uvarint(2) + b"\x08\x01", "request carries no known message"),
    ],
    ids=["long-varint", "oversized", "truncated", "not-protobuf", "no-message"],
)
def test_invalid_frame_closes_only_that_connection(server: AppProcess, garbage: bytes, logged: str) -> None:
    bystander = connect(server)
    assert echo(bystander, "before") == "before"
    hostile = connect(server)
    hostile.send_raw(garbage)
    if logged.startswith("closed after"):
        hostile.sock.shutdown(1)  # end of stream inside the frame
    assert hostile.is_closed_by_server()
    server.wait_for_log(logged)
    # The other connection, and new ones, are still served.
    assert echo(bystander, "after") == "after"
    assert echo(connect(server), "new") == "new"
    assert server.proc.poll() is None
