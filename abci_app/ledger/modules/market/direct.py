"""Direct (bilateral) trading: a maker's signed offer and a taker's signed acceptance.

BC4P's direct matching: a maker announces an offer off chain (node/p2p gossips
it), a taker co-signs it, and the pair reaches the chain as one ``accept_offer``
message. Both halves are signed with ACCOUNT keys over domain-separated sign
bytes, so neither signature can pass for a transaction or for the other half::

    offer sign bytes   = encode(["gridledger/offer",  chain_id, <OfferBody array>])
    accept sign bytes  = encode(["gridledger/accept", chain_id, <Acceptance array>])

The offer id is the SHA-256 of the offer sign bytes: fixed before signing and
independent of the signature, so a re-signed copy cannot pose as another offer.
docs/p2p.md gives the byte layouts with a worked example.

The checks here need no state. Field rules raise ``MalformedBody`` or
``ValueOutOfRange`` and signatures ``BadSignature``, so both the chain and the
p2p layer (which maps them to drop reasons) use the same rules.
"""

from __future__ import annotations

import hashlib

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.modules.market.records import ASK, ORIGINS, SIDES
from abci_app.ledger.msg import require_amount, require_name, require_pubkey
from abci_app.ledger.wire import I64, Record

OFFER_DOMAIN = "gridledger/offer"
ACCEPT_DOMAIN = "gridledger/accept"
SALT_BYTES = 16
OFFER_ID_BYTES = 32


class OfferBody(Record, frozen=True):
    """What the maker signs. Prices are money units per kWh (the chain's currency)."""

    chain_id: str
    """The chain the offer is for."""
    maker: str
    """Account id of the maker: hex of SHA-256(maker_pubkey)[:20]."""
    maker_pubkey: bytes
    """The maker's account Ed25519 public key."""
    side: str
    """"ask" (the maker sells) or "bid" (the maker buys)."""
    quantity_wh: I64
    """Energy offered, Wh; a taker may accept part of it."""
    price: I64
    """Ask: what the seller receives per kWh (the grid fee comes on top for the buyer).
    Bid: the most the buyer pays per kWh all-in, grid fee included (as an order's bid limit)."""
    slot: I64
    """Start of the delivery slot, unix seconds (as the market's orders name it)."""
    valid_until: I64
    """Unix seconds: the last block time at which the offer may be accepted."""
    zone: str
    """The maker's grid zone; the offer travels on this zone's topic."""
    origin: str
    """Ask: the energy's origin (one of the market's origins). Bid: the only origin it
    accepts, or "" for any."""
    salt: bytes
    """16 random bytes, so two otherwise equal offers get different ids."""


class SignedOffer(Record, frozen=True):
    body: OfferBody
    """The offer as the maker signed it."""
    signature: bytes
    """The maker's Ed25519 signature over the offer sign bytes."""

    @property
    def offer_id(self) -> bytes:
        return offer_id(self.body)


class Acceptance(Record, frozen=True):
    """The taker's consent to one offer, for ``quantity_wh`` of its energy."""

    chain_id: str
    """Equals the offer's chain id."""
    offer_id: bytes
    """Id of the accepted offer (32 bytes)."""
    taker: str
    """Account id of ``taker_pubkey``; never the maker."""
    taker_pubkey: bytes
    """The taker's account Ed25519 public key."""
    quantity_wh: I64
    """Energy taken, Wh: 1 up to the offer's quantity."""


class SignedAcceptance(Record, frozen=True):
    body: Acceptance
    """The acceptance as the taker signed it."""
    signature: bytes
    """The taker's Ed25519 signature over the accept sign bytes."""


def offer_sign_bytes(body: OfferBody) -> bytes:
    return codec.encode([OFFER_DOMAIN, body.chain_id, body.to_wire()])


def offer_id(body: OfferBody) -> bytes:
    """SHA-256 of the offer's sign bytes."""
    return hashlib.sha256(offer_sign_bytes(body)).digest()


def accept_sign_bytes(body: Acceptance) -> bytes:
    return codec.encode([ACCEPT_DOMAIN, body.chain_id, body.to_wire()])


def check_offer_fields(body: OfferBody) -> None:
    """Field ranges and consistency of an offer (no clock, no signature, no state)."""
    # Rule: the maker field names the account of the signing key.
    require_pubkey("maker_pubkey", body.maker_pubkey)
    if body.maker != crypto.account_id(body.maker_pubkey):
        raise errors.MalformedBody("maker is not the account id of maker_pubkey")
    # Rule: the side is bid or ask.
    if body.side not in SIDES:
        raise errors.MalformedBody(f"side must be bid or ask, not {body.side!r}")
    require_amount("quantity_wh", body.quantity_wh)
    require_amount("price", body.price)
    # Rule: the money of the whole offer stays within 64 bits.
    if body.quantity_wh * body.price > codec.MAX_INT:
        raise errors.ValueOutOfRange("quantity_wh x price is too large")
    require_amount("slot", body.slot, minimum=0)
    require_amount("valid_until", body.valid_until)
    require_name("zone", body.zone)
    # Rule: an ask states its origin; a bid names the one origin it insists on, or none.
    allowed = ORIGINS if body.side == ASK else ("", *ORIGINS)
    if body.origin not in allowed:
        raise errors.MalformedBody(
            f"origin {body.origin!r} must be one of {', '.join(o or '(any)' for o in allowed)}")
    # Rule: the salt has its fixed length.
    if len(body.salt) != SALT_BYTES:
        raise errors.MalformedBody(f"salt must be {SALT_BYTES} bytes")


def check_acceptance_fields(offer: SignedOffer, body: Acceptance) -> None:
    """An acceptance's consistency with the offer it accepts (no signature, no state)."""
    # Rule: both halves are for the same chain.
    if body.chain_id != offer.body.chain_id:
        raise errors.WrongChainId("the acceptance and the offer name different chains")
    # Rule: the acceptance names this offer.
    if body.offer_id != offer.offer_id:
        raise errors.MalformedBody("the acceptance names another offer")
    # Rule: the taker field names the account of the signing key.
    require_pubkey("taker_pubkey", body.taker_pubkey)
    if body.taker != crypto.account_id(body.taker_pubkey):
        raise errors.MalformedBody("taker is not the account id of taker_pubkey")
    # Rule: nobody trades with itself.
    if body.taker == offer.body.maker:
        raise errors.MalformedBody("the maker cannot accept its own offer")
    # Rule: a taker takes at least 1 Wh and at most what is offered.
    if type(body.quantity_wh) is not int or not 1 <= body.quantity_wh <= offer.body.quantity_wh:
        raise errors.ValueOutOfRange(f"quantity_wh must be between 1 and the offer's {offer.body.quantity_wh}")


def verify_offer_signature(offer: SignedOffer) -> None:
    # Rule: the maker signed the offer.
    if not crypto.verify(offer.body.maker_pubkey, offer.signature, offer_sign_bytes(offer.body)):
        raise errors.BadSignature("offer signature does not verify under the maker's key")


def verify_acceptance_signature(acceptance: SignedAcceptance) -> None:
    # Rule: the taker signed the acceptance.
    if not crypto.verify(acceptance.body.taker_pubkey, acceptance.signature, accept_sign_bytes(acceptance.body)):
        raise errors.BadSignature("acceptance signature does not verify under the taker's key")

