"""The pure call auction of abci_app/ledger/modules/market/auction.py, on hand-built books.

Fees are a plain table (10000 inside a zone, 30000 between zones), so each example's competitive
interval can be read off the test: the auction takes its midpoint, rounded down.
"""

from __future__ import annotations

from abci_app.ledger.modules.market.auction import CallPairing, clear_call_auction, crossing_self
from abci_app.ledger.modules.market.records import Order

A, B = "a", "b"
FEES = {(A, A): 10_000, (B, B): 10_000, (A, B): 30_000, (B, A): 30_000}


def fee(from_zone: str, to_zone: str) -> int:
    return FEES[(from_zone, to_zone)]


def mk(order_id: int, side: str, price: int, quantity_wh: int, *, owner: str = "", zone: str = A,
       origin: str = "", accept: tuple[str, ...] = ()) -> Order:
    return Order(id=order_id, owner=owner or f"acct-{order_id}", side=side, zone=zone, slot=900, price=price,
                 quantity_wh=quantity_wh, remaining_wh=quantity_wh, valid_until=900, tif="limit",
                 client_order_id="", origin=origin or ("solar" if side == "ask" else ""), accept_origins=accept,
                 collateral_per_kwh=0, locked=0, placed_at=0)


def clear(bids: list[Order], asks: list[Order], floor: int = 0, cap: int = 10_000_000) -> tuple[
        list[tuple[int, int, int, int]], dict[tuple[str, str], tuple[int, int, int]]]:
    result = clear_call_auction(bids, asks, fee, floor=floor, cap=cap)
    pairs = [(p.bid_id, p.ask_id, p.quantity_wh, p.price) for p in result.pairings]
    return pairs, {(c.zone, c.origin): (c.low, c.price, c.high) for c in result.prices}


def test_basic_flat_overlap_midpoint() -> None:
    # ask 1000 at 240000, bid 1000 at 260000 all-in (250000 energy in zone a): both fill, and every price
    # in [240000, 250000] supports that: 245000.
    pairs, prices = clear([mk(2, "bid", 260_000, 1_000)], [mk(1, "ask", 240_000, 1_000)])
    assert pairs == [(2, 1, 1_000, 245_000)]
    assert prices[(A, "solar")] == (240_000, 245_000, 250_000)


def test_basic_short_supply_prices_at_the_bid() -> None:
    # ask 2000 at 240000, bid 4000 at 260000 all-in: the bid is only half filled, so it is at the price:
    # 250000 (any lower price would leave a bid strictly in the money unfilled).
    pairs, prices = clear([mk(2, "bid", 260_000, 4_000)], [mk(1, "ask", 240_000, 2_000)])
    assert pairs == [(2, 1, 2_000, 250_000)]
    assert prices[(A, "solar")] == (250_000, 250_000, 250_000)


def test_basic_midpoint_rounds_down() -> None:
    # bid energy limit 210101 - 10000 = 200101; interval [200000, 200101] -> 200050.
    pairs, _ = clear([mk(2, "bid", 210_101, 1_000)], [mk(1, "ask", 200_000, 1_000)])
    assert pairs == [(2, 1, 1_000, 200_050)]


def test_basic_equal_limits_one_price() -> None:
    # ask and bid energy limit both 250000: the only price is 250000.
    pairs, prices = clear([mk(2, "bid", 260_000, 500)], [mk(1, "ask", 250_000, 1_000)])
    assert pairs == [(2, 1, 500, 250_000)]
    assert prices[(A, "solar")] == (250_000, 250_000, 250_000)


def test_basic_no_crossing() -> None:
    pairs, prices = clear([mk(2, "bid", 259_900, 1_000)], [mk(1, "ask", 250_000, 1_000)])
    assert pairs == []
    # Nothing trades: any price from the bid's energy limit to the ask's is competitive.
    assert prices[(A, "solar")][0] == 249_900 and prices[(A, "solar")][2] == 250_000


def test_basic_bid_below_the_fee_never_trades() -> None:
    pairs, _ = clear([mk(2, "bid", 5_000, 1_000)], [mk(1, "ask", 0, 1_000)])
    assert pairs == []


def test_basic_rations_asks_at_the_price_by_time() -> None:
    asks = [mk(1, "ask", 200_000, 1_000), mk(2, "ask", 200_000, 1_000)]
    pairs, prices = clear([mk(3, "bid", 300_000, 1_500)], asks)
    # 2000 Wh at 200000 for 1500 Wh: supply is long, the price is the asks' limit; order 1 first.
    assert pairs == [(3, 1, 1_000, 200_000), (3, 2, 500, 200_000)]
    assert prices[(A, "solar")] == (200_000, 200_000, 200_000)


def test_basic_rations_bids_at_the_price_by_time() -> None:
    bids = [mk(2, "bid", 300_000, 1_000), mk(3, "bid", 300_000, 1_000)]
    pairs, _ = clear(bids, [mk(1, "ask", 200_000, 1_500)])
    # 2000 Wh wanted for 1500: demand is long, the price is the bids' energy limit 290000; order 2 first.
    assert pairs == [(2, 1, 1_000, 290_000), (3, 1, 500, 290_000)]


def test_basic_cheaper_asks_first_whatever_their_time() -> None:
    asks = [mk(1, "ask", 210_000, 1_000), mk(2, "ask", 200_000, 1_000)]
    pairs, _ = clear([mk(3, "bid", 300_000, 1_000)], asks)
    # The 200000 ask serves; the price lies in [200000, 210000] (the untraded ask's limit): 205000.
    assert pairs == [(3, 2, 1_000, 205_000)]


def test_basic_origin_restriction_takes_only_its_origin() -> None:
    asks = [mk(1, "ask", 200_000, 1_000, origin="solar"), mk(2, "ask", 210_000, 1_000, origin="wind")]
    pairs, prices = clear([mk(3, "bid", 300_000, 2_000, accept=("wind",))], asks)
    # wind is short for the wind-only bid: its price is the bid's energy limit; solar does not trade.
    assert pairs == [(3, 2, 1_000, 290_000)]
    assert prices[(A, "wind")] == (290_000, 290_000, 290_000)
    assert prices[(A, "solar")] == (0, 100_000, 200_000)


def test_basic_nothing_acceptable() -> None:
    pairs, _ = clear([mk(2, "bid", 300_000, 1_000, accept=("wind",))], [mk(1, "ask", 200_000, 1_000)])
    assert pairs == []


def test_basic_cross_zone_pays_the_route_fee() -> None:
    pairs, _ = clear([mk(2, "bid", 300_000, 1_000, zone=A)], [mk(1, "ask", 200_000, 1_000, zone=B)])
    # Zone b's seller price lies in [200000, 270000 = 300000 - 30000]: 235000; the buyer pays 265000.
    assert pairs == [(2, 1, 1_000, 235_000)]
    result = clear_call_auction([mk(2, "bid", 300_000, 1_000, zone=A)], [mk(1, "ask", 200_000, 1_000, zone=B)],
                                fee, floor=0, cap=10_000_000)
    assert result.pairings == (CallPairing(2, 1, 1_000, 235_000, 30_000),)


def test_basic_prices_between_floor_and_cap() -> None:
    # A glut at 0 with a tiny demand: the price is pinned to the asks' limit 0, never below the floor.
    pairs, prices = clear([mk(2, "bid", 50_000, 1_000)], [mk(1, "ask", 0, 5_000)])
    assert pairs == [(2, 1, 1_000, 0)]
    # Nobody pins a class down from above: the cap bounds it.
    _, prices = clear([mk(2, "bid", 50_000, 1_000)], [mk(1, "ask", 0, 1_000)], cap=60_000)
    assert prices[(A, "solar")] == (0, 20_000, 40_000)


def test_basic_self_crossing_orders_withdraw_the_later() -> None:
    bids = [mk(3, "bid", 300_000, 1_000, owner="me")]
    asks = [mk(1, "ask", 200_000, 1_000, owner="me"), mk(2, "ask", 200_000, 1_000)]
    assert [o.id for o in crossing_self(bids, asks, fee)] == [3]
    assert crossing_self([mk(3, "bid", 205_000, 1_000, owner="me")], asks, fee) == []
