"""Market messages and their stateless checks."""

from __future__ import annotations

from typing import ClassVar

from abci_app.ledger import codec, errors
from abci_app.ledger.modules.market import direct
from abci_app.ledger.modules.market.records import ASK, BID, ORIGINS, SIDES, TIME_IN_FORCE
from abci_app.ledger.msg import Msg, require_amount, require_name
from abci_app.ledger.wire import I64, Record

MAX_FEE_ENTRIES = 64


class PlaceOrder(Msg, frozen=True):
    """A participant offers (ask) or asks for (bid) energy in one delivery slot."""

    TYPE: ClassVar[str] = "place_order"
    side: str
    """bid | ask."""
    quantity_wh: I64
    """Energy in Wh."""
    price: I64
    """Limit price in money per kWh: a bid's is all-in (energy plus grid fee), an ask's is the energy price."""
    slot: I64
    """Start of the delivery slot, unix seconds (a multiple of slot_length_s)."""
    valid_until: I64
    """Last block time at which the order may trade; the first block after it expires the order."""
    tif: str
    """Time in force: limit (rests) | ioc (fills what it can, drops the rest) | fok (all or nothing) |
    post_only (rests, or is rejected if it would trade on arrival)."""
    client_order_id: str
    """The owner's reference (a name, or empty)."""
    origin: str
    """Asks: solar | wind | hydro | biomass | storage | grid-mix; bids: empty."""
    accept_origins: tuple[str, ...]
    """Bids: the origins accepted, sorted and distinct (empty: any origin); asks: empty."""

    def validate_basic(self) -> None:
        if self.side not in SIDES:
            raise errors.MalformedBody("side must be bid or ask")
        require_amount("quantity_wh", self.quantity_wh)
        require_amount("price", self.price, minimum=0)
        require_amount("slot", self.slot, minimum=0)
        require_amount("valid_until", self.valid_until, minimum=0)
        if self.tif not in TIME_IN_FORCE:
            raise errors.MalformedBody(f"tif must be one of {', '.join(TIME_IN_FORCE)}")
        if self.client_order_id:
            require_name("client_order_id", self.client_order_id)
        if self.side == ASK and self.origin not in ORIGINS:
            raise errors.MalformedBody(f"an ask states its origin: one of {', '.join(ORIGINS)}")
        if self.side == BID and self.origin:
            raise errors.MalformedBody("a bid has no origin; restrict origins with accept_origins")
        if self.side == ASK and self.accept_origins:
            raise errors.MalformedBody("accept_origins is for bids")
        if any(origin not in ORIGINS for origin in self.accept_origins):
            raise errors.MalformedBody(f"accept_origins may list only {', '.join(ORIGINS)}")
        # One encoding per set of origins, so equal orders sign equal bytes.
        if list(self.accept_origins) != sorted(set(self.accept_origins)):
            raise errors.MalformedBody("accept_origins must be sorted and distinct")
        # Money for the whole order stays within 64 bits.
        if self.quantity_wh * self.price > codec.MAX_INT:
            raise errors.ValueOutOfRange("quantity_wh x price is too large")


class CancelOrder(Msg, frozen=True):
    """The owner withdraws an open order; its locks are released."""

    TYPE: ClassVar[str] = "cancel_order"
    order_id: I64
    """The order to cancel."""

    def validate_basic(self) -> None:
        require_amount("order_id", self.order_id)


class FeeEntry(Record, frozen=True):
    from_zone: str
    """Zone the energy comes from (the seller's)."""
    to_zone: str
    """Zone the energy goes to (the buyer's)."""
    fee_per_kwh: I64
    """The signing DSO's component in money per kWh; 0 removes it."""


class SetGridFees(Msg, frozen=True):
    """A DSO publishes its components of the zone-to-zone grid fee matrix."""

    TYPE: ClassVar[str] = "set_grid_fees"
    entries: tuple[FeeEntry, ...]
    """Fee components; each (from_zone, to_zone) at most once."""

    def validate_basic(self) -> None:
        if not 1 <= len(self.entries) <= MAX_FEE_ENTRIES:
            raise errors.MalformedBody(f"between 1 and {MAX_FEE_ENTRIES} entries")
        pairs = [(e.from_zone, e.to_zone) for e in self.entries]
        if len(set(pairs)) != len(pairs):
            raise errors.MalformedBody("a zone pair appears twice")
        for entry in self.entries:
            require_name("from_zone", entry.from_zone)
            require_name("to_zone", entry.to_zone)
            require_amount("fee_per_kwh", entry.fee_per_kwh, minimum=0)


class AcceptOffer(Msg, frozen=True):
    """A taker sends a maker's signed off-chain offer with its own signed acceptance (direct trade).

    The body is ``[SignedOffer, SignedAcceptance]``, the byte layout of docs/p2p.md.
    """

    TYPE: ClassVar[str] = "accept_offer"
    offer: direct.SignedOffer
    """The maker's offer with the maker's signature."""
    acceptance: direct.SignedAcceptance
    """The taker's acceptance of that offer with the taker's signature."""

    def validate_basic(self) -> None:
        direct.check_offer_fields(self.offer.body)
        direct.check_acceptance_fields(self.offer, self.acceptance.body)
        direct.verify_offer_signature(self.offer)
        direct.verify_acceptance_signature(self.acceptance)
