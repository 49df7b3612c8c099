"""A real CometBFT node against our ABCI server: commit, query, restart, continue."""

from __future__ import annotations

from pathlib import Path

import pytest

from abci_app.ledger.modules.bank import Transfer
from node.rpc import tx_hash
from tests.harness import Chain
from tests.localnode import LocalNode

pytestmark = pytest.mark.e2e


def test_commit_query_restart(tmp_path: Path, tools_bin: Path) -> None:
    signer = Chain(chain_id="e2e-chain")  # only for keys, genesis and signing
    alice, bob = signer.id("alice"), signer.id("bob")
    assert signer.app_state is not None
    node = LocalNode(tmp_path / "node", signer.app_state)
    with node:
        node.rpc.wait_height(1)
        hashes = []
        for amount in (100, 200, 300):
            raw = signer.sign("alice", Transfer(recipient=bob, amount=amount, memo="e2e"))
            checked = node.rpc.broadcast_tx_sync(raw)
            assert checked["code"] == 0, checked
            hashes.append(tx_hash(raw))
        for digest in hashes:
            committed = node.rpc.wait_tx(digest)
            assert committed["tx_result"]["code"] == 0, committed
        assert node.rpc.query_json(f"/account/{bob}")["balance"] == 10_000_000 + 600
        assert node.rpc.query_json(f"/account/{alice}")["nonce"] == 3
        found = node.rpc.tx_search(f"transfer.recipient='{bob}'")
        assert int(found["total_count"]) == 3
        status = node.rpc.status()["sync_info"]
        height_before = int(status["latest_block_height"])

    # Both processes are gone; start the same home again.
    assert node.supervisor is None
    with node:
        node.rpc.wait_height(height_before)
        info = node.rpc.call("abci_info")["response"]
        assert int(info["last_block_height"]) >= height_before
        node.rpc.wait_height(height_before + 2)
        # Stale replay of an old transaction is refused, new ones still commit.
        replay = signer.sign("alice", Transfer(recipient=bob, amount=100, memo="e2e"), nonce=1)
        assert node.rpc.broadcast_tx_sync(replay)["code"] == 12
        raw = signer.sign("alice", Transfer(recipient=bob, amount=1, memo="after restart"))
        assert node.rpc.broadcast_tx_sync(raw)["code"] == 0
        assert node.rpc.wait_tx(tx_hash(raw))["tx_result"]["code"] == 0
        assert node.rpc.query_json(f"/account/{bob}")["balance"] == 10_000_000 + 601
