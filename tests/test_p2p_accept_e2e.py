"""Direct offers end to end: three libp2p hosts on loopback and a real CometBFT node.

alice publishes a signed ask offer on her host; it reaches bob's and erin's hosts; bob co-signs it
and `p2p accept --wait` puts accept_offer on chain, which makes the trade; erin's later acceptance
of the same offer fails with code 75 (OfferTaken).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abci_app.ledger import errors
from cli.main import app
from node.client.keystore import FAST_ENV, Keystore
from tests.harness import Chain
from tests.localnode import LocalNode
from tests.market_harness import market_app_state
from tests.p2p_harness import Listener
from tests.p2p_harness import eventually as poll

pytestmark = pytest.mark.e2e
CHAIN = "e2e-p2p-accept"
ZONE = "zone-a"
PASSPHRASE = "p2p accept"
DEADLINE_S = 30.0


@pytest.fixture
def network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalNode, Chain, list[Path]]]:
    chain = Chain(chain_id=CHAIN, app_state=market_app_state())
    keyring = tmp_path / "keyring"
    monkeypatch.setenv(FAST_ENV, "1")
    for name in ("alice", "bob", "erin"):
        Keystore(keyring).add(name, PASSPHRASE, chain.keys[name])
    monkeypatch.setenv("GRIDLEDGER_KEYRING_DIR", str(keyring))
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", PASSPHRASE)
    assert chain.app_state is not None
    with LocalNode(tmp_path / "node", chain.app_state, chain_id=CHAIN) as node:
        node.rpc.wait_height(1)
        env = {**os.environ}
        listeners: list[Listener] = []
        try:
            listen = ("--zone", ZONE, "--node", node.ports.rpc_url)
            first = Listener(tmp_path / "h-alice", env, *listen)
            listeners.append(first)
            for name in ("bob", "erin"):
                listeners.append(Listener(tmp_path / f"h-{name}", env, *listen, "--bootstrap", first.addr))
            yield node, chain, [listener.home for listener in listeners]
        finally:
            assert [listener.stop() for listener in listeners] == [0] * len(listeners)


def eventually(check: Callable[[], Any]) -> Any:
    return poll(check, DEADLINE_S)


def cli(node: LocalNode, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--output", "json"], env={"GRIDLEDGER_NODE": node.ports.rpc_url})


def cli_json(node: LocalNode, *args: str) -> Any:
    result = cli(node, *args)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_offer_gossiped_accepted_on_chain_once(network: tuple[LocalNode, Chain, list[Path]]) -> None:
    node, chain, (h_alice, h_bob, h_erin) = network
    topic = f"gridledger/{CHAIN}/offers/{ZONE}"
    eventually(lambda: cli_json(node, "p2p", "status", "--home", str(h_alice))["mesh"][topic] >= 2)
    block_time = datetime.fromisoformat(node.rpc.status()["sync_info"]["latest_block_time"][:19] + "+00:00")
    slot = (int(block_time.timestamp()) // 900 + 3) * 900  # 30-45 min ahead: open, gate far away

    published = cli_json(node, "p2p", "offer", "--home", str(h_alice), "--side", "ask", "--qty", "2kWh",
                         "--price", "0.24EUR/kWh", "--slot", str(slot), "--valid-until", "+15m",
                         "--origin", "solar", "--from", "alice")
    offer_id = published["offer_id"]
    for home in (h_bob, h_erin):
        listed = eventually(lambda home=home: cli_json(node, "p2p", "offers", "--home", str(home))["offers"])
        assert [(entry["offer_id"], entry["taken"]) for entry in listed] == [(offer_id, None)]

    accepted = cli_json(node, "p2p", "accept", offer_id, "--from", "bob", "--qty", "1.5kWh", "--home", str(h_bob),
                        "--wait")
    assert accepted["code"] == 0, accepted
    trade = next(e for e in accepted["events"] if e["type"] == "trade")
    assert (trade["buyer"], trade["seller"], trade["quantity_wh"], trade["price"], trade["mechanism"]) == (
        chain.id("bob"), chain.id("alice"), "1500", "240000", "direct")
    assert node.rpc.query_json(f"/offer/{offer_id}")["taker"] == chain.id("bob")
    listed = cli_json(node, "query", "trades", "--slot", str(slot))
    assert [(t["buyer"], t["quantity_wh"], t["mechanism"]) for t in listed] == [(chain.id("bob"), 1500, "direct")]

    # erin's host still holds the gossiped offer; asked with a node, `p2p offers` hides it as taken.
    after = cli_json(node, "p2p", "offers", "--home", str(h_erin))
    assert (after["offers"], after["taken_hidden"]) == ([], 1)
    marked = cli_json(node, "p2p", "offers", "--home", str(h_erin), "--all")["offers"]
    assert [(e["offer_id"], e["taken"]["taker"]) for e in marked] == [(offer_id, chain.id("bob"))]

    # erin was too late: the chain refuses her acceptance of the taken offer (already in CheckTx).
    late = cli(node, "p2p", "accept", offer_id, "--from", "erin", "--home", str(h_erin), "--wait")
    assert late.exit_code == 1, late.output
    refused = json.loads(late.stdout)
    assert refused["check_code"] == errors.OfferTaken.code
    assert f"was accepted by {chain.id('bob')}" in refused["check_log"]
    assert len(cli_json(node, "query", "trades", "--slot", str(slot))) == 1
