"""Market queries: /book, /best, /orders, /order, /trades, /clearing, /position, /slots, /fees and their errors."""

from __future__ import annotations

import pytest

from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import ZONE_A, ZONE_B, Chain
from tests.market_harness import SLOT, cancel, order, place

NEXT = SLOT + 900


pytestmark = pytest.mark.market


def code_of(chain: Chain, path: str) -> int:
    return int(chain.app.query(abci.RequestQuery(path=path)).code)


def test_book_aggregates_by_level_best_first(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 250_000))
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "erin", order("ask", 500, 240_000))
    place(chain, "bob", order("bid", 1_000, 200_000))
    place(chain, "bob", order("bid", 500, 210_000))
    place(chain, "bob", order("bid", 300, 200_000))
    assert chain.query(f"/book/{SLOT}/{ZONE_A}") == {
        "slot": SLOT, "zone": ZONE_A,
        "asks": [{"price": 240_000, "quantity_wh": 1_500, "orders": 2},
                 {"price": 250_000, "quantity_wh": 1_000, "orders": 1}],
        "bids": [{"price": 210_000, "quantity_wh": 500, "orders": 1},
                 {"price": 200_000, "quantity_wh": 1_300, "orders": 2}],
    }
    assert chain.query(f"/book/{SLOT}/{ZONE_B}") == {"slot": SLOT, "zone": ZONE_B, "asks": [], "bids": []}
    assert chain.query(f"/book/{NEXT}/{ZONE_A}")["asks"] == []


def test_book_shows_remaining_after_a_partial_fill(chain: Chain) -> None:
    place(chain, "alice", order("ask", 2_000, 240_000))
    place(chain, "bob", order("bid", 1_200, 250_000))
    assert chain.query(f"/book/{SLOT}/{ZONE_A}")["asks"] == [{"price": 240_000, "quantity_wh": 800, "orders": 1}]


def test_book_caps_levels_at_50(chain: Chain) -> None:
    for i in range(50):
        place(chain, "alice", order("ask", 100, 240_000 + 100 * i))
    place(chain, "erin", order("ask", 100, 250_000))  # level 240000 + 100 x 100 = 250000 is also the 51st
    place(chain, "erin", order("ask", 100, 240_000))
    place(chain, "erin", order("ask", 100, 260_000))
    asks = chain.query(f"/book/{SLOT}/{ZONE_A}")["asks"]
    assert len(asks) == 50
    assert asks[0] == {"price": 240_000, "quantity_wh": 200, "orders": 2}
    assert asks[-1] == {"price": 244_900, "quantity_wh": 100, "orders": 1}


def test_best_effective_price_for_the_buyer_zone(chain: Chain) -> None:
    place(chain, "alice", order("ask", 2_000, 240_000))  # 1
    place(chain, "carol", order("ask", 3_000, 220_000, origin="wind"))  # 2
    place(chain, "bob", order("bid", 1_000, 200_000))  # 3
    # For zone a: alice 240000 + 10000 = carol 220000 + 30000 = 250000: the earlier order wins.
    assert chain.query(f"/best/{SLOT}/{ZONE_A}") == {
        "slot": SLOT, "buyer_zone": ZONE_A,
        "best_ask": {"zone": ZONE_A, "price": 240_000, "fee_per_kwh": 10_000, "effective_price": 250_000,
                     "quantity_wh": 2_000, "order": 1, "origin": "solar"},
        "best_bid": {"zone": ZONE_A, "price": 200_000, "quantity_wh": 1_000, "order": 3},
    }
    # For zone b: carol 230000, alice 270000.
    assert chain.query(f"/best/{SLOT}/{ZONE_B}") == {
        "slot": SLOT, "buyer_zone": ZONE_B,
        "best_ask": {"zone": ZONE_B, "price": 220_000, "fee_per_kwh": 10_000, "effective_price": 230_000,
                     "quantity_wh": 3_000, "order": 2, "origin": "wind"},
        "best_bid": None,
    }


def test_best_empty_book(chain: Chain) -> None:
    assert chain.query(f"/best/{SLOT}/{ZONE_A}") == {"slot": SLOT, "buyer_zone": ZONE_A, "best_ask": None,
                                                     "best_bid": None}


def test_orders_of_an_account(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000, slot=NEXT, valid_until=NEXT))
    place(chain, "bob", order("bid", 1_000, 200_000))
    place(chain, "alice", order("bid", 500, 200_000, client_order_id="b-2"))
    answer = chain.query(f"/orders/{chain.id('alice')}")
    assert answer["account"] == chain.id("alice")
    assert [(o["id"], o["side"], o["slot"], o["client_order_id"]) for o in answer["orders"]] == [
        (1, "ask", NEXT, ""), (3, "bid", SLOT, "b-2")]
    assert chain.query(f"/orders/{'00' * 20}") == {"account": "00" * 20, "orders": []}


def test_order(chain: Chain) -> None:
    place(chain, "bob", order("bid", 1_000, 200_000, accept=("hydro", "wind")))
    answer = chain.query("/order/1")
    assert (answer["accept_origins"], answer["locked"], answer["remaining_wh"]) == (["hydro", "wind"], 220_000, 1_000)
    assert cancel(chain, "bob", 1).code == 0
    assert code_of(chain, "/order/1") == 101


def test_trades_by_slot_and_by_account(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "bob", order("bid", 600, 250_000))
    place(chain, "dave", order("bid", 400, 280_000))
    place(chain, "erin", order("ask", 1_000, 240_000, slot=NEXT, valid_until=NEXT))
    place(chain, "bob", order("bid", 1_000, 250_000, slot=NEXT, valid_until=NEXT))
    by_slot = chain.query(f"/trades/slot/{SLOT}")
    assert by_slot["slot"] == SLOT
    assert [(t["id"], t["quantity_wh"], t["price"], t["fee_per_kwh"], t["value"], t["fee"])
            for t in by_slot["trades"]] == [(1, 600, 240_000, 10_000, 144_000, 6_000),
                                            (2, 400, 240_000, 30_000, 96_000, 12_000)]
    first = by_slot["trades"][0]
    assert {k: first[k] for k in ("buyer", "seller", "buyer_zone", "seller_zone", "bid_order", "ask_order",
                                  "origin", "mechanism", "slot")} == {
        "buyer": chain.id("bob"), "seller": chain.id("alice"), "buyer_zone": ZONE_A, "seller_zone": ZONE_A,
        "bid_order": 2, "ask_order": 1, "origin": "solar", "mechanism": "continuous", "slot": SLOT}
    assert [t["id"] for t in chain.query(f"/trades/slot/{NEXT}")["trades"]] == [3]
    assert [t["id"] for t in chain.query(f"/trades/account/{chain.id('bob')}")["trades"]] == [1, 3]
    assert [t["id"] for t in chain.query(f"/trades/account/{chain.id('alice')}")["trades"]] == [1, 2]
    assert chain.query(f"/trades/account/{chain.id('carol')}") == {"account": chain.id("carol"), "trades": []}
    assert chain.query(f"/trades/slot/{SLOT + 1}")["trades"] == []


def test_clearing_in_continuous_mode_is_the_last_trade_per_seller_zone(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "erin", order("ask", 1_000, 245_000))
    place(chain, "bob", order("bid", 1_500, 260_000))
    answer = chain.query(f"/clearing/{SLOT}/{ZONE_A}")
    assert {k: answer[k] for k in ("price", "volume_wh", "mechanism")} == {
        "price": 245_000, "volume_wh": 1_500, "mechanism": "continuous"}
    assert code_of(chain, f"/clearing/{SLOT}/{ZONE_B}") == 101


def test_position(chain: Chain) -> None:
    # A seller's position holds its collateral and its proceeds until settlement.
    place(chain, "alice", order("ask", 2_000, 240_000))
    place(chain, "bob", order("bid", 500, 250_000))
    assert chain.query(f"/position/{SLOT}/{chain.id('alice')}") == {
        "slot": SLOT, "account": chain.id("alice"), "bid_open_wh": 0, "ask_open_wh": 1_500, "bought_wh": 0,
        "sold_wh": 500, "paid": 0, "received": 120_000, "fees_paid": 0, "collateral": 10_000 + 120_000}
    assert chain.query(f"/position/{NEXT}/{chain.id('alice')}")["collateral"] == 0


def test_slots(chain: Chain) -> None:
    assert chain.query("/slots") == {"slots": [], "closed_through": SLOT - 3_600}
    place(chain, "bob", order("bid", 100, 200_000, slot=NEXT, valid_until=NEXT))
    place(chain, "bob", order("bid", 100, 200_000))
    place(chain, "dave", order("bid", 100, 200_000, slot=NEXT, valid_until=NEXT))
    assert chain.query("/slots")["slots"] == [SLOT, NEXT]


def test_fees(chain: Chain) -> None:
    answer = chain.query("/fees")
    assert answer["zones"] == [ZONE_A, ZONE_B]
    assert answer["fees"] == [
        {"from": ZONE_A, "to": ZONE_A, "fee_per_kwh": 10_000}, {"from": ZONE_A, "to": ZONE_B, "fee_per_kwh": 30_000},
        {"from": ZONE_B, "to": ZONE_A, "fee_per_kwh": 30_000}, {"from": ZONE_B, "to": ZONE_B, "fee_per_kwh": 10_000}]
    assert sorted((c["from_zone"], c["to_zone"], c["fee_per_kwh"]) for c in answer["components"]) == [
        (ZONE_A, ZONE_A, 10_000), (ZONE_A, ZONE_B, 15_000), (ZONE_A, ZONE_B, 15_000),
        (ZONE_B, ZONE_A, 15_000), (ZONE_B, ZONE_A, 15_000), (ZONE_B, ZONE_B, 10_000)]


def test_params_include_the_market(chain: Chain) -> None:
    params = chain.query("/params")
    assert {k: params[k] for k in ("slot_length_s", "gate_closure_lead_s", "max_slot_ahead_s", "tick_size",
                                   "min_quantity_wh", "max_price_per_kwh", "max_open_orders",
                                   "collateral_per_kwh", "matching_mode")} == {
        "slot_length_s": 900, "gate_closure_lead_s": 300, "max_slot_ahead_s": 172_800, "tick_size": 100,
        "min_quantity_wh": 100, "max_price_per_kwh": 10_000_000, "max_open_orders": 200,
        "collateral_per_kwh": 20_000, "matching_mode": 0}


@pytest.mark.parametrize(("path", "code"), [
    ("/book/x/zone-a", 100),
    ("/book/-900/zone-a", 100),
    ("/book/18446744073709551616/zone-a", 100),
    (f"/book/{SLOT}/zone-x", 101),
    (f"/book/{SLOT}", 100),
    (f"/book/{SLOT}/zone-a/extra", 100),
    ("/best/x/zone-a", 100),
    (f"/best/{SLOT}/zone-x", 101),
    ("/order/x", 100),
    ("/order/-1", 100),
    ("/order/99", 101),
    ("/orders", 100),
    ("/trades/slot/x", 100),
    ("/trades/other/1", 100),
    ("/trades/slot", 100),
    ("/clearing/x/zone-a", 100),
    (f"/clearing/{SLOT}/zone-a", 101),
    ("/position/x/acct", 100),
    (f"/position/{SLOT}", 100),
    ("/slots/extra", 100),
    ("/fees/zone-a", 100),
])
def test_invalid_arguments(chain: Chain, path: str, code: int) -> None:
    assert code_of(chain, path) == code
