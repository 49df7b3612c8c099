"""The call auction against a brute-force optimum on small random books (docs/market.md "Call auction").

For every random book (two zones, random route fees, three origins, bids with and without origin
restrictions, quantities of 1-3 units of 100 Wh): the auction's welfare equals the brute-force maximum;
its volume is the largest among the welfare-maximising allocations; every traded pair crosses at its
price; no order strictly better than its price is left out and none strictly worse trades; a traded
bid pays no more than any other source it accepts would cost it (prices differ by at most the route
fee); the result does not depend on account ids.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from abci_app.ledger.modules.market.auction import CallResult, clear_call_auction
from abci_app.ledger.modules.market.records import Order

ZONES = ("a", "b")
ORIGINS = ("solar", "wind", "grid-mix")
UNIT = 100
CAP = 1_000_000


def make_order(order_id: int, owner: str, side: str, zone: str, price: int, units: int, origin: str,
               accept: tuple[str, ...]) -> Order:
    return Order(id=order_id, owner=owner, side=side, zone=zone, slot=0, price=price, quantity_wh=units * UNIT,
                 remaining_wh=units * UNIT, valid_until=0, tif="limit", client_order_id="",
                 origin=origin if side == "ask" else "", accept_origins=accept if side == "bid" else (),
                 collateral_per_kwh=0, locked=0, placed_at=0)


@st.composite
def books(draw: st.DrawFn) -> tuple[list[Order], list[Order], dict[tuple[str, str], int]]:
    fees = {(x, y): draw(st.sampled_from((0, 10_000, 20_000, 30_000))) for x in ZONES for y in ZONES}
    prices = st.integers(0, 30).map(lambda p: p * 10_000)
    asks = [make_order(0, f"s{i}", "ask", draw(st.sampled_from(ZONES)), draw(prices), draw(st.integers(1, 3)),
                       draw(st.sampled_from(ORIGINS)), ()) for i in range(draw(st.integers(1, 4)))]
    accepts = st.sampled_from(((), ("solar",), ("wind",), ("solar", "wind"), ("grid-mix",)))
    bids = [make_order(0, f"b{i}", "bid", draw(st.sampled_from(ZONES)), draw(prices), draw(st.integers(1, 3)), "",
                       draw(accepts)) for i in range(draw(st.integers(1, 4)))]
    # Interleave ids as if placed in random order (time priority).
    everyone = asks + bids
    order_ids = draw(st.permutations(list(range(1, len(everyone) + 1))))
    numbered = [make_order(order_ids[i], o.owner, o.side, o.zone, o.price, o.quantity_wh // UNIT, o.origin,
                           o.accept_origins) for i, o in enumerate(everyone)]
    return [o for o in numbered if o.side == "bid"], [o for o in numbered if o.side == "ask"], fees


def compatible(bid: Order, ask: Order, fees: dict[tuple[str, str], int]) -> bool:
    return (not bid.accept_origins or ask.origin in bid.accept_origins) and \
        bid.price >= ask.price + fees[(ask.zone, bid.zone)]


def allocations(bids: list[Order], asks: list[Order], fees: dict[tuple[str, str], int]) -> Iterator[dict]:
    """Every allocation in whole units over the compatible pairs (the brute force)."""
    pairs = [(b, a) for b in bids for a in asks if compatible(b, a, fees)]
    left = {o.id: o.quantity_wh // UNIT for o in bids + asks}

    def walk(index: int, chosen: dict[tuple[int, int], int]) -> Iterator[dict]:
        if index == len(pairs):
            yield dict(chosen)
            return
        bid, ask = pairs[index]
        for units in range(min(left[bid.id], left[ask.id]) + 1):
            left[bid.id] -= units
            left[ask.id] -= units
            if units:
                chosen[(bid.id, ask.id)] = units
            yield from walk(index + 1, chosen)
            chosen.pop((bid.id, ask.id), None)
            left[bid.id] += units
            left[ask.id] += units

    yield from walk(0, {})


def welfare_and_volume(allocation: dict, orders: dict[int, Order], fees: dict[tuple[str, str], int]) -> tuple[int, int]:
    welfare = volume = 0
    for (bid_id, ask_id), units in allocation.items():
        bid, ask = orders[bid_id], orders[ask_id]
        welfare += units * (bid.price - ask.price - fees[(ask.zone, bid.zone)])
        volume += units
    return welfare, volume


def run(bids: list[Order], asks: list[Order], fees: dict[tuple[str, str], int]) -> CallResult:
    return clear_call_auction(bids, asks, lambda x, y: fees[(x, y)], floor=0, cap=CAP)


@settings(max_examples=250, deadline=None)
@given(books())
def test_basic_optimal_and_competitive(book: tuple[list[Order], list[Order], dict[tuple[str, str], int]]) -> None:
    bids, asks, fees = book
    orders = {o.id: o for o in bids + asks}
    result = run(bids, asks, fees)
    ours = {(p.bid_id, p.ask_id): p.quantity_wh // UNIT for p in result.pairings}
    assert all(p.quantity_wh % UNIT == 0 for p in result.pairings)
    best = max(welfare_and_volume(a, orders, fees) for a in allocations(bids, asks, fees))
    # Welfare first, then volume: the brute force's lexicographic maximum.
    assert welfare_and_volume(ours, orders, fees) == best

    price = {(c.zone, c.origin): c.price for c in result.prices}
    filled = {o.id: 0 for o in bids + asks}
    for p in result.pairings:
        bid, ask = orders[p.bid_id], orders[p.ask_id]
        filled[bid.id] += p.quantity_wh
        filled[ask.id] += p.quantity_wh
        # Every trade crosses at its price: the seller gets at least its limit, the buyer pays at most its own.
        assert p.price == price[(ask.zone, ask.origin)]
        assert p.fee_per_kwh == fees[(ask.zone, bid.zone)]
        assert ask.price <= p.price and p.price + p.fee_per_kwh <= bid.price
        assert (not bid.accept_origins or ask.origin in bid.accept_origins) and bid.owner != ask.owner
    for ask in asks:
        class_price = price[(ask.zone, ask.origin)]
        if ask.price < class_price:
            assert filled[ask.id] == ask.quantity_wh, ("ask strictly in the money left out", ask)
        if ask.price > class_price:
            assert filled[ask.id] == 0, ("ask above the price traded", ask)
    for bid in bids:
        sources = [price[(z, o)] + fees[(z, bid.zone)] for (z, o) in price
                   if not bid.accept_origins or o in bid.accept_origins]
        if sources and bid.price > min(sources):
            assert filled[bid.id] == bid.quantity_wh, ("bid strictly in the money left out", bid)
        paid = {p.price + p.fee_per_kwh for p in result.pairings if p.bid_id == bid.id}
        # One all-in price per bid, and no accepted source would have been cheaper.
        assert len(paid) <= 1
        if paid:
            assert paid.pop() <= min(sources)
    for c in result.prices:
        assert 0 <= c.low <= c.price <= c.high <= CAP


@settings(max_examples=200, deadline=None)
@given(books(), st.randoms(use_true_random=False))
def test_basic_outcome_does_not_depend_on_account_ids(book: tuple[list[Order], list[Order],
                                                                 dict[tuple[str, str], int]], rnd: object) -> None:
    bids, asks, fees = book
    names = sorted({o.owner for o in bids + asks})
    shuffled = list(names)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    rename = dict(zip(names, (f"z{n}" for n in shuffled), strict=True))

    def renamed(orders: list[Order]) -> list[Order]:
        return [make_order(o.id, rename[o.owner], o.side, o.zone, o.price, o.quantity_wh // UNIT, o.origin,
                           o.accept_origins) for o in orders]

    assert run(bids, asks, fees) == run(renamed(bids), renamed(asks), fees)
