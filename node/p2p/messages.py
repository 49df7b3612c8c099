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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.modules.market import direct
from abci_app.ledger.modules.market.direct import (
    SALT_BYTES as SALT_BYTES,
)
from abci_app.ledger.modules.market.direct import (
    Acceptance,
    OfferBody,
    SignedAcceptance,
    SignedOffer,
    accept_sign_bytes,
    offer_sign_bytes,
)
from abci_app.ledger.modules.market.direct import (
    offer_id as offer_id,
)
from abci_app.ledger.modules.market.msgs import AcceptOffer
from abci_app.ledger.modules.market.records import ORIGINS as ORIGINS
from abci_app.ledger.msg import NAME_PATTERN
from abci_app.ledger.wire import I64, Record, WireError, plain

FEED_DOMAIN = "gridledger/feed"


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


# -- offers and acceptances: the chain's own records (abci_app...market.direct) ---------------
# The chain re-checks both halves in ``accept_offer``, so the records, sign bytes and
# field rules are defined once, on chain; this module adds the clock and maps the
# chain's typed errors to drop reasons.
AcceptOfferBody = AcceptOffer


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
    with _as_drop_reason():
        direct.verify_offer_signature(offer)


def check_offer_fields(body: OfferBody) -> None:
    """Field ranges and consistency (no clock, no signature): the chain's rules."""
    with _as_drop_reason():
        direct.check_offer_fields(body)


def accept(offer: SignedOffer, key: crypto.SigningKey, quantity_wh: int | None = None) -> SignedAcceptance:
    """Co-sign ``offer`` as taker (all of its quantity unless ``quantity_wh`` is given)."""
    quantity = offer.body.quantity_wh if quantity_wh is None else quantity_wh
    body = Acceptance(chain_id=offer.body.chain_id, offer_id=offer.offer_id, taker=key.account,
                      taker_pubkey=key.pubkey, quantity_wh=quantity)
    check_acceptance_fields(offer, body)
    return SignedAcceptance(body=body, signature=key.sign(accept_sign_bytes(body)))


def check_acceptance_fields(offer: SignedOffer, body: Acceptance) -> None:
    with _as_drop_reason():
        direct.check_acceptance_fields(offer, body)


def check_accept_offer(msg: AcceptOffer, chain_id: str, now: int) -> None:
    """Every stateless check of an ``accept_offer`` body (the chain adds the stateful ones)."""
    check_offer(msg.offer, chain_id, now)
    check_acceptance_fields(msg.offer, msg.acceptance.body)
    with _as_drop_reason():
        direct.verify_acceptance_signature(msg.acceptance)


@contextmanager
def _as_drop_reason() -> Iterator[None]:
    """The chain's typed errors as this layer's drop reasons."""
    try:
        yield
    except errors.WrongChainId as exc:
        raise WrongChain(str(exc)) from exc
    except errors.BadSignature as exc:
        raise BadSignature(str(exc)) from exc
    except errors.LedgerError as exc:
        raise Malformed(str(exc)) from exc


# -- market feed ------------------------------------------------------------------------
class Level(Record, frozen=True):
    """One price level of a zone's own book, aggregated."""

    price: I64
    quantity_wh: I64
    orders: I64


class Quote(Record, frozen=True):
    """Best order reachable from the snapshot's zone; effective = price incl. grid fee."""

    price: I64
    effective_price: I64
    quantity_wh: I64
    zone: str


class SlotView(Record, frozen=True):
    slot: I64
    bids: tuple[Level, ...]
    """The zone's best bid levels, best first."""
    asks: tuple[Level, ...]
    """The zone's best ask levels, best first."""
    best_ask: tuple[Quote, ...]
    """Zero or one: the cheapest ask for a buyer in this zone, any seller zone, fee included."""
    best_bid: tuple[Quote, ...]
    """Zero or one: the highest bid reachable by a seller in this zone."""


class FeedTrade(Record, frozen=True):
    trade_id: str
    slot: I64
    buyer: str
    seller: str
    buyer_zone: str
    seller_zone: str
    quantity_wh: I64
    price: I64
    fee: I64


class FeedBody(Record, frozen=True):
    chain_id: str
    height: I64
    """The committed block this snapshot describes."""
    time: I64
    """That block's header time, unix seconds."""
    zone: str
    publisher: bytes
    """32-byte Ed25519 public key of the publishing node's p2p identity."""
    slots: tuple[SlotView, ...]
    trades: tuple[FeedTrade, ...]
    """Trades of this block with the zone as buyer or seller zone."""


class SignedFeed(Record, frozen=True):
    body: FeedBody
    signature: bytes


def _require_range(name: str, value: int, minimum: int) -> None:
    if not minimum <= value <= codec.MAX_INT:
        raise Malformed(f"{name} must be between {minimum} and {codec.MAX_INT}, got {value}")


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


def offer_json(offer: SignedOffer) -> dict[str, Any]:
    return {"offer_id": offer.offer_id.hex(), **plain(offer.body), "signature": offer.signature.hex()}

