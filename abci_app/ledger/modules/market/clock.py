"""Market steps driven by the block clock, run at the start of every block.

1. Orders whose ``valid_until`` is before the block time expire.
2. Every slot whose gate closure (slot start minus ``gate_closure_lead_s``) is
   at or before the block time closes: in call-auction mode each zone's book
   clears at its uniform price first; then every order still open expires.
"""

from __future__ import annotations

from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.market.handlers import close_order, execute_trade
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.matching import match_call
from abci_app.ledger.modules.market.records import ASK, BID, CALL_AUCTION, MECHANISMS, Clearing
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
            for zone in sorted(gov.zone_dsos(state)):
                run_call_auction(market, slot, zone, height, time, events)
        for order in market.slot_orders(slot):
            close_order(market, order, "order.expired", "gate_closure", events)
    return events


def run_call_auction(market: Market, slot: int, zone: str, height: int, time: int, events: list[Event]) -> None:
    """Clear one zone's book of ``slot`` at one price and execute every pairing."""
    bids = market.book_orders(slot, zone, BID)
    asks = market.book_orders(slot, zone, ASK)
    if not bids or not asks:
        return
    result = match_call(bids, asks, market.fee(zone, zone))
    if result is None:
        return
    orders = {order.id: order for order in bids + asks}
    for pairing in result.pairings:
        bid, ask, _ = execute_trade(market, orders[pairing.bid_id], orders[pairing.ask_id], pairing.quantity_wh,
                                 result.price, MECHANISMS[CALL_AUCTION], height, time, events)
        orders[bid.id], orders[ask.id] = bid, ask
    market.put_clearing(Clearing(slot=slot, zone=zone, price=result.price, volume_wh=result.volume_wh,
                                 mechanism=MECHANISMS[CALL_AUCTION], height=height))
    events.append(event("market.cleared", slot=slot, zone=zone, price=result.price, volume_wh=result.volume_wh,
                        trades=len(result.pairings)))
