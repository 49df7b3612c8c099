"""The pure matching functions of abci_app/ledger/modules/market/matching.py, on hand-built books.

Fees here are a plain table, so each example's effective prices can be read off the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.market.matching import (
    Fill,
    accepts,
    crosses,
    match_continuous,
)
from abci_app.ledger.modules.market.records import Order, amount

A, B = "a", "b"
FEES = {(A, A): 10_000, (B, B): 10_000, (A, B): 30_000, (B, A): 30_000}


def fee(from_zone: str, to_zone: str) -> int:
    return FEES[(from_zone, to_zone)]


def mk(order_id: int, side: str, price: int, quantity_wh: int, *, owner: str = "", zone: str = A,
       origin: str = "", accept: tuple[str, ...] = ()) -> Order:
    """An open order; the owner defaults to one account per order."""
    return Order(id=order_id, owner=owner or f"acct-{order_id}", side=side, zone=zone, slot=900, price=price,
                 quantity_wh=quantity_wh, remaining_wh=quantity_wh, valid_until=900, tif="limit",
                 client_order_id="", origin=origin or ("solar" if side == "ask" else ""), accept_origins=accept,
                 collateral_per_kwh=0, locked=0, placed_at=0)


def books(**zones: list[Order]) -> dict[str, Iterator[Order]]:
    return {zone: iter(orders) for zone, orders in zones.items()}


# -- money and predicates --------------------------------------------------------------------------
@pytest.mark.parametrize(("quantity", "price", "expected"), [
    (1_000, 250_000, 250_000), (333, 250_100, 83_283), (1, 999, 0), (0, 250_000, 0), (2_500, 12_345, 30_862),
])
def test_amount_rounds_down(quantity: int, price: int, expected: int) -> None:
    assert amount(quantity, price) == expected


def test_crosses_at_equality() -> None:
    assert crosses(250_000, 240_000, 10_000)
    assert not crosses(249_900, 240_000, 10_000)


def test_accepts() -> None:
    ask = mk(1, "ask", 1, 100, origin="wind")
    assert accepts(mk(2, "bid", 1, 100), ask)
    assert accepts(mk(2, "bid", 1, 100, accept=("solar", "wind")), ask)
    assert not accepts(mk(2, "bid", 1, 100, accept=("solar",)), ask)


# -- continuous -----------------------------------------------------------------------------------
def test_continuous_bid_across_zones_by_effective_price() -> None:
    asks_a = [mk(1, "ask", 230_000, 1_000), mk(2, "ask", 240_000, 1_000)]
    asks_b = [mk(3, "ask", 200_000, 2_000, zone=B)]
    fills = match_continuous(mk(9, "bid", 250_000, 3_500), books(a=asks_a, b=asks_b), fee)
    # effective for zone a: 3 -> 230000, 1 -> 240000, 2 -> 250000
    assert fills == [Fill(3, 2_000, 200_000, 30_000), Fill(1, 1_000, 230_000, 10_000), Fill(2, 500, 240_000, 10_000)]


def test_continuous_tie_on_effective_price_goes_to_lower_id() -> None:
    asks_a = [mk(2, "ask", 240_000, 1_000)]
    asks_b = [mk(1, "ask", 220_000, 1_000, zone=B)]
    fills = match_continuous(mk(9, "bid", 260_000, 2_000), books(a=asks_a, b=asks_b), fee)
    assert [f.resting_id for f in fills] == [1, 2]


def test_continuous_stops_at_first_non_crossing() -> None:
    asks_a = [mk(1, "ask", 240_000, 1_000), mk(2, "ask", 240_100, 1_000)]
    assert match_continuous(mk(9, "bid", 250_000, 5_000), books(a=asks_a), fee) == [Fill(1, 1_000, 240_000, 10_000)]


def test_continuous_nothing_crosses() -> None:
    assert match_continuous(mk(9, "bid", 249_900, 1_000), books(a=[mk(1, "ask", 240_000, 1_000)]), fee) == []
    assert match_continuous(mk(9, "bid", 249_900, 1_000), books(a=[], b=[]), fee) == []


def test_continuous_origin_restriction_passes_over() -> None:
    asks_a = [mk(1, "ask", 200_000, 1_000, origin="solar"), mk(2, "ask", 230_000, 1_000, origin="wind"),
              mk(3, "ask", 235_000, 1_000, origin="solar"), mk(4, "ask", 236_000, 1_000, origin="wind")]
    fills = match_continuous(mk(9, "bid", 250_000, 2_000, accept=("wind",)), books(a=asks_a), fee)
    assert fills == [Fill(2, 1_000, 230_000, 10_000), Fill(4, 1_000, 236_000, 10_000)]


def test_continuous_incoming_ask_price_is_bid_minus_fee() -> None:
    bids_a = [mk(1, "bid", 250_000, 1_000)]
    bids_b = [mk(2, "bid", 260_000, 1_000, zone=B), mk(3, "bid", 250_000, 1_000, zone=B)]
    fills = match_continuous(mk(9, "ask", 200_000, 5_000), books(a=bids_a, b=bids_b), fee)
    # for an ask in zone a: 1 -> 240000, 2 -> 230000, 3 -> 220000
    assert fills == [Fill(1, 1_000, 240_000, 10_000), Fill(2, 1_000, 230_000, 30_000),
                     Fill(3, 1_000, 220_000, 30_000)]


def test_continuous_incoming_ask_skips_bids_that_refuse_its_origin() -> None:
    bids_a = [mk(1, "bid", 300_000, 1_000, accept=("wind",)), mk(2, "bid", 250_000, 1_000)]
    fills = match_continuous(mk(9, "ask", 200_000, 2_000, origin="solar"), books(a=bids_a), fee)
    assert fills == [Fill(2, 1_000, 240_000, 10_000)]


def test_continuous_self_trade_backstop() -> None:
    asks_a = [mk(1, "ask", 240_000, 1_000, owner="me")]
    with pytest.raises(errors.SelfTrade):
        match_continuous(mk(9, "bid", 250_000, 1_000, owner="me"), books(a=asks_a), fee)


def test_continuous_reads_only_filled_orders_plus_one_per_zone() -> None:
    reads: dict[str, int] = {A: 0, B: 0}

    def counted(zone: str, orders: list[Order]) -> Iterator[Order]:
        for order in orders:
            reads[zone] += 1
            yield order

    asks_a = [mk(i, "ask", 240_000, 1_000) for i in range(1, 1_001)]
    asks_b = [mk(i, "ask", 230_000, 1_000, zone=B) for i in range(1_001, 2_001)]
    fills = match_continuous(mk(9_999, "bid", 260_000, 3_000),
                             {A: counted(A, asks_a), B: counted(B, asks_b)}, fee)
    # zone a asks are worth 250000 to zone a, zone b asks 260000: all three fills come from zone a.
    assert [f.resting_id for f in fills] == [1, 2, 3]
    assert reads == {A: 4, B: 1}
