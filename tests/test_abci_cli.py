"""CometBFT's own ABCI client (abci-cli) gets well-formed answers from our server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from abci_app.ledger.modules.bank import Transfer
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.abci_client import AbciClient
from tests.app_process import AppProcess
from tests.harness import Chain


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AppProcess]:
    app = AppProcess(tmp_path / "db")
    yield app
    app.stop()


def abci_cli(tools_bin: Path, server: AppProcess, *args: str) -> str:
    result = subprocess.run(
        [str(tools_bin / "abci-cli"), "--address", server.address, "--log_level", "error", *args],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_basic(tools_bin: Path, server: AppProcess) -> None:
    chain = Chain()  # keys, genesis and signing
    client = AbciClient("127.0.0.1", server.port)
    init = abci.RequestInitChain(chain_id=chain.chain_id, initial_height=1,
                                 app_state_bytes=json.dumps(chain.app_state).encode())
    init.time.seconds = chain.time
    client.request(abci.Request(init_chain=init))
    client.close()

    assert "-> data: hello" in abci_cli(tools_bin, server, "echo", "hello")
    info = abci_cli(tools_bin, server, "info")
    assert "-> data: gridledger" in info

    transfer = chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=42, memo="cli"))
    assert "-> code: OK" in abci_cli(tools_bin, server, "check_tx", "0x" + transfer.hex())
    rejected = abci_cli(tools_bin, server, "check_tx", "0x" + (b"\x93" + transfer[1:]).hex())
    assert "-> code: 2" in rejected and "-> log:" in rejected

    finalized = abci_cli(tools_bin, server, "finalize_block", "0x" + transfer.hex())
    assert "-> code: OK" in finalized
    app_hash = finalized.split("-> data.hex: 0x")[1].split()[0]
    assert len(app_hash) == 64
    assert "-> code: OK" in abci_cli(tools_bin, server, "commit")

    answer = abci_cli(tools_bin, server, "query", "--path", f"/account/{chain.id('bob')}", '""')
    assert "-> code: OK" in answer
    assert '"balance":10000042' in answer
    missing = abci_cli(tools_bin, server, "query", "--path", "/no-such-path", '""')
    assert "-> code: 100" in missing
    # Info over our own client reports what abci-cli committed.
    client = AbciClient("127.0.0.1", server.port)
    info_after = client.request(abci.Request(info=abci.RequestInfo())).info
    assert info_after.last_block_height == 1
    assert info_after.last_block_app_hash.hex().upper() == app_hash
    client.close()
