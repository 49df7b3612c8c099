"""The market feed on the 4-validator testnet (config/testnet-4.toml): every validator runs its libp2p host.

`testnet init` + `testnet up` on free loopback ports; the validators' hosts find
each other through their bootstrap lists. A participant host (in this process)
bootstraps from one validator, joins zone north-1 and receives signed snapshots
of the validators; an order placed through the CLI shows up in a later one.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psutil
import pytest
import trio

from abci_app.ledger.crypto import SigningKey
from lab import testnet as tn
from lab.ports import free_base_port
from node import cometbft
from node.p2p.host import HostConfig, P2PHost
from node.p2p.inbox import Admitted
from node.p2p.messages import SignedFeed
from node.rpc import CometRpc
from tests.test_testnet_e2e import cli, height, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ROSTER = cometbft.REPO_ROOT / "config" / "testnet-4.toml"
ZONE = "north-1"
DEADLINE_S = 60
FRESH_BLOCKS = 5
"""A snapshot counts as current if it describes one of the last few blocks."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tn.Testnet]:
    out = tmp_path_factory.mktemp("p2pnet") / "net"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        patch.setenv("GRIDLEDGER_KEYRING_DIR", str(out / "keyring"))
        patch.setenv("GRIDLEDGER_PASSPHRASE", tn.TESTNET_PASSPHRASE)
        cli("testnet", "init", "--roster", str(ROSTER), "--out", str(out), "--base-port", str(free_base_port(4)),
            "--timeout-commit", "300ms", "--timeout-propose", "1s")
        testnet = tn.load_testnet(out)
        try:
            cli("testnet", "up", "--dir", str(out))
            supervisors = [tn.running_supervisor(testnet, n) for n in testnet.nodes]
            yield testnet
        finally:
            trees = [tn.process_tree(s) for n in testnet.nodes if (s := tn.running_supervisor(testnet, n))]
            cli("testnet", "down", "--dir", str(out))
            leftovers = [p for tree in trees for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            for proc in leftovers:
                proc.kill()
            assert not leftovers, "testnet down left processes running"
    assert all(s is not None for s in supervisors)


def status(net: tn.Testnet) -> dict[str, Any]:
    report: dict[str, Any] = cli("testnet", "status", "--dir", str(net.directory), "--output", "json")
    return report


def block_time(node: tn.NodeInfo) -> int:
    rpc = CometRpc(node.rpc_url, timeout=5)
    try:
        text = rpc.status()["sync_info"]["latest_block_time"]
    finally:
        rpc.close()
    return int(datetime.fromisoformat(text[:19] + "+00:00").timestamp())


async def next_feed(stream: trio.MemoryReceiveChannel[Admitted]) -> SignedFeed:
    while True:
        item = await stream.receive()
        if item.feed is not None:
            return item.feed


async def place_ask(net: tn.Testnet, slot: int) -> dict[str, Any]:
    """`tx order place` as its own process, so the trio loop keeps receiving meanwhile."""
    env = {**os.environ, "GRIDLEDGER_KEYRING_DIR": str(net.keyring), "GRIDLEDGER_PASSPHRASE": tn.TESTNET_PASSPHRASE,
           "GRIDLEDGER_KDF_FAST": "1"}
    done = await trio.run_process(
        [sys.executable, "-m", "cli.main", "tx", "order", "place", "--side", "ask", "--qty", "2kWh",
         "--price", "0.24EUR/kWh", "--slot", str(slot), "--origin", "solar", "--from", "alice",
         "--node", net.nodes[0].rpc_url, "--wait", "--output", "json"],
        capture_stdout=True, capture_stderr=True, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["code"] == 0, result
    return result


def test_validators_hosts_find_each_other(net: tn.Testnet) -> None:
    wait_until("every validator host sees the other three",
               lambda: all((r["p2p_peers"] or 0) >= 3 for r in status(net)["nodes"]), timeout=DEADLINE_S)
    report = status(net)
    assert [r["p2p_peer_id"] for r in report["nodes"]] == [n.p2p_peer_id for n in net.nodes]
    assert report["agree"] is True


def test_feed_of_the_validators_reaches_a_participant_with_an_order(net: tn.Testnet) -> None:
    peers = cli("testnet", "p2p-peers", "--dir", str(net.directory), "--output", "json")
    validators = {bytes.fromhex(key) for key in peers["trusted_publishers"]}
    entry = net.nodes[0]  # dso-north, whose zones include north-1
    slot = (block_time(entry) // 900 + 3) * 900  # 30-45 minutes ahead: open, gate closure far away

    async def scenario() -> None:
        with trio.fail_after(DEADLINE_S):
            config = HostConfig(chain_id=net.chain_id, zones=(ZONE,), bootstrap=(entry.p2p_addr,),
                                trusted_publishers=frozenset(validators))
            # Fresh relative to when the participant started listening, not to when the first snapshot
            # arrived: under load the delivery may lag any number of (fast) blocks.
            before = await trio.to_thread.run_sync(height, entry)
            async with P2PHost(config, SigningKey.generate()).running() as participant:
                stream = participant.watch()
                first = await next_feed(stream)
                now = await trio.to_thread.run_sync(height, entry)
                assert before - FRESH_BLOCKS <= first.body.height <= now
                assert first.body.publisher in validators and first.body.zone == ZONE
                assert first.body.chain_id == net.chain_id

                placed = await place_ask(net, slot)
                while True:
                    feed = await next_feed(stream)
                    if feed.body.height < placed["height"]:
                        continue
                    view = next((v for v in feed.body.slots if v.slot == slot), None)
                    assert view is not None, f"slot {slot} missing at height {feed.body.height}"
                    assert [(level.price, level.quantity_wh) for level in view.asks] == [(240_000, 2_000)]
                    assert [(q.price, q.quantity_wh, q.zone) for q in view.best_ask] == [(240_000, 2_000, ZONE)]
                    break
                assert feed.body.publisher in validators
                counters = participant.inbox.counters["feed"]
                assert counters.dropped == 0 and counters.accepted >= 2  # every signature verified

    trio.run(scenario)
