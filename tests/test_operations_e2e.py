"""Operations on a real node: CometBFT prunes what Commit's retain_height allows; a halt height stops the
node after the agreed block and keeps the old version from going on; the app's metrics endpoint."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from abci_app.ledger.modules.bank import Transfer
from lab.network import single
from node.rpc import RpcError, tx_hash
from node.supervisor import EXIT_HALTED, NodeSpec, Supervisor
from tests.harness import Chain
from tests.localnode import LocalNode

pytestmark = pytest.mark.e2e

RETAIN = 64


def spec(node: LocalNode, **settings: object) -> NodeSpec:
    return NodeSpec(home=node.home, abci_address=f"tcp://127.0.0.1:{node.ports.abci}",
                    rpc_laddr=f"tcp://127.0.0.1:{node.ports.rpc}", p2p_laddr=f"tcp://127.0.0.1:{node.ports.p2p}",
                    log_level="error", snapshots={"interval": 0}, **settings)  # type: ignore[arg-type]


def run_until_exit(supervisor: Supervisor, timeout: float) -> int:
    """``Supervisor.wait`` in a thread, bounded: a node that does not stop by itself is stopped (and fails)."""
    codes: list[int] = []
    waiter = threading.Thread(target=lambda: codes.append(supervisor.wait()), daemon=True)
    waiter.start()
    waiter.join(timeout)
    if waiter.is_alive():
        supervisor.request_stop()
        waiter.join(60)
        pytest.fail(f"the node did not stop by itself within {timeout:g}s")
    return codes[0]


def test_blocks_below_the_retain_height_are_pruned_and_metrics_are_served(tmp_path: Path, tools_bin: Path) -> None:
    signer = Chain(chain_id="e2e-prune")
    assert signer.app_state is not None
    node = LocalNode(tmp_path / "node", signer.app_state, chain_id="e2e-prune", timeout_commit="50ms")
    # The demo's way to expose both metrics endpoints (lab/network.py).
    single(node.home, "e2e-prune", signer.app_state, node.ports, timeout_commit="50ms", metrics=True)
    metrics_address = f"127.0.0.1:{node.ports.app_metrics}"
    assert NodeSpec.from_home(node.home).app_metrics == metrics_address
    supervisor = Supervisor(spec(node, retain_blocks=RETAIN, app_metrics=metrics_address), sink=node.log.append)
    supervisor.start()
    try:
        node.rpc.wait_height(1)
        transfer = signer.sign("alice", Transfer(recipient=signer.id("bob"), amount=5, memo="before pruning"))
        assert node.rpc.broadcast_tx_sync(transfer)["code"] == 0
        tx_height = int(node.rpc.wait_tx(tx_hash(transfer))["height"])
        height = node.rpc.wait_height(tx_height + RETAIN + 20, timeout=120)
        # CometBFT prunes right after the Commit that allowed it: the base follows the tip.
        sync = node.rpc.status()["sync_info"]
        earliest, latest = int(sync["earliest_block_height"]), int(sync["latest_block_height"])
        assert earliest > 1
        assert latest - earliest + 1 >= RETAIN
        assert latest - earliest + 1 <= RETAIN + 2  # the tip moved on between the Commit and /status
        with pytest.raises(RpcError, match="lowest height is"):
            node.rpc.call("block", height="1")
        # The base moves on with every (50 ms) block: the tip of that answer stays for RETAIN more blocks.
        kept = latest
        assert node.rpc.call("block", height=str(kept))["block"]["header"]["height"] == str(kept)
        # The transaction index is not pruned: a transaction of a pruned block is still found.
        assert tx_height < earliest
        assert node.rpc.tx(tx_hash(transfer))["tx_result"]["code"] == 0

        text = httpx.get(f"http://{metrics_address}/metrics", timeout=5).text
        assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text
        assert 'gridledger_build_info{app_version="1"' in text
        assert "_created" not in text
        assert "gridledger_block_height" in text and height > RETAIN
        comet = httpx.get(f"http://127.0.0.1:{node.ports.cometbft_metrics}/metrics", timeout=5).text
        assert "cometbft_consensus_height" in comet
    finally:
        supervisor.request_stop()
        supervisor.wait()


def test_a_halt_height_stops_the_node_after_that_block_until_it_is_lifted(tmp_path: Path, tools_bin: Path) -> None:
    signer = Chain(chain_id="e2e-halt")
    assert signer.app_state is not None
    node = LocalNode(tmp_path / "node", signer.app_state, chain_id="e2e-halt", timeout_commit="100ms")
    halt = 8

    supervisor = Supervisor(spec(node, halt_height=halt), sink=node.log.append)
    supervisor.start()
    assert run_until_exit(supervisor, timeout=120) == EXIT_HALTED
    assert any(f"halt height reached: block {halt} is committed" in line for line in node.log)

    # The old version cannot be started again on that state: it refuses before CometBFT starts.
    again = Supervisor(spec(node, halt_height=halt), sink=node.log.append)
    with pytest.raises(ChildProcessError, match="halt height"):
        again.start()
    again.shutdown()
    assert any(f"the state is at height {halt}, the halt height is {halt}" in line for line in node.log)
    # A stopped node is the moment for a backup (docs/operators.md, "Backup and restore").
    shutil.copytree(node.home / "data" / "app", tmp_path / "backup-app")

    # The "new version" (here: the same one without the halt height) goes on from the next block.
    resumed = Supervisor(spec(node), sink=node.log.append)
    resumed.start()
    try:
        assert node.rpc.wait_height(halt + 3, timeout=60) >= halt + 3
        header = node.rpc.call("block", height=str(halt + 1))["block"]["header"]
        assert header["height"] == str(halt + 1)
        # The backup is whole and is this chain's state after block `halt`.
        check = subprocess.run([sys.executable, "-m", "node.backup", "--db", str(tmp_path / "backup-app"),
                                "--node", node.ports.rpc_url], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"the chain agrees: block {halt + 1}" in check.stdout
    finally:
        resumed.request_stop()
        resumed.wait()
