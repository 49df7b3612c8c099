"""Matching: pure functions from a book snapshot and an order to fills.

Nothing here reads or writes state; ``handlers`` and ``clock`` re-check and
apply the fills. Prices compare as *effective prices* in the buyer's zone: an
ask from zone a is worth ``ask.price + fee(a, b)`` to a bid in zone b, and a bid
price is all-in (energy plus grid fee), so a bid and an ask cross when
``bid.price >= ask.price + fee(a, b)``.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from abci_app.ledger import errors
from abci_app.ledger.modules.market.records import BID, Order

FeeFn = Callable[[str, str], int]
"""fee(from_zone, to_zone) per kWh."""


@dataclass(frozen=True)
class Fill:
    """``quantity_wh`` of the incoming order trades against one resting order."""

    resting_id: int
    quantity_wh: int
    price: int
    """Energy price per kWh (what the seller receives)."""
    fee_per_kwh: int
    """Grid fee per kWh the buyer pays on top; price + fee never exceeds the bid."""


def accepts(bid: Order, ask: Order) -> bool:
    """A bid restricted to some origins trades only with asks of those origins."""
    return not bid.accept_origins or ask.origin in bid.accept_origins


def crosses(bid_price: int, ask_price: int, fee: int) -> bool:
    return bid_price >= ask_price + fee


def match_continuous(incoming: Order, books: Mapping[str, Iterator[Order]], fee: FeeFn) -> list[Fill]:
    """Fills for ``incoming`` against the opposite side of one slot's books (continuous double auction).

    ``books`` maps each zone to that zone's opposite-side orders in its own
    price-time order. Resting orders are taken best effective price first, ties
    by time (order id); each trades at the resting order's price, converted to
    an energy price. Orders whose origin the bid does not accept are passed
    over. Reaching one of the incoming owner's own orders raises ``SelfTrade``
    (the handler rejects such orders before matching; this is the backstop).
    """
    heap: list[tuple[int, int, str, Order]] = []
    sources = dict(books)

    def push_next(zone: str) -> None:
        for order in sources[zone]:
            if incoming.side == BID:
                if not accepts(incoming, order):
                    continue
                rank = order.price + fee(zone, incoming.zone)  # cheapest effective ask first
            else:
                if not accepts(order, incoming):
                    continue
                rank = -(order.price - fee(incoming.zone, zone))  # dearest effective bid first
            heapq.heappush(heap, (rank, order.id, zone, order))
            return

    for zone in sorted(sources):
        push_next(zone)
    fills: list[Fill] = []
    left = incoming.remaining_wh
    while left > 0 and heap:
        _, _, zone, resting = heapq.heappop(heap)
        if incoming.side == BID:
            route_fee = fee(zone, incoming.zone)
            if not crosses(incoming.price, resting.price, route_fee):
                break
            price = resting.price
        else:
            route_fee = fee(incoming.zone, zone)
            if not crosses(resting.price, incoming.price, route_fee):
                break
            price = resting.price - route_fee
        if resting.owner == incoming.owner:
            raise errors.SelfTrade(f"order would trade with the signer's own order {resting.id}")
        quantity = min(left, resting.remaining_wh)
        fills.append(Fill(resting.id, quantity, price, route_fee))
        left -= quantity
        push_next(zone)
    return fills


@dataclass(frozen=True)
class Pairing:
    bid_id: int
    ask_id: int
    quantity_wh: int


@dataclass(frozen=True)
class CallResult:
    """Outcome of a uniform-price call auction in one zone."""

    price: int
    """Uniform energy price per kWh; buyers pay it plus the zone's internal fee."""
    volume_wh: int
    """Volume traded (may fall short of the crossing volume when origin restrictions bind)."""
    pairings: tuple[Pairing, ...]


def clearing_price(bids: list[Order], asks: list[Order], fee: int) -> tuple[int, int] | None:
    """The uniform price and the most volume it can clear, or None if nothing crosses.

    A bid takes part at energy prices up to ``bid.price - fee``; an ask at prices
    from ``ask.price``. Demand D(p) and supply S(p) are the quantities willing
    at p; the cleared volume at p is min(D(p), S(p)). Among the limit prices
    that maximise it (an interval [lo, hi]: the flat overlap when several do),
    the price is the midpoint ``(lo + hi) // 2``, rounded down.
    """
    ask_prices = sorted(a.price for a in asks)
    ask_quantity = _cumulative(sorted(asks, key=lambda a: a.price))
    bid_prices = sorted(b.price - fee for b in bids)
    bid_quantity = _cumulative(sorted(bids, key=lambda b: b.price))
    total_demand = bid_quantity[-1]
    best_volume, lo, hi = 0, 0, 0
    for price in sorted(set(ask_prices) | set(bid_prices)):
        supply = ask_quantity[bisect.bisect_right(ask_prices, price)]
        demand = total_demand - bid_quantity[bisect.bisect_left(bid_prices, price)]
        volume = min(demand, supply)
        if volume > best_volume:
            best_volume, lo, hi = volume, price, price
        elif volume == best_volume and volume > 0:
            hi = price
    if best_volume == 0:
        return None
    return (lo + hi) // 2, best_volume


def _cumulative(orders: list[Order]) -> list[int]:
    """[0, q1, q1+q2, ...] over ``orders``' remaining quantities."""
    sums = [0]
    for order in orders:
        sums.append(sums[-1] + order.remaining_wh)
    return sums


def match_call(bids: list[Order], asks: list[Order], fee: int) -> CallResult | None:
    """Clear one zone's book of one slot at a uniform price (pay-as-clear).

    ``bids`` are in priority order (dearest first, then earliest), ``asks``
    cheapest first, then earliest. Every bid with ``price - fee >= P`` and every
    ask with ``price <= P`` may trade; they are paired in priority order, so the
    side that is longer at P is rationed at the margin by price, then time.
    A bid with an origin restriction takes only accepted asks; an owner never
    trades with itself.
    """
    found = clearing_price(bids, asks, fee)
    if found is None:
        return None
    price, _ = found
    buyers = [b for b in bids if b.price - fee >= price]
    sellers = [a for a in asks if a.price <= price]
    left = {a.id: a.remaining_wh for a in sellers}
    pairings: list[Pairing] = []
    first_open = 0
    for bid in buyers:
        need = bid.remaining_wh
        index = first_open
        while need > 0 and index < len(sellers):
            ask = sellers[index]
            index += 1
            if left[ask.id] == 0 or ask.owner == bid.owner or not accepts(bid, ask):
                continue
            quantity = min(need, left[ask.id])
            left[ask.id] -= quantity
            need -= quantity
            pairings.append(Pairing(bid.id, ask.id, quantity))
        while first_open < len(sellers) and left[sellers[first_open].id] == 0:
            first_open += 1
    volume = sum(p.quantity_wh for p in pairings)
    if volume == 0:
        return None
    return CallResult(price=price, volume_wh=volume, pairings=tuple(pairings))

