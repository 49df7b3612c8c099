"""The market under a real CometBFT node: two prosumers and two consumers trade one slot through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.client.keystore import Keystore
from tests.harness import Chain
from tests.localnode import LocalNode
from tests.market_harness import market_app_state

pytestmark = pytest.mark.e2e
PASSPHRASE = "market e2e"
TRADERS = ("alice", "erin", "bob", "dave")


@pytest.fixture(scope="module")
def market_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNode, Chain, Path]]:
    base = tmp_path_factory.mktemp("market")
    chain = Chain(chain_id="e2e-market", app_state=market_app_state())
    keyring = base / "keyring"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        for name in TRADERS:
            Keystore(keyring).add(name, PASSPHRASE, chain.keys[name])
    assert chain.app_state is not None
    node = LocalNode(base / "node", chain.app_state, chain_id="e2e-market")
    with node:
        node.rpc.wait_height(2)
        yield node, chain, keyring


def cli_json(node: LocalNode, keyring: Path, *args: str) -> Any:
    env = {"GRIDLEDGER_KEYRING_DIR": str(keyring), "GRIDLEDGER_PASSPHRASE": PASSPHRASE,
           "GRIDLEDGER_NODE": node.ports.rpc_url, "GRIDLEDGER_KDF_FAST": "1"}
    result = CliRunner().invoke(app, [*args, "--output", "json"], env=env)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_two_prosumers_two_consumers_trade_a_slot(market_node: tuple[LocalNode, Chain, Path]) -> None:
    node, chain, keyring = market_node
    block_time = datetime.fromisoformat(node.rpc.status()["sync_info"]["latest_block_time"][:19] + "+00:00")
    slot = (int(block_time.timestamp()) // 900 + 3) * 900  # 30-45 min ahead: open, gate far away
    placed = [
        ("alice", "ask", "2kWh", "0.24EUR/kWh", ["--origin", "solar"]),
        ("erin", "ask", "3kWh", "0.23EUR/kWh", ["--origin", "wind"]),
        ("bob", "bid", "2.5kWh", "0.26EUR/kWh", []),  # zone a: fee 0.01 -> crosses both asks
        ("dave", "bid", "1kWh", "0.27EUR/kWh", ["--accept", "solar"]),  # zone b: fee 0.03, solar only
    ]
    for who, side, qty, price, extra in placed:
        result = cli_json(node, keyring, "tx", "order", "place", "--side", side, "--qty", qty, "--price", price,
                          "--slot", str(slot), *extra, "--from", who, "--wait")
        assert result["code"] == 0, result
    # bob (zone a) takes erin's 3 kWh at 0.23 first (effective 0.24 < alice's 0.25): 2.5 kWh at 0.23.
    # dave (zone b, solar only) skips erin's wind and takes 1 kWh of alice's solar at 0.24 + 0.03 fee.
    expected = sorted([
        (chain.id("bob"), chain.id("erin"), 2_500, 230_000, 10_000),
        (chain.id("dave"), chain.id("alice"), 1_000, 240_000, 30_000),
    ])
    listed = cli_json(node, keyring, "query", "trades", "--slot", str(slot))
    assert isinstance(listed, list)
    assert sorted((t["buyer"], t["seller"], t["quantity_wh"], t["price"], t["fee_per_kwh"]) for t in listed) == expected
    assert {t["price_fmt"] for t in listed} == {"0.230000 EUR/kWh", "0.240000 EUR/kWh"}
    found = node.rpc.tx_search(f"trade.slot={slot}")
    assert int(found["total_count"]) == 2
    by_seller = node.rpc.tx_search(f"trade.seller='{chain.id('erin')}'")
    assert int(by_seller["total_count"]) == 1
    position = cli_json(node, keyring, "query", "position", str(slot), "bob")
    assert (position["bought_wh"], position["paid"], position["fees_paid"], position["collateral"]) == (
        2_500, 575_000, 25_000, 50_000)
    book = node.rpc.query_json(f"/book/{slot}/zone-a")
    assert book["asks"] == [{"price": 230_000, "quantity_wh": 500, "orders": 1},
                            {"price": 240_000, "quantity_wh": 1_000, "orders": 1}]
    assert book["bids"] == []
    best = cli_json(node, keyring, "query", "best", str(slot), "zone-b")
    assert best["best_ask"]["effective_price"] == 260_000
