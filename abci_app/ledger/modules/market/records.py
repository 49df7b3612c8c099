"""Market records and money arithmetic (all integers; docs/market.md "Units").

Quantities are Wh, prices are money (smallest currency unit) per kWh, so the
money for ``q`` Wh at ``p`` per kWh is ``q * p / 1000``. Every such amount is
rounded down (``amount``). Because ``floor`` is superadditive, the money locked
for a whole order always covers what its parts pay, however it is filled.
"""

from __future__ import annotations

from abci_app.ledger.wire import I64, Record

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


def amount_up(quantity_wh: int, per_kwh: int) -> int:
    """Money for ``quantity_wh`` at ``per_kwh``, rounded up: what a party is charged, so that charges always
    cover the credits and payouts computed from the same energy with ``amount``."""
    return -(-quantity_wh * per_kwh // 1000)


class Order(Record, frozen=True):
    """An open order (closed orders are deleted; their history is in events and trades)."""

    id: I64
    """Sequential order id; also the order's time priority (lower is earlier)."""
    owner: str
    """Account id of the participant."""
    side: str
    """bid | ask."""
    zone: str
    """The owner's grid zone."""
    slot: I64
    """Delivery slot start, unix seconds."""
    price: I64
    """Limit price per kWh: for a bid the most it pays including the grid fee, for an ask the least it receives."""
    quantity_wh: I64
    """Quantity ordered."""
    remaining_wh: I64
    """Quantity not yet filled."""
    valid_until: I64
    """Last block time (unix seconds) at which the order may trade."""
    tif: str
    """limit | ioc | fok | post_only."""
    client_order_id: str
    """The owner's own reference, possibly empty."""
    origin: str
    """Asks: the energy's origin; bids: empty."""
    accept_origins: tuple[str, ...]
    """Bids: origins accepted (empty: any); asks: empty."""
    collateral_per_kwh: I64
    """Collateral rate in force when the order was placed."""
    locked: I64
    """Money currently locked for this order (price and collateral of the remaining quantity)."""
    placed_at: I64
    """Block time of placement."""

    def required_lock(self, remaining_wh: int) -> int:
        """Money an order with ``remaining_wh`` left must hold locked."""
        collateral = amount(remaining_wh, self.collateral_per_kwh)
        if self.side == BID:
            return amount(remaining_wh, self.price) + collateral
        return collateral


class Trade(Record, frozen=True):
    """A matched quantity: the buyer has paid, the delivery obligation awaits settlement."""

    id: I64
    slot: I64
    buyer: str
    seller: str
    buyer_zone: str
    seller_zone: str
    quantity_wh: I64
    price: I64
    """Energy price per kWh the seller receives."""
    fee_per_kwh: I64
    """Grid fee per kWh the buyer pays on top (zone of the seller to zone of the buyer)."""
    value: I64
    """Money paid for the energy: amount(quantity_wh, price)."""
    fee: I64
    """Money paid in grid fees (sum of the DSOs' shares)."""
    bid_order: I64
    ask_order: I64
    origin: str
    mechanism: str
    """continuous | call | direct."""
    height: I64
    time: I64


class Position(Record, frozen=True):
    """One participant's open quantities and trades in one slot: the delivery obligation."""

    slot: I64
    account: str
    bid_open_wh: I64
    """Remaining quantity of open bids."""
    ask_open_wh: I64
    """Remaining quantity of open asks."""
    bought_wh: I64
    sold_wh: I64
    paid: I64
    """Money paid for energy bought (grid fees excluded)."""
    received: I64
    """Money received for energy sold."""
    fees_paid: I64
    """Grid fees paid."""
    collateral: I64
    """Money locked for this slot's trades until settlement: the stability collateral of every fill, and a
    seller's proceeds (released when the seller is charged for what it delivered)."""

    @property
    def is_empty(self) -> bool:
        return not (self.bid_open_wh or self.ask_open_wh or self.bought_wh or self.sold_wh or self.collateral)


class ClassClearing(Record, frozen=True):
    """The call auction's price of one origin's energy sold in one zone."""

    origin: str
    price: I64
    """Seller price per kWh: the midpoint of the competitive interval, rounded down."""
    low: I64
    """Lowest competitive price."""
    high: I64
    """Highest competitive price."""
    volume_wh: I64
    """Energy of this origin sold in the zone."""


class Clearing(Record, frozen=True):
    """The last price formed in a slot and zone."""

    slot: I64
    zone: str
    price: I64
    """Call auction: the price of the zone's most traded origin (``classes`` has every origin's);
    continuous: the last trade's energy price."""
    volume_wh: I64
    """Call auction: volume sold by the zone's sellers; continuous: the slot's volume traded so far with sellers
    of this zone."""
    mechanism: str
    height: I64
    classes: tuple[ClassClearing, ...] = ()
    """Call auction: each origin offered in the zone, traded or not; continuous: empty."""


class GridFee(Record, frozen=True):
    """One DSO's component of the fee for energy from one zone to another."""

    from_zone: str
    to_zone: str
    dso: str
    fee_per_kwh: I64


class TakenOffer(Record, frozen=True):
    """An off-chain offer that an ``accept_offer`` has consumed: it cannot be accepted again."""

    offer_id: bytes
    maker: str
    taker: str
    quantity_wh: I64
    """Energy the acceptance took (the rest of the offer lapses)."""
    trade: I64
    """The trade the acceptance created."""
    height: I64
    time: I64
