"""Uniform-price call auction per zone at gate closure (matching_mode 1, docs/market.md).

Orders only rest; the first block at or after SLOT - 300 clears each zone's book at one price
P = (lo + hi) // 2 over the volume-maximising interval, buyers pay P + fee(z, z), then every
remaining order expires. Expected prices and fills are hand-computed in the comments.
"""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.market.msgs import PlaceOrder
from tests.harness import ZONE_A, ZONE_B, Chain, events_of
from tests.market_harness import (
    SLOT,
    block_at,
    market_chain,
    market_rejected,
    money,
    order,
    place,
    position,
    trades,
)

TEN_EUR = 10_000_000
GATE = SLOT - 300


@pytest.fixture
def chain() -> Chain:
    return market_chain(mode=1)


def place_all(chain: Chain, orders: list[tuple[str, PlaceOrder]]) -> None:
    for who, msg in orders:
        place(chain, who, msg)


def test_basic_worked_example_of_the_docs(chain: Chain) -> None:
    place(chain, "alice", order("ask", 2_000, 240_000))
    place(chain, "carol", order("ask", 3_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 4_000, 260_000))
    assert trades(chain) == []  # nothing trades on arrival
    response = block_at(chain, GATE)
    # zone a: ask 2000 from 240000, bid 4000 up to 250000: lo 240000, hi 250000, P 245000
    assert trades(chain) == [("bob", "alice", 2_000, 245_000, 10_000)]
    assert events_of(response, "market.cleared") == [
        {"slot": str(SLOT), "zone": ZONE_A, "price": "245000", "volume_wh": "2000", "trades": "1"}]
    trade = events_of(response, "trade")[0]
    assert (trade["mechanism"], trade["value"], trade["fee"]) == ("call", "490000", "20000")
    # Clearing first, then expiry of what is left (bob's 2000 Wh, carol's 3000 Wh) by id.
    assert [e.type for e in response.events if e.type != "proposal.expired"] == [
        "order.filled", "order.filled", "trade", "market.cleared", "order.expired", "order.expired"]
    assert [e["id"] for e in events_of(response, "order.expired")] == ["2", "3"]
    # bob: pays 490000 + 20000; keeps 40000 collateral; alice: +490000, 40000 collateral; carol: nothing.
    assert money(chain, "bob") == (TEN_EUR - 510_000, 40_000)
    assert money(chain, "alice") == (TEN_EUR + 490_000, 40_000)
    assert money(chain, "carol") == (TEN_EUR, 0)
    assert money(chain, "dso") == (20_000, 0)
    assert chain.query(f"/clearing/{SLOT}/{ZONE_A}") == {
        "slot": SLOT, "zone": ZONE_A, "price": 245_000, "volume_wh": 2_000, "mechanism": "call",
        "height": chain.height}
    with pytest.raises(LookupError, match="code 101"):
        chain.query(f"/clearing/{SLOT}/{ZONE_B}")
    assert position(chain, "bob")["bought_wh"] == 2_000
    assert position(chain, "bob")["bid_open_wh"] == 0


def test_basic_uniform_price_for_all(chain: Chain) -> None:
    place_all(chain, [
        ("alice", order("ask", 1_000, 200_000)), ("erin", order("ask", 1_000, 220_000)),
        ("alice", order("ask", 1_000, 240_000)),
        ("bob", order("bid", 1_000, 260_000)), ("bob", order("bid", 1_000, 240_000)),
        ("bob", order("bid", 1_000, 220_000)),
    ])
    block_at(chain, GATE)
    # energy limits 250000, 230000, 210000; volume 2000 on [220000, 230000]: P = 225000.
    assert trades(chain) == [("bob", "alice", 1_000, 225_000, 10_000), ("bob", "erin", 1_000, 225_000, 10_000)]
    assert money(chain, "bob") == (TEN_EUR - 2 * 235_000, 40_000)
    assert money(chain, "erin") == (TEN_EUR + 225_000, 20_000)


def test_basic_flat_overlap_midpoint_off_tick(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 200_000))
    place(chain, "bob", order("bid", 1_000, 210_100))
    block_at(chain, GATE)
    # [200000, 200100] -> 200050, below the tick of 100: the rule takes the midpoint as it is.
    assert trades(chain) == [("bob", "alice", 1_000, 200_050, 10_000)]
    assert money(chain, "bob") == (TEN_EUR - 210_050, 20_000)


@pytest.mark.parametrize(("first", "second"), [("alice", "erin"), ("erin", "alice")])
def test_basic_rationing_at_the_margin_by_time(chain: Chain, first: str, second: str) -> None:
    place(chain, first, order("ask", 1_000, 200_000))
    place(chain, second, order("ask", 1_000, 200_000))
    place(chain, "bob", order("bid", 1_500, 300_000))
    block_at(chain, GATE)
    # [200000, 290000] -> 245000; the earlier ask fills, the later one gets the last 500 Wh.
    assert trades(chain) == [("bob", first, 1_000, 245_000, 10_000), ("bob", second, 500, 245_000, 10_000)]


def test_basic_rationing_of_bids_at_the_margin(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_500, 200_000))
    place(chain, "dave", order("bid", 1_000, 300_000))  # zone b: not in zone a's auction
    place(chain, "erin", order("bid", 1_000, 300_000))
    place(chain, "bob", order("bid", 1_000, 300_000))
    block_at(chain, GATE)
    assert trades(chain) == [("erin", "alice", 1_000, 245_000, 10_000), ("bob", "alice", 500, 245_000, 10_000)]


def test_basic_zones_clear_separately(chain: Chain) -> None:
    place_all(chain, [
        ("carol", order("ask", 1_000, 200_000, origin="wind")), ("bob", order("bid", 1_000, 300_000)),
        ("alice", order("ask", 1_000, 240_000)), ("dave", order("bid", 1_000, 260_000)),
    ])
    response = block_at(chain, GATE)
    # zone a: [240000, 290000] -> 265000; zone b: [200000, 250000] -> 225000.
    assert trades(chain) == [("bob", "alice", 1_000, 265_000, 10_000), ("dave", "carol", 1_000, 225_000, 10_000)]
    assert [(e["zone"], e["price"]) for e in events_of(response, "market.cleared")] == [
        (ZONE_A, "265000"), (ZONE_B, "225000")]
    assert chain.query(f"/clearing/{SLOT}/{ZONE_B}")["price"] == 225_000


def test_basic_zone_b_does_not_trade_with_zone_a(chain: Chain) -> None:
    place(chain, "carol", order("ask", 1_000, 200_000, origin="wind"))
    place(chain, "bob", order("bid", 1_000, 300_000))
    response = block_at(chain, GATE)
    assert trades(chain) == []
    assert events_of(response, "market.cleared") == []
    assert money(chain, "bob") == (TEN_EUR, 0)


def test_basic_origin_restriction(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 200_000, origin="solar"))
    place(chain, "erin", order("ask", 1_000, 230_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 300_000, accept=("wind",)))
    response = block_at(chain, GATE)
    # volume 2000 on [230000, 290000] -> 260000; bob takes only the wind 1000 Wh.
    assert trades(chain) == [("bob", "erin", 1_000, 260_000, 10_000)]
    assert events_of(response, "market.cleared") == [
        {"slot": str(SLOT), "zone": ZONE_A, "price": "260000", "volume_wh": "1000", "trades": "1"}]
    assert money(chain, "alice") == (TEN_EUR, 0)


def test_basic_no_crossing_no_trades(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 260_000))
    place(chain, "bob", order("bid", 1_000, 260_000))  # energy limit 250000
    response = block_at(chain, GATE)
    assert trades(chain) == []
    assert events_of(response, "market.cleared") == []
    assert len(events_of(response, "order.expired")) == 2
    with pytest.raises(LookupError, match="code 101"):
        chain.query(f"/clearing/{SLOT}/{ZONE_A}")
    assert money(chain, "alice") == money(chain, "bob") == (TEN_EUR, 0)


def test_basic_order_expired_by_valid_until_misses_the_auction(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 200_000, valid_until=GATE - 1))
    place(chain, "bob", order("bid", 1_000, 300_000))
    response = block_at(chain, GATE)
    assert trades(chain) == []
    assert [(e["id"], e["reason"]) for e in events_of(response, "order.expired")] == [
        ("1", "valid_until"), ("2", "gate_closure")]


def test_basic_post_only_takes_part_like_limit(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000, tif="post_only"))
    place(chain, "bob", order("bid", 1_000, 260_000, tif="post_only"))
    block_at(chain, GATE)
    assert trades(chain) == [("bob", "alice", 1_000, 245_000, 10_000)]


def test_basic_order_of_placement_within_a_block_only_matters_at_the_margin() -> None:
    """The same orders in two transaction orders give the same price and the same fills per account."""
    orders = [("alice", order("ask", 1_000, 200_000)), ("erin", order("ask", 2_000, 220_000)),
              ("bob", order("bid", 1_500, 300_000)), ("dave", order("bid", 500, 260_000))]
    results = []
    for sequence in (orders, list(reversed(orders))):
        chain = market_chain(mode=1)
        block = chain.block([chain.sign(who, msg) for who, msg in sequence])
        assert [r.code for r in block.tx_results] == [0, 0, 0, 0]
        block_at(chain, GATE)
        results.append(sorted(trades(chain)))
    # zone a: asks 1000 from 200000, 2000 from 220000; bid 1500 up to 290000: volume 1500 on
    # [220000, 290000] -> 255000; bob takes alice's 1000 then 500 of erin's.
    assert results[0] == results[1] == [("bob", "alice", 1_000, 255_000, 10_000), ("bob", "erin", 500, 255_000, 10_000)]


@pytest.mark.parametrize("tif", ["ioc", "fok"])
def test_invalid_immediate_time_in_force(chain: Chain, tif: str) -> None:
    market_rejected(chain, "bob", order("bid", 1_000, 250_000, tif=tif), errors.UnsupportedTimeInForce)


def test_invalid_self_trade_in_call_mode(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    market_rejected(chain, "alice", order("bid", 1_000, 250_000), errors.SelfTrade)


def test_basic_later_slot_untouched(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 200_000, slot=SLOT + 900, valid_until=SLOT + 900))
    place(chain, "bob", order("bid", 1_000, 300_000, slot=SLOT + 900, valid_until=SLOT + 900))
    block_at(chain, GATE)
    assert trades(chain, SLOT + 900) == []
    block_at(chain, GATE + 900)
    assert trades(chain, SLOT + 900) == [("bob", "alice", 1_000, 245_000, 10_000)]
