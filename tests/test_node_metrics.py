"""Prometheus metrics gathered around the ledger app (node/metrics.py), in-process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from abci_app.ledger.modules.bank import Transfer
from abci_app.pb.tendermint.abci import types_pb2 as abci
from node import metrics
from tests.conftest import free_port
from tests.harness import Chain
from tests.market_harness import FEE_AA, PRICE, market_chain, order, place


def sample(m: metrics.AppMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = m.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


@pytest.fixture
def chain() -> Chain:
    return Chain()


def instrument(chain: Chain) -> tuple[Chain, metrics.AppMetrics]:
    app_metrics = metrics.AppMetrics()
    chain.app = metrics.InstrumentedApp(chain.app, app_metrics)  # type: ignore[assignment]
    return chain, app_metrics


def test_basic_blocks_txs_and_latency(chain: Chain) -> None:
    chain, m = instrument(chain)
    bob = chain.id("bob")
    good = chain.sign("alice", Transfer(recipient=bob, amount=5, memo=""))
    broke = chain.sign("bob", Transfer(recipient=chain.id("alice"), amount=10**12, memo=""))
    assert chain.check(good).code == 0
    response = chain.block([good, broke, b"\x00garbage"])
    codes = [r.code for r in response.tx_results]
    assert codes[0] == 0 and codes[1] != 0 and codes[2] != 0
    chain.block([])

    assert sample(m, "gridledger_blocks_total") == 2
    assert sample(m, "gridledger_block_height") == chain.query("/chain")["height"]
    assert sample(m, "gridledger_txs_total", {"type": "transfer", "code": "0"}) == 1
    assert sample(m, "gridledger_txs_total", {"type": "transfer", "code": str(codes[1])}) == 1
    assert sample(m, "gridledger_txs_total", {"type": metrics.UNDECODABLE, "code": str(codes[2])}) == 1
    assert sample(m, "gridledger_check_txs_total", {"type": "transfer", "code": "0"}) == 1
    assert sample(m, "gridledger_block_txs_sum") == 3
    for method in ("finalize_block", "commit", "check_tx"):
        assert sample(m, "gridledger_abci_call_seconds_count", {"method": method}) >= 1, method
    assert sample(m, "gridledger_settlement_pending_slots") == 0


def test_basic_query_answers_unchanged(chain: Chain) -> None:
    chain.block([])
    plain = chain.query("/supply")
    chain, _ = instrument(chain)
    assert chain.query("/supply") == plain


class _EventApp:
    """Stands in for the ledger where market and settlement events are not implemented yet."""

    def __init__(self, per_block: list[tuple[list[abci.Event], list[abci.Event]]]) -> None:
        self.per_block = per_block

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        tx_events, block_events = self.per_block.pop(0)
        return abci.ResponseFinalizeBlock(events=block_events,
                                          tx_results=[abci.ExecTxResult(code=0, events=tx_events)])

    def __getattr__(self, name: str) -> Any:
        return lambda req: None


def event(kind: str, **attributes: str) -> abci.Event:
    return abci.Event(type=kind, attributes=[abci.EventAttribute(key=k, value=v) for k, v in attributes.items()])


def test_basic_market_and_settlement_events() -> None:
    m = metrics.AppMetrics()
    app = metrics.InstrumentedApp(_EventApp([
        ([event("order.placed", id="1"), event("order.placed", id="2"), event("trade", slot="900", quantity_wh="2000"),
          event("trade", slot="1800", quantity_wh="500")], []),
        ([event("trade", slot="900")], [event("settlement.slot", slot="900")]),
        ([], [event("settlement.slot", slot="1800")]),
    ]), m)
    app.finalize_block(abci.RequestFinalizeBlock(height=1, txs=[b"x"]))
    assert sample(m, "gridledger_orders_placed_total") == 2
    assert sample(m, "gridledger_trades_total") == 2
    assert sample(m, "gridledger_traded_energy_wh_total") == 2500
    assert sample(m, "gridledger_settlement_pending_slots") == 2
    assert sample(m, "gridledger_settlement_oldest_pending_slot_timestamp_seconds") == 900
    app.finalize_block(abci.RequestFinalizeBlock(height=2, txs=[b"y"]))
    assert sample(m, "gridledger_trades_total") == 3
    assert sample(m, "gridledger_settlement_pending_slots") == 1
    assert sample(m, "gridledger_settlement_oldest_pending_slot_timestamp_seconds") == 1800
    assert sample(m, "gridledger_slots_settled_total") == 1
    app.finalize_block(abci.RequestFinalizeBlock(height=3, txs=[]))
    assert sample(m, "gridledger_settlement_pending_slots") == 0
    assert sample(m, "gridledger_settlement_oldest_pending_slot_timestamp_seconds") == 0


def test_basic_http_endpoint(chain: Chain) -> None:
    chain, m = instrument(chain)
    chain.block([])
    address = f"127.0.0.1:{free_port()}"
    stop = metrics.serve(m, address)
    try:
        text = httpx.get(f"http://{address}/metrics", timeout=5).text
    finally:
        stop()
    assert "gridledger_blocks_total 1.0" in text
    assert 'gridledger_abci_call_seconds_bucket{le="0.001",method="finalize_block"}' in text


@pytest.mark.parametrize("address", ["nocolon", "host:port", "host:0", "host:70000"])
def test_invalid_metrics_address(address: str) -> None:
    with pytest.raises(ValueError):
        metrics.parse_address(address)


def test_basic_metrics_address_forms() -> None:
    assert metrics.parse_address(":9100") == ("0.0.0.0", 9100)
    assert metrics.parse_address("127.0.0.1:9100") == ("127.0.0.1", 9100)


def test_basic_real_market_orders_and_trade() -> None:
    chain = market_chain()
    chain, m = instrument(chain)
    place(chain, "alice", order("ask", 2000, PRICE))
    place(chain, "bob", order("bid", 2000, PRICE + FEE_AA))
    assert sample(m, "gridledger_orders_placed_total") == 2
    assert sample(m, "gridledger_trades_total") == 1
    assert sample(m, "gridledger_traded_energy_wh_total") == 2000
    assert sample(m, "gridledger_txs_total", {"type": "place_order", "code": "0"}) == 2
    assert sample(m, "gridledger_settlement_pending_slots") == 1  # traded, not settled yet


def test_basic_block_time_and_retain_height(chain: Chain) -> None:
    chain, m = instrument(chain)
    chain.block([])
    assert sample(m, "gridledger_block_timestamp_seconds") == chain.time
    assert sample(m, "gridledger_retain_height") == 0  # a short chain keeps every block
    assert sample(m, "gridledger_abci_call_seconds_count", {"method": "commit"}) == 1


def test_basic_process_and_build_info_and_no_created_series(chain: Chain) -> None:
    from prometheus_client import generate_latest

    from node.cometbft import pinned_version

    chain, m = instrument(chain)
    chain.block([])
    text = generate_latest(m.registry).decode()
    assert "_created" not in text
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
                   "process_open_fds", "python_info"):
        assert f"\n{family}" in text, family
    labels = metrics.build_labels()
    assert labels["app_version"] == "1" and labels["cometbft_version"] == pinned_version()
    assert sample(m, "gridledger_build_info", labels) == 1
