"""Market records and money arithmetic (all integers; docs/market.md "Units").

Quantities are Wh, prices are money (smallest currency unit) per kWh, so the
money for ``q`` Wh at ``p`` per kWh is ``q * p / 1000``. Every such amount is
rounded down (``amount``). Because ``floor`` is superadditive, the money locked
for a whole order always covers what its parts pay, however it is filled.
"""

from __future__ import annotations

from dataclasses import dataclass

from abci_app.ledger.wire import Record

BID, ASK = "bid", "ask"
SIDES = (BID, ASK)
LIMIT, IOC, FOK, POST_ONLY = "limit", "ioc", "fok", "post_only"
TIME_IN_FORCE = (LIMIT, IOC, FOK, POST_ONLY)
GRID_MIX = "grid-mix"
ORIGINS = ("solar", "wind", "hydro", "biomass", "storage", GRID_MIX)
CONTINUOUS, CALL_AUCTION = 0, 1
MECHANISMS = {CONTINUOUS: "continuous", CALL_AUCTION: "call"}
# Trades of accepted off-chain offers (accept_offer): bilateral, whatever the matching mode.
DIRECT = "direct"


def amount(quantity_wh: int, per_kwh: int) -> int:
    """Money for ``quantity_wh`` at ``per_kwh``, rounded down to the smallest unit."""
    return quantity_wh * per_kwh // 1000


@dataclass(frozen=True)
class Order(Record):
    """An open order (closed orders are deleted; their history is in events and trades)."""

    id: int
    """Sequential order id; also the order's time priority (lower is earlier)."""
    owner: str
    """Account id of the participant."""
    side: str
    """bid | ask."""
    zone: str
    """The owner's grid zone."""
    slot: int
    """Delivery slot start, unix seconds."""
    price: int
    """Limit price per kWh: for a bid the most it pays including the grid fee, for an ask the least it receives."""
    quantity_wh: int
    """Quantity ordered."""
    remaining_wh: int
    """Quantity not yet filled."""
    valid_until: int
    """Last block time (unix seconds) at which the order may trade."""
    tif: str
    """limit | ioc | fok | post_only."""
    client_order_id: str
    """The owner's own reference, possibly empty."""
    origin: str
    """Asks: the energy's origin; bids: empty."""
    accept_origins: tuple[str, ...]
    """Bids: origins accepted (empty: any); asks: empty."""
    collateral_per_kwh: int
    """Collateral rate in force when the order was placed."""
    locked: int
    """Money currently locked for this order (price and collateral of the remaining quantity)."""
    placed_at: int
    """Block time of placement."""

    def required_lock(self, remaining_wh: int) -> int:
        """Money an order with ``remaining_wh`` left must hold locked."""
        collateral = amount(remaining_wh, self.collateral_per_kwh)
        if self.side == BID:
            return amount(remaining_wh, self.price) + collateral
        return collateral


@dataclass(frozen=True)
class Trade(Record):
    """A matched quantity: the buyer has paid, the delivery obligation awaits settlement."""

    id: int
    slot: int
    buyer: str
    seller: str
    buyer_zone: str
    seller_zone: str
    quantity_wh: int
    price: int
    """Energy price per kWh the seller receives."""
    fee_per_kwh: int
    """Grid fee per kWh the buyer pays on top (zone of the seller to zone of the buyer)."""
    value: int
    """Money paid for the energy: amount(quantity_wh, price)."""
    fee: int
    """Money paid in grid fees (sum of the DSOs' shares)."""
    bid_order: int
    ask_order: int
    origin: str
    mechanism: str
    """continuous | call | direct."""
    height: int
    time: int


@dataclass(frozen=True)
class Position(Record):
    """One participant's open quantities and trades in one slot: the delivery obligation."""

    slot: int
    account: str
    bid_open_wh: int
    """Remaining quantity of open bids."""
    ask_open_wh: int
    """Remaining quantity of open asks."""
    bought_wh: int
    sold_wh: int
    paid: int
    """Money paid for energy bought (grid fees excluded)."""
    received: int
    """Money received for energy sold."""
    fees_paid: int
    """Grid fees paid."""
    collateral: int
    """Stability collateral locked for this slot's trades until settlement."""

    @property
    def is_empty(self) -> bool:
        return not (self.bid_open_wh or self.ask_open_wh or self.bought_wh or self.sold_wh or self.collateral)


@dataclass(frozen=True)
class Clearing(Record):
    """The last price formed in a slot and zone."""

    slot: int
    zone: str
    price: int
    """Call auction: the uniform clearing price; continuous: the last trade's energy price."""
    volume_wh: int
    """Call auction: volume cleared; continuous: the slot's volume traded so far with sellers of this zone."""
    mechanism: str
    height: int


@dataclass(frozen=True)
class GridFee(Record):
    """One DSO's component of the fee for energy from one zone to another."""

    from_zone: str
    to_zone: str
    dso: str
    fee_per_kwh: int


@dataclass(frozen=True)
class TakenOffer(Record):
    """An off-chain offer that an ``accept_offer`` has consumed: it cannot be accepted again."""

    offer_id: bytes
    maker: str
    taker: str
    quantity_wh: int
    """Energy the acceptance took (the rest of the offer lapses)."""
    trade: int
    """The trade the acceptance created."""
    height: int
    time: int
