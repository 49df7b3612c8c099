"""SIGKILL the app at random moments under load; the chain resumes and loses nothing committed.

After the run, every block CometBFT committed is replayed into a fresh
in-process application: its app hash after each block must equal the app hash
CometBFT recorded in the next block's header, so the crashed-and-recovered node
computed exactly what a node that never crashed computes.
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import signal
import threading
from datetime import datetime
from pathlib import Path

import pytest

from abci_app.ledger.modules.bank import Transfer
from abci_app.pb.tendermint.abci import types_pb2 as abci
from node.rpc import NodeUnreachable, RpcError
from tests.harness import Chain
from tests.localnode import LocalNode

pytestmark = pytest.mark.e2e

KILLS = 3


def _workload(node: LocalNode, chain: Chain, stop: threading.Event) -> None:
    names = ["alice", "bob", "carol"]
    step = 0
    while not stop.is_set():
        sender, recipient = names[step % 3], names[(step + 1) % 3]
        raw = chain.sign(sender, Transfer(recipient=chain.id(recipient), amount=1 + step % 7, memo=""))
        try:
            node.rpc.broadcast_tx_sync(raw)
        except (NodeUnreachable, RpcError):
            stop.wait(0.05)  # the node is down or restarting; the next tx takes a fresh nonce
        step += 1


def _header_time(text: str) -> int:
    return int(datetime.fromisoformat(text[:19] + "+00:00").timestamp())


def test_sigkill_app_and_recover(tmp_path: Path, tools_bin: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"crash test seed {seed}")
    chain = Chain(chain_id="crash-chain")
    assert chain.app_state is not None
    node = LocalNode(tmp_path / "node", chain.app_state, chain_id="crash-chain", timeout_commit="100ms")
    last_height = 0
    for _ in range(KILLS):
        node.start()
        node.rpc.wait_height(last_height + 1, timeout=60)
        stop = threading.Event()
        worker = threading.Thread(target=_workload, args=(node, chain, stop))
        worker.start()
        stop.wait(rng.uniform(0.3, 2.0))
        assert node.supervisor is not None and node.supervisor.app is not None
        os.kill(node.supervisor.app.pid, signal.SIGKILL)
        stop.set()
        worker.join()
        node.stop()
        last_height = max(last_height, _committed_height(node))

    node.start()
    try:
        final = node.rpc.wait_height(last_height + 2, timeout=60)
        blocks = [node.rpc.call("block", height=str(h))["block"] for h in range(1, final + 1)]
        info = node.rpc.call("abci_info")["response"]
        genesis_time = _header_time(node.rpc.call("genesis")["genesis"]["genesis_time"])
    finally:
        node.stop()
    _check_stored_tree(node)

    replica = Chain(chain_id="crash-chain", time=genesis_time)  # same genesis, never crashed
    committed_txs = 0
    for block, following in itertools.pairwise(blocks):
        height = int(block["header"]["height"])
        req = abci.RequestFinalizeBlock(height=height, txs=[base64.b64decode(t) for t in block["data"]["txs"] or []])
        req.time.seconds = _header_time(block["header"]["time"])
        response = replica.app.finalize_block(req)
        replica.app.commit(abci.RequestCommit())
        committed_txs += sum(1 for r in response.tx_results if r.code == 0)
        assert response.app_hash.hex().upper() == following["header"]["app_hash"], f"diverged at {height}"
    assert committed_txs > 0, "the workload committed nothing"
    assert int(info["last_block_height"]) >= final
    # Money is conserved across every crash: transfers only move it.
    state = replica.query("/supply")["total"]
    assert state == 30_000_000
    assert sum(replica.account(n)["balance"] for n in ("alice", "bob", "carol")) == 30_000_000


def _check_stored_tree(node: LocalNode) -> None:
    """The tree on disk after the crashes is the tree of the state on disk: same root, nothing missing or
    left over, and its proofs verify against the stored app hash."""
    from abci_app.ledger.merkle import SMALL_KEYS, TRIE_NODE, Inner, Trie, reference_root
    from abci_app.ledger.proofs import prove_range, verify_range
    from abci_app.ledger.store import CommittedStore, LevelDBBackend

    store = CommittedStore(LevelDBBackend(node.home / "data" / "app"))
    try:
        state = list(store.iterate(b"", None))
        assert store.app_hash == store.trie.root_hash == reference_root(state)
        trie = Trie.open(store.backend.get, store.scan)
        assert [key for key, _ in trie.items()] == [key for key, _ in state]
        stored = sum(1 for _ in store.backend.iterate(TRIE_NODE, TRIE_NODE[:-1] + b"0"))
        inner, stack = 0, [trie.root]
        while stack:
            found = trie.resolved(stack.pop())  # type: ignore[arg-type]
            if type(found) is Inner:
                inner += found.size > SMALL_KEYS
                stack += [found.left, found.right]
        assert stored == inner, "tree records left over or missing after the crashes"
        for key, _ in state[:: max(1, len(state) // 20)]:
            proof, _ = prove_range(store, key, key + b"\x00", limit=1)
            verify_range(store.app_hash, proof.lo, proof.hi, proof.program, proof.entries)
    finally:
        store.close()


def _committed_height(node: LocalNode) -> int:
    """Height stored by the app (read from its LevelDB while the node is down)."""
    from abci_app.ledger.store import CommittedStore, LevelDBBackend

    store = CommittedStore(LevelDBBackend(node.home / "data" / "app"))
    try:
        return store.height
    finally:
        store.close()
