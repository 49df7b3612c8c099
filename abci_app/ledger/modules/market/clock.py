"""Market steps driven by the block clock, run at the start of every block.

1. Orders whose ``valid_until`` is before the block time expire.
2. Every slot whose gate closure (slot start minus ``gate_closure_lead_s``) is
   at or before the block time closes: in call-auction mode the slot's whole
   book clears first, all zones together (``auction.py``); then every order
   still open expires.
"""

from __future__ import annotations

from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.market.auction import FeeFn, clear_call_auction, crossing_self
from abci_app.ledger.modules.market.handlers import close_order, execute_trade
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.records import ASK, BID, CALL_AUCTION, MECHANISMS, ORIGINS, ClassClearing, Clearing
from abci_app.ledger.params import get_params
from abci_app.ledger.state import State


def on_block(state: State, height: int, time: int) -> list[Event]:
    market = Market(state)
    events: list[Event] = []
    for order_id in market.orders_expired_before(time):
        order = market.require_order(order_id)
        close_order(market, order, "order.expired", "valid_until", events)
    params = get_params(state)
    # The latest slot whose gate has closed: the last multiple of the slot length <= time + lead.
    closing = (time + params.gate_closure_lead_s) // params.slot_length_s * params.slot_length_s
    if closing > market.closed_through():
        market.mark_closed_through(closing)
    closed = market.closed_through()
    while (slot := market.first_booked_slot()) is not None and slot <= closed:
        if params.matching_mode == CALL_AUCTION:
            run_call_auction(market, slot, height, time, events)
        for order in market.slot_orders(slot):
            close_order(market, order, "order.expired", "gate_closure", events)
    return events


def run_call_auction(market: Market, slot: int, height: int, time: int, events: list[Event]) -> None:
    """Clear ``slot``'s whole book, every zone together (``auction.clear_call_auction``), and execute it."""
    params = get_params(market.state)
    bids = [o for o in market.slot_orders(slot) if o.side == BID]
    asks = [o for o in market.slot_orders(slot) if o.side == ASK]
    fee = _fee_memo(market)
    for withdrawn in crossing_self(bids, asks, fee):
        close_order(market, withdrawn, "order.cancelled", "self_cross", events)
        bids = [o for o in bids if o.id != withdrawn.id]
        asks = [o for o in asks if o.id != withdrawn.id]
    if not bids or not asks:
        return
    result = clear_call_auction(bids, asks, fee, floor=params.min_price_per_kwh, cap=params.max_price_per_kwh)
    orders = {order.id: order for order in bids + asks}
    for pairing in result.pairings:
        bid, ask, _ = execute_trade(market, orders[pairing.bid_id], orders[pairing.ask_id], pairing.quantity_wh,
                                    pairing.price, MECHANISMS[CALL_AUCTION], height, time, events)
        orders[bid.id], orders[ask.id] = bid, ask
    trades_by_zone: dict[str, int] = {}
    for pairing in result.pairings:
        zone = orders[pairing.ask_id].zone
        trades_by_zone[zone] = trades_by_zone.get(zone, 0) + 1
    for zone in sorted({p.zone for p in result.prices}):
        classes = tuple(ClassClearing(origin=p.origin, price=p.price, low=p.low, high=p.high, volume_wh=p.volume_wh)
                        for p in result.prices if p.zone == zone)
        volume = sum(c.volume_wh for c in classes)
        if volume == 0:
            continue
        main = max(classes, key=lambda c: (c.volume_wh, -ORIGINS.index(c.origin)))
        market.put_clearing(Clearing(slot=slot, zone=zone, price=main.price, volume_wh=volume,
                                     mechanism=MECHANISMS[CALL_AUCTION], height=height, classes=classes))
        events.append(event("market.cleared", slot=slot, zone=zone, price=main.price, volume_wh=volume,
                            trades=trades_by_zone.get(zone, 0),
                            prices=",".join(f"{c.origin}:{c.price}" for c in classes if c.volume_wh)))


def _fee_memo(market: Market) -> FeeFn:
    memo: dict[tuple[str, str], int] = {}

    def fee(from_zone: str, to_zone: str) -> int:
        if (from_zone, to_zone) not in memo:
            memo[(from_zone, to_zone)] = market.fee(from_zone, to_zone)
        return memo[(from_zone, to_zone)]

    return fee
