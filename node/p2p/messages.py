"""Off-chain messages: signed offers, acceptances and market-feed snapshots.

Every message is a frozen ``Record`` written as a canonical msgpack array of
its fields in declaration order (abci_app.ledger.codec / wire), and every
signature covers domain-separated sign bytes::

    offer       codec.encode(["gridledger/offer",  chain_id, <OfferBody array>])
    acceptance  codec.encode(["gridledger/accept", chain_id, <Acceptance array>])
    feed        codec.encode(["gridledger/feed",   chain_id, <FeedBody array>])

so a signature made for one purpose (a transaction uses "gridledger/tx") never
verifies as another. Offers and acceptances are signed with ACCOUNT keys (the
chain re-checks both in ``accept_offer``); feed snapshots with the publishing
node's p2p identity key. docs/p2p.md specifies the same byte layouts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, TypeVar

from abci_app.ledger import codec, crypto
from abci_app.ledger.modules.market.types import ORIGINS
from abci_app.ledger.msg import NAME_PATTERN
from abci_app.ledger.wire import Record, WireError

OFFER_DOMAIN = "gridledger/offer"
ACCEPT_DOMAIN = "gridledger/accept"
FEED_DOMAIN = "gridledger/feed"

SIDES = ("bid", "ask")
# ORIGINS are the market's energy origins: an ask names one, a bid names one it
# insists on or "" for any.
SALT_BYTES = 16
OFFER_ID_BYTES = 32


class MessageError(ValueError):
    """A message failed a check; ``reason`` is the drop counter it belongs to."""

    reason = "malformed"


class Malformed(MessageError):
    reason = "malformed"


class WrongChain(MessageError):
    reason = "wrong_chain"


class Expired(MessageError):
    reason = "expired"


class BadSignature(MessageError):
    reason = "bad_signature"


# -- offers -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OfferBody(Record):
    """What the maker signs. Prices are money units per kWh (the chain's currency)."""

    chain_id: str
    maker: str
    """Account id of the maker: hex of SHA-256(maker_pubkey)[:20]."""
    maker_pubkey: bytes
    side: str
    """"bid" (maker buys) or "ask" (maker sells)."""
    quantity_wh: int
    price: int
    """Ask: what the seller receives per kWh (grid fee on top, paid by the buyer).
    Bid: the most the buyer pays per kWh all-in, grid fee included."""
    slot: int
    """Start of the delivery slot, unix seconds (as the market's orders name it)."""
    valid_until: int
    """Unix seconds: the last time at which the offer may be accepted (as the market's orders)."""
    zone: str
    """Grid zone of the maker; the offer travels on this zone's topic."""
    origin: str
    salt: bytes
    """16 random bytes, so two otherwise equal offers get different ids."""


@dataclass(frozen=True)
class SignedOffer(Record):
    body: OfferBody
    signature: bytes

    @property
    def offer_id(self) -> bytes:
        return offer_id(self.body)


def offer_sign_bytes(body: OfferBody) -> bytes:
    return codec.encode([OFFER_DOMAIN, body.chain_id, body.to_wire()])


def offer_id(body: OfferBody) -> bytes:
    """SHA-256 of the offer's sign bytes: fixed before signing, independent of the signature."""
    return hashlib.sha256(offer_sign_bytes(body)).digest()


def sign_offer(body: OfferBody, key: crypto.SigningKey) -> SignedOffer:
    if key.pubkey != body.maker_pubkey:
        raise ValueError("the offer must be signed with the maker's key")
    return SignedOffer(body=body, signature=key.sign(offer_sign_bytes(body)))


def check_offer(offer: SignedOffer, chain_id: str, now: int) -> None:
    """Every check that needs no ledger state, cheapest first; raises a ``MessageError``."""
    body = offer.body
    if body.chain_id != chain_id:
        raise WrongChain(f"offer is for chain {body.chain_id!r}, this is {chain_id!r}")
    check_offer_fields(body)
    if body.valid_until < now:
        raise Expired(f"offer expired at {body.valid_until} (now {now})")
    if not crypto.verify(body.maker_pubkey, offer.signature, offer_sign_bytes(body)):
        raise BadSignature("offer signature does not verify under the maker's key")


def check_offer_fields(body: OfferBody) -> None:
    """Field ranges and consistency (no clock, no signature)."""
    if len(body.maker_pubkey) != crypto.PUBKEY_BYTES:
        raise Malformed("maker_pubkey must be 32 bytes")
    if body.maker != crypto.account_id(body.maker_pubkey):
        raise Malformed("maker is not the account id of maker_pubkey")
    if body.side not in SIDES:
        raise Malformed(f"side must be bid or ask, not {body.side!r}")
    _require_range("quantity_wh", body.quantity_wh, 1)
    _require_range("price", body.price, 1)
    if body.quantity_wh * body.price > codec.MAX_INT:
        raise Malformed("quantity_wh x price is too large")
    _require_range("slot", body.slot, 0)
    _require_range("valid_until", body.valid_until, 1)
    if not NAME_PATTERN.fullmatch(body.zone):
        raise Malformed(f"zone {body.zone!r} is not a zone name")
    allowed = ORIGINS if body.side == "ask" else ("", *ORIGINS)
    if body.origin not in allowed:
        raise Malformed(f"origin {body.origin!r} must be one of {', '.join(o or '(any)' for o in allowed)}")
    if len(body.salt) != SALT_BYTES:
        raise Malformed(f"salt must be {SALT_BYTES} bytes")


def _require_range(name: str, value: int, minimum: int) -> None:
    if not minimum <= value <= codec.MAX_INT:
        raise Malformed(f"{name} must be between {minimum} and {codec.MAX_INT}, got {value}")


# -- acceptances ------------------------------------------------------------------------
@dataclass(frozen=True)
class Acceptance(Record):
    """The taker's consent to one offer, for ``quantity_wh`` of its energy."""

    chain_id: str
    offer_id: bytes
    taker: str
    taker_pubkey: bytes
    quantity_wh: int


@dataclass(frozen=True)
class SignedAcceptance(Record):
    body: Acceptance
    signature: bytes


@dataclass(frozen=True)
class AcceptOfferBody(Record):
    """The body of the on-chain ``accept_offer`` message: both signed halves."""

    offer: SignedOffer
    acceptance: SignedAcceptance


def accept_sign_bytes(body: Acceptance) -> bytes:
    return codec.encode([ACCEPT_DOMAIN, body.chain_id, body.to_wire()])


def accept(offer: SignedOffer, key: crypto.SigningKey, quantity_wh: int | None = None) -> SignedAcceptance:
    """Co-sign ``offer`` as taker (all of its quantity unless ``quantity_wh`` is given)."""
    quantity = offer.body.quantity_wh if quantity_wh is None else quantity_wh
    body = Acceptance(chain_id=offer.body.chain_id, offer_id=offer.offer_id, taker=key.account,
                      taker_pubkey=key.pubkey, quantity_wh=quantity)
    check_acceptance_fields(offer, body)
    return SignedAcceptance(body=body, signature=key.sign(accept_sign_bytes(body)))


def check_acceptance_fields(offer: SignedOffer, body: Acceptance) -> None:
    if body.chain_id != offer.body.chain_id:
        raise WrongChain("acceptance and offer name different chains")
    if body.offer_id != offer.offer_id:
        raise Malformed("acceptance names another offer")
    if len(body.taker_pubkey) != crypto.PUBKEY_BYTES or body.taker != crypto.account_id(body.taker_pubkey):
        raise Malformed("taker is not the account id of taker_pubkey")
    if body.taker == offer.body.maker:
        raise Malformed("the maker cannot accept its own offer")
    if not 1 <= body.quantity_wh <= offer.body.quantity_wh:
        raise Malformed(f"quantity_wh must be between 1 and the offer's {offer.body.quantity_wh}")


def check_accept_offer(msg: AcceptOfferBody, chain_id: str, now: int) -> None:
    """Every stateless check of an ``accept_offer`` body (the chain adds the stateful ones)."""
    check_offer(msg.offer, chain_id, now)
    check_acceptance_fields(msg.offer, msg.acceptance.body)
    if not crypto.verify(msg.acceptance.body.taker_pubkey, msg.acceptance.signature,
                         accept_sign_bytes(msg.acceptance.body)):
        raise BadSignature("acceptance signature does not verify under the taker's key")


# -- market feed ------------------------------------------------------------------------
@dataclass(frozen=True)
class Level(Record):
    """One price level of a zone's own book, aggregated."""

    price: int
    quantity_wh: int
    orders: int


@dataclass(frozen=True)
class Quote(Record):
    """Best order reachable from the snapshot's zone; effective = price incl. grid fee."""

    price: int
    effective_price: int
    quantity_wh: int
    zone: str


@dataclass(frozen=True)
class SlotView(Record):
    slot: int
    bids: tuple[Level, ...]
    """The zone's best bid levels, best first."""
    asks: tuple[Level, ...]
    """The zone's best ask levels, best first."""
    best_ask: tuple[Quote, ...]
    """Zero or one: the cheapest ask for a buyer in this zone, any seller zone, fee included."""
    best_bid: tuple[Quote, ...]
    """Zero or one: the highest bid reachable by a seller in this zone."""


@dataclass(frozen=True)
class FeedTrade(Record):
    trade_id: str
    slot: int
    buyer: str
    seller: str
    buyer_zone: str
    seller_zone: str
    quantity_wh: int
    price: int
    fee: int


@dataclass(frozen=True)
class FeedBody(Record):
    chain_id: str
    height: int
    """The committed block this snapshot describes."""
    time: int
    """That block's header time, unix seconds."""
    zone: str
    publisher: bytes
    """32-byte Ed25519 public key of the publishing node's p2p identity."""
    slots: tuple[SlotView, ...]
    trades: tuple[FeedTrade, ...]
    """Trades of this block with the zone as buyer or seller zone."""


@dataclass(frozen=True)
class SignedFeed(Record):
    body: FeedBody
    signature: bytes


def feed_sign_bytes(body: FeedBody) -> bytes:
    return codec.encode([FEED_DOMAIN, body.chain_id, body.to_wire()])


def sign_feed(body: FeedBody, key: crypto.SigningKey) -> SignedFeed:
    if key.pubkey != body.publisher:
        raise ValueError("the snapshot must be signed with the publisher's key")
    return SignedFeed(body=body, signature=key.sign(feed_sign_bytes(body)))


def check_feed(feed: SignedFeed, chain_id: str) -> None:
    body = feed.body
    if body.chain_id != chain_id:
        raise WrongChain(f"snapshot is for chain {body.chain_id!r}, this is {chain_id!r}")
    if len(body.publisher) != crypto.PUBKEY_BYTES:
        raise Malformed("publisher must be a 32-byte public key")
    _require_range("height", body.height, 1)
    if not NAME_PATTERN.fullmatch(body.zone):
        raise Malformed(f"zone {body.zone!r} is not a zone name")
    if not crypto.verify(body.publisher, feed.signature, feed_sign_bytes(body)):
        raise BadSignature("snapshot signature does not verify under the publisher's key")


# -- decoding -------------------------------------------------------------------------
R = TypeVar("R", bound=Record)


def decode_as(cls: type[R], data: bytes) -> R:
    """Canonical bytes to a record; any shape or encoding problem is ``Malformed``."""
    try:
        return cls.decode(data)
    except (codec.CodecError, WireError, TypeError) as exc:
        raise Malformed(f"not a {cls.__name__}: {exc}") from exc


def plain(value: Any) -> Any:
    """JSON-friendly form of a record (bytes as hex, records as objects)."""
    if isinstance(value, Record):
        return {name: plain(getattr(value, name)) for name, _ in value._fields()}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    return value


def offer_json(offer: SignedOffer) -> dict[str, Any]:
    return {"offer_id": offer.offer_id.hex(), **plain(offer.body), "signature": offer.signature.hex()}

