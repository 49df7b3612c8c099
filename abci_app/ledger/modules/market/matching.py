"""Matching: pure functions from a book snapshot and an order to fills.

Nothing here reads or writes state; ``handlers`` and ``clock`` re-check and
apply the fills. Prices compare as *effective prices* in the buyer's zone: an
ask from zone a is worth ``ask.price + fee(a, b)`` to a bid in zone b, and a bid
price is all-in (energy plus grid fee), so a bid and an ask cross when
``bid.price >= ask.price + fee(a, b)``.
"""

from __future__ import annotations

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
