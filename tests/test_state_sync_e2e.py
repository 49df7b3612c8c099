"""A fifth node joins a running four-validator testnet by state sync (docs/operators.md).

The validators snapshot every 10 blocks (small chunks, so a snapshot has
several). Past the second snapshot, `node init --state-sync` reads the trusted
height and hash from a validator's RPC; the new node restores the newest
snapshot, catches up by block sync without replaying from genesis (its block
store starts at the snapshot), agrees on the app hash, and answers a query
whose proof verifies against the four validators' signatures.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import tomlkit

from lab import testnet as tn
from lab.ports import free_base_port
from node import cometbft
from node.client.keystore import Keystore
from node.rpc import CometRpc
from tests.test_testnet_e2e import ROSTER, cli, height, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INTERVAL = 10


def _snapshot_settings(home: Path) -> None:
    path = home / cometbft.NODE_SETTINGS
    doc = tomlkit.parse(path.read_text())
    doc["snapshots"] = {"interval": INTERVAL, "keep": 2, "chunk_bytes": 2048}
    path.write_text(tomlkit.dumps(doc))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tn.Testnet]:
    out = tmp_path_factory.mktemp("statesync") / "net"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        patch.setenv("GRIDLEDGER_KEYRING_DIR", str(out / "keyring"))
        patch.setenv("GRIDLEDGER_PASSPHRASE", tn.TESTNET_PASSPHRASE)
        timing = cometbft.Timing(timeout_commit="200ms", timeout_propose="1s")
        testnet = tn.init_testnet(tn.load_roster(ROSTER), tn.InitOptions(out=out, base_port=free_base_port(5),
                                                                         timing=timing))
        for node in testnet.nodes:
            _snapshot_settings(testnet.home(node))
        cli("testnet", "up", "--dir", str(out))
        supervisors = [tn.running_supervisor(testnet, n) for n in testnet.nodes]
        try:
            yield testnet
        finally:
            cli("testnet", "down", "--dir", str(out))
            leftovers = [p for s in supervisors if s is not None for p in tn.process_tree(s) if p.is_running()]
            for proc in leftovers:
                proc.kill()
            assert not leftovers, "testnet down left processes running"


def _status(url: str) -> dict[str, Any]:
    rpc = CometRpc(url, timeout=3)
    try:
        status: dict[str, Any] = rpc.status()
        return status
    finally:
        rpc.close()


def _app_hash_at(url: str, at: int) -> str:
    rpc = CometRpc(url, timeout=3)
    try:
        return str(rpc.call("block", height=str(at))["block"]["header"]["app_hash"])
    finally:
        rpc.close()


def _has_snapshot(testnet: tn.Testnet, at_least: int) -> bool:
    heights = [int(p.name) for node in testnet.nodes
               for p in (testnet.home(node) / "data" / "snapshots").glob("[0-9]*")]
    return bool(heights) and max(heights) >= at_least


def test_fifth_node_joins_by_state_sync(net: tn.Testnet, tmp_path: Path) -> None:
    n0, n1 = net.nodes[0], net.nodes[1]
    wait_until("the testnet commits", lambda: height(n0) >= 2)
    # Some state worth syncing: transfers between the roster's participants.
    for sender, recipient in (("alice", "bob"), ("bob", "carol"), ("carol", "alice")):
        result = cli("tx", "transfer", recipient, "1.5EUR", "--from", sender, "--node", n0.rpc_url, "--wait",
                     "--output", "json")
        assert result["code"] == 0, result
    wait_until("two snapshots", lambda: height(n0) > 2 * INTERVAL + 2 and _snapshots_taken(net),
               timeout=120)

    home = tmp_path / "joiner"
    base = min(n.ports["app_metrics"] for n in net.nodes) - 5 + 10 * len(net.nodes)  # the fifth block of ports
    peers = ",".join(f"{n.node_id}@127.0.0.1:{n.ports['p2p']}" for n in net.nodes)
    info = cli("node", "init", "--home", str(home), "--moniker", "dso-east", "--role", "dso", "--zones", "east-1",
               "--genesis", str(net.directory / "genesis.json"), "--peers", peers, "--base-port", str(base),
               "--p2p-host", "127.0.0.1", "--timeout-commit", "200ms", "--no-libp2p", "--state-sync",
               "--state-sync-rpc", n0.rpc_url, "--state-sync-rpc", n1.rpc_url, "--output", "json")
    assert info["state_sync_trust_height"] > 2 * INTERVAL
    cometbft.configure(home, {"statesync": {"discovery_time": "5s"}})
    rpc_url = f"http://127.0.0.1:{info['ports']['rpc']}"
    started = time.monotonic()
    log = home / "node.log"
    with log.open("ab") as sink:
        proc = subprocess.Popen(tn.start_command(home), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until("the fifth node caught up", lambda: height(rpc_url) >= height(n0) - 1 > 0, timeout=150)
        joined_after = time.monotonic() - started
        status = _status(rpc_url)["sync_info"]
        earliest = int(status["earliest_block_height"])
        # Restored, not replayed: its block store starts at the snapshot it restored.
        assert earliest >= INTERVAL and earliest % INTERVAL in (0, 1), status
        text = log.read_text(errors="replace")
        restored = re.search(r"snapshot at height (\d+) restored", text)
        assert restored is not None and int(restored.group(1)) in (earliest, earliest - 1), text[-3000:]
        assert "InitChain" not in text
        common = height(rpc_url) - 1
        assert _app_hash_at(rpc_url, common) == _app_hash_at(n0.rpc_url, common)
        # A participant's proven query through the joined node: four validators' signatures verify.
        alice = _account(net, "alice")
        proven = cli("query", "account", alice, "--node", rpc_url, "--prove", "--trusted-validators",
                     str(net.directory / "genesis.json"))
        assert "by validators holding" in proven.stderr and " of 40 power" in proven.stderr, proven.stderr
        print(f"state sync: joined at height {earliest} and caught up in {joined_after:.1f}s")
    finally:
        tree = tn.process_tree(psutil.Process(proc.pid)) if proc.poll() is None else []
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        _, alive = psutil.wait_procs(tree, timeout=30)
        for straggler in alive:
            straggler.kill()
        assert not alive, "the joining node left processes behind"


def _snapshots_taken(testnet: tn.Testnet) -> bool:
    return _has_snapshot(testnet, 2 * INTERVAL)


def _account(testnet: tn.Testnet, name: str) -> str:
    account = Keystore(testnet.keyring).show(name).account
    assert account is not None
    return account

