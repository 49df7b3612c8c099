"""The call auction at gate closure (matching_mode 1, docs/market.md "Call auction").

Orders only rest; the first block at or after SLOT - 300 clears the slot's whole book, all zones
together: the welfare-maximising allocation (then the most volume), each zone and origin at the
midpoint of its competitive price interval; buyers pay that plus the route's fee; then every
remaining order expires. Expected prices and fills are hand-computed in the comments.
"""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.market.msgs import FeeEntry, PlaceOrder, SetGridFees
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


pytestmark = pytest.mark.market(mode=1)


def place_all(chain: Chain, orders: list[tuple[str, PlaceOrder]]) -> None:
    for who, msg in orders:
        place(chain, who, msg)


def test_basic_worked_example_of_the_docs(chain: Chain) -> None:
    place(chain, "alice", order("ask", 2_000, 240_000))
    place(chain, "carol", order("ask", 3_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 4_000, 260_000))
    assert trades(chain) == []  # nothing trades on arrival
    response = block_at(chain, GATE)
    # All zones clear together. bob (zone a, 260000 all-in) values alice's solar at 240000 + fee 10000 and
    # carol's wind from zone b at 220000 + fee 30000: 250000 either way, 10000 below his limit, so he takes
    # all 2000 Wh of alice and 2000 of carol's 3000. carol is partly filled, so zone b's wind price is her
    # limit 220000 (low = high); bob's all-in price is then 250000 from both zones, which makes zone a's
    # solar price 250000 - 10000 = 240000.
    assert trades(chain) == [("bob", "alice", 2_000, 240_000, 10_000), ("bob", "carol", 2_000, 220_000, 30_000)]
    assert [(e["zone"], e["price"], e["volume_wh"], e["trades"], e["prices"])
            for e in events_of(response, "market.cleared")] == [
        (ZONE_A, "240000", "2000", "1", "solar:240000"), (ZONE_B, "220000", "2000", "1", "wind:220000")]
    first, second = events_of(response, "trade")
    assert (first["mechanism"], first["value"], first["fee"]) == ("call", "480000", "20000")
    assert (second["value"], second["fee"]) == ("440000", "60000")
    # Clearing first, then expiry of what is left (carol's 1000 Wh).
    assert [(e["id"], e["remaining_wh"]) for e in events_of(response, "order.expired")] == [("2", "1000")]
    # bob: 2 x 500000 all-in, 4 kWh of collateral; alice +480000 and carol +440000, 2 kWh of collateral each
    # (proceeds and collateral held until settlement);
    # the fees: a->a 20000 to dso-a, b->a 60000 split between dso-a and dso-b.
    assert money(chain, "bob") == (TEN_EUR - 1_000_000, 80_000)
    assert money(chain, "alice") == (TEN_EUR + 480_000, 40_000 + 480_000)
    assert money(chain, "carol") == (TEN_EUR + 440_000, 40_000 + 440_000)
    assert money(chain, "dso") == (20_000 + 30_000, 0)
    assert money(chain, "dso_b") == (30_000, 0)
    clearing = chain.query(f"/clearing/{SLOT}/{ZONE_A}")
    assert (clearing["price"], clearing["volume_wh"], clearing["mechanism"]) == (240_000, 2_000, "call")
    assert clearing["classes"] == [
        {"origin": "solar", "price": 240_000, "low": 240_000, "high": 240_000, "volume_wh": 2_000}]
    assert chain.query(f"/clearing/{SLOT}/{ZONE_B}")["classes"] == [
        {"origin": "wind", "price": 220_000, "low": 220_000, "high": 220_000, "volume_wh": 2_000}]
    assert position(chain, "bob")["bought_wh"] == 4_000
    assert position(chain, "bob")["bid_open_wh"] == 0


def test_basic_price_inside_the_competitive_interval(chain: Chain) -> None:
    """The review's case: 1000 Wh at 310000 all-in against asks 500 at 100000, 500 at 200000, 1000 at 240000."""
    place_all(chain, [
        ("alice", order("ask", 500, 100_000)), ("erin", order("ask", 500, 200_000)),
        ("alice", order("ask", 1_000, 240_000)), ("bob", order("bid", 1_000, 310_000)),
    ])
    response = block_at(chain, GATE)
    # The two cheapest asks meet the 1000 Wh. Every price from 200000 (the dearest ask that trades) to 240000
    # (the cheapest that does not) supports it; above 240000 the third ask would be strictly in the money and
    # unfilled. Midpoint: 220000, and the 240000 ask, above the price, does not trade.
    assert trades(chain) == [("bob", "alice", 500, 220_000, 10_000), ("bob", "erin", 500, 220_000, 10_000)]
    assert events_of(response, "market.cleared")[0]["price"] == "220000"
    assert chain.query(f"/clearing/{SLOT}/{ZONE_A}")["classes"][0]["low"] == 200_000
    assert chain.query(f"/clearing/{SLOT}/{ZONE_A}")["classes"][0]["high"] == 240_000


def test_basic_uniform_price_for_all(chain: Chain) -> None:
    place_all(chain, [
        ("alice", order("ask", 1_000, 200_000)), ("erin", order("ask", 1_000, 220_000)),
        ("alice", order("ask", 1_000, 240_000)),
        ("bob", order("bid", 1_000, 260_000)), ("bob", order("bid", 1_000, 240_000)),
        ("bob", order("bid", 1_000, 220_000)),
    ])
    block_at(chain, GATE)
    # energy limits 250000, 230000, 210000 against 200000, 220000, 240000: two pairs gain; the price lies in
    # [220000 (erin trades), 230000 (bob's second bid trades)]: 225000.
    assert trades(chain) == [("bob", "alice", 1_000, 225_000, 10_000), ("bob", "erin", 1_000, 225_000, 10_000)]
    assert money(chain, "bob") == (TEN_EUR - 2 * 235_000, 40_000)
    assert money(chain, "erin") == (TEN_EUR + 225_000, 20_000 + 225_000)


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
    # 2000 Wh offered at 200000 for 1500 Wh wanted: a higher price would leave asks strictly in the money
    # unfilled, so the price is 200000 (low = high); the earlier ask fills, the later one gets the last 500 Wh.
    assert trades(chain) == [("bob", first, 1_000, 200_000, 10_000), ("bob", second, 500, 200_000, 10_000)]


def test_basic_rationing_of_bids_at_the_margin(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_500, 200_000))
    place(chain, "dave", order("bid", 1_000, 300_000))  # zone b: 270000 net of the 30000 route fee
    place(chain, "erin", order("bid", 1_000, 300_000))
    place(chain, "bob", order("bid", 1_000, 300_000))
    block_at(chain, GATE)
    # 3000 Wh wanted for 1500 Wh: the price rises to what zone a's bids pay net of their 10000 fee, 290000;
    # dave would pay 320000 all-in from zone b and is priced out; erin (earlier) fills, bob gets 500 Wh.
    assert trades(chain) == [("erin", "alice", 1_000, 290_000, 10_000), ("bob", "alice", 500, 290_000, 10_000)]


def test_basic_zones_clear_together(chain: Chain) -> None:
    place_all(chain, [
        ("carol", order("ask", 1_000, 200_000, origin="wind")), ("bob", order("bid", 1_000, 300_000)),
        ("alice", order("ask", 1_000, 240_000)), ("dave", order("bid", 1_000, 260_000)),
    ])
    response = block_at(chain, GATE)
    # Welfare: bob-alice (300 - 250) + dave-carol (260 - 210) = 100 beats bob-carol alone (300 - 230) = 70.
    # Competitive prices: zone a solar in [240000, 270000], zone b wind in [220000, 250000]; midpoints 255000
    # and 235000. bob pays 265000 all-in, which is also what carol's wind would cost him (235000 + 30000):
    # zone prices differ by at most the route fee.
    assert trades(chain) == [("bob", "alice", 1_000, 255_000, 10_000), ("dave", "carol", 1_000, 235_000, 10_000)]
    assert [(e["zone"], e["price"]) for e in events_of(response, "market.cleared")] == [
        (ZONE_A, "255000"), (ZONE_B, "235000")]
    assert chain.query(f"/clearing/{SLOT}/{ZONE_B}")["price"] == 235_000


def test_basic_cross_zone_trade(chain: Chain) -> None:
    """Zone b's wind reaches a zone a buyer when his limit covers the route's fee."""
    place(chain, "carol", order("ask", 1_000, 200_000, origin="wind"))
    place(chain, "bob", order("bid", 1_000, 300_000))
    response = block_at(chain, GATE)
    # wind in zone b: [200000 (carol's limit), 270000 (bob's limit less the 30000 fee)] -> 235000.
    assert trades(chain) == [("bob", "carol", 1_000, 235_000, 30_000)]
    assert [e["zone"] for e in events_of(response, "market.cleared")] == [ZONE_B]
    assert money(chain, "bob") == (TEN_EUR - 265_000, 20_000)


def test_basic_origin_restriction(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 200_000, origin="solar"))
    place(chain, "erin", order("ask", 1_000, 230_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 300_000, accept=("wind",)))
    response = block_at(chain, GATE)
    # bob wants 2000 Wh of wind, there are 1000: wind is short, so its price is what bob pays net of the fee,
    # 290000. Nobody wants solar: it does not trade (its class has no volume).
    assert trades(chain) == [("bob", "erin", 1_000, 290_000, 10_000)]
    assert events_of(response, "market.cleared") == [
        {"slot": str(SLOT), "zone": ZONE_A, "price": "290000", "volume_wh": "1000", "trades": "1",
         "prices": "wind:290000"}]
    assert money(chain, "alice") == (TEN_EUR, 0)


def test_basic_origin_filters_do_not_lose_volume(chain: Chain) -> None:
    """The review's case: an any-origin bid must not take the only solar ask from a solar-only bid."""
    place_all(chain, [
        ("alice", order("ask", 1_000, 100_000, origin="solar")),
        ("erin", order("ask", 1_000, 150_000, origin="grid-mix")),
        ("bob", order("bid", 1_000, 300_000)),
        ("dave", order("bid", 1_000, 310_000, accept=("solar",))),
    ])
    block_at(chain, GATE)
    # 2000 Wh trade: dave (zone b, solar only) gets alice's solar, bob (any origin) erin's grid-mix.
    # Prices: grid-mix at least erin's 150000; solar at least grid-mix (else bob would rather buy solar) and at
    # most 310000 - 30000 = 280000 (dave's limit less the route fee). Lowest vector: both 150000; highest:
    # both 280000 (grid-mix may not exceed solar). Midpoints: 215000 for both.
    assert sorted(trades(chain)) == sorted([("bob", "erin", 1_000, 215_000, 10_000),
                                            ("dave", "alice", 1_000, 215_000, 30_000)])


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


def test_basic_zero_price_glut(chain: Chain) -> None:
    """A midday PV glut: asks at 0 with more energy than anyone wants clear at 0; buyers pay only the fee."""
    place(chain, "alice", order("ask", 3_000, 0))
    place(chain, "bob", order("bid", 1_000, 30_000))
    block_at(chain, GATE)
    assert trades(chain) == [("bob", "alice", 1_000, 0, 10_000)]
    assert money(chain, "bob") == (TEN_EUR - 10_000, 20_000)


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
    # 2000 Wh wanted (bob 1500, dave 500 from zone b at +30000) against 3000 offered: erin's 220000 ask is at
    # the price, partly filled: 220000. bob takes alice's 1000 and 500 of erin's, dave the other 500 of erin's.
    assert results[0] == results[1] == sorted([("bob", "alice", 1_000, 220_000, 10_000),
                                               ("bob", "erin", 500, 220_000, 10_000),
                                               ("dave", "erin", 500, 220_000, 30_000)])


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


def test_basic_self_crossing_after_a_fee_cut_withdraws_the_later_order(chain: Chain) -> None:
    """Placement refuses an order crossing the owner's own; a fee cut can make two resting ones cross."""
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "alice", order("bid", 1_000, 245_000))  # 235000 net of the fee: does not cross
    assert chain.deliver("dso", SetGridFees(entries=(FeeEntry(ZONE_A, ZONE_A, 0),))).code == 0
    response = block_at(chain, GATE)
    assert [(e["id"], e["reason"]) for e in events_of(response, "order.cancelled")] == [("2", "self_cross")]
    assert trades(chain) == []
