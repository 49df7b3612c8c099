"""The signed transaction envelope, its canonical form and stateless checks.

Wire form (canonical msgpack, see codec.py), one array for every type::

    [version, chain_id, type, body, signer, nonce, signature]

    version    int    envelope format, currently 1
    chain_id   str    the chain this transaction is for
    type       str    message type, e.g. "transfer"
    body       array  the message fields in declared order
    signer     bin    32-byte Ed25519 public key of the signing account
    nonce      int    strictly greater than the account's last nonce
    signature  bin    64-byte Ed25519 signature over the sign bytes

Sign bytes: canonical msgpack of ``["gridledger/tx", version, chain_id, type,
body, signer, nonce]`` (the domain string keeps a transaction signature from
ever verifying as a meter reading or an off-chain offer).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.msg import Msg
from abci_app.ledger.router import MESSAGE_TYPES
from abci_app.ledger.wire import WireError

TX_FORMAT_VERSION = 1
SIGN_DOMAIN = "gridledger/tx"


@dataclass(frozen=True)
class SignedTx:
    """A transaction that passed every stateless check."""

    msg: Msg
    signer: bytes
    nonce: int
    account: str
    """Account id derived from ``signer``."""
    size: int


def sign_bytes(chain_id: str, msg: Msg, signer: bytes, nonce: int, version: int = TX_FORMAT_VERSION) -> bytes:
    return codec.encode([SIGN_DOMAIN, version, chain_id, msg.TYPE, msg.to_wire(), signer, nonce])


def encode_tx(chain_id: str, msg: Msg, key: crypto.SigningKey, nonce: int) -> bytes:
    """Sign ``msg`` with ``key`` and return the transaction bytes."""
    signature = key.sign(sign_bytes(chain_id, msg, key.pubkey, nonce))
    return codec.encode([TX_FORMAT_VERSION, chain_id, msg.TYPE, msg.to_wire(), key.pubkey, nonce, signature])


class _VerifiedCache:
    """Remembers transactions that passed their stateless checks and signature.

    CheckTx, ProcessProposal and FinalizeBlock see the same bytes; checking
    once is enough. Both results are pure functions of the bytes, so caching
    cannot make nodes disagree.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._seen

    def add(self, digest: bytes) -> None:
        self._seen[digest] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


_verified = _VerifiedCache()


def decode_tx(raw: bytes, chain_id: str, max_bytes: int) -> SignedTx:
    """Every check that needs no state; raises a ``LedgerError`` with its code."""
    # Rule: a transaction is no larger than the max_tx_bytes parameter.
    if len(raw) > max_bytes:
        raise errors.TxTooLarge(f"transaction has {len(raw)} bytes, the limit is {max_bytes}")
    # Rule: the bytes are one canonical msgpack value.
    try:
        value = codec.decode(raw)
    except codec.CodecError as exc:
        if "canonical form" in str(exc):
            raise errors.NonCanonicalTx(str(exc)) from exc
        raise errors.MalformedTx(str(exc)) from exc
    # Rule: the envelope is an array of seven fields of the right types.
    version, tx_chain, tx_type, body, signer, nonce, signature = _envelope_fields(value)
    # Rule: the format version is one this node understands.
    if version != TX_FORMAT_VERSION:
        raise errors.UnsupportedVersion(f"envelope version {version}; this node reads {TX_FORMAT_VERSION}")
    # Rule: the chain id matches, so a transaction cannot be replayed on another chain.
    if tx_chain != chain_id:
        raise errors.WrongChainId(f"transaction is for chain {tx_chain!r}, this is {chain_id!r}")
    # Rule: the type is known.
    msg_class = MESSAGE_TYPES.get(tx_type)
    if msg_class is None:
        raise errors.UnknownTxType(f"unknown transaction type {tx_type!r}")
    # Rule: the body has the fields of its type.
    try:
        msg = msg_class.from_wire(body)
    except (WireError, TypeError) as exc:
        raise errors.MalformedBody(f"{tx_type}: {exc}") from exc
    # Bytes that passed every check below before pass them again: skip the costly part
    # (signatures, including the two inside an accept_offer body) on CheckTx rechecks,
    # ProcessProposal and FinalizeBlock.
    digest = hashlib.sha256(raw).digest()
    seen = digest in _verified
    # Rule: the message passes its own stateless checks.
    if not seen:
        msg.validate_basic()
    # Rule: the nonce is positive.
    if nonce <= 0:
        raise errors.ValueOutOfRange("nonce must be positive")
    # Rule: the signature verifies over the sign bytes under the signer key.
    if not seen:
        message = codec.encode([SIGN_DOMAIN, version, tx_chain, tx_type, body, signer, nonce])
        if not crypto.verify(signer, signature, message):
            raise errors.BadSignature("signature does not verify for the signer's public key")
        _verified.add(digest)
    return SignedTx(msg=msg, signer=signer, nonce=nonce, account=crypto.account_id(signer), size=len(raw))


def _envelope_fields(value: Any) -> tuple[int, str, str, list[Any], bytes, int, bytes]:
    if not isinstance(value, list) or len(value) != 7:
        raise errors.MalformedTx("envelope must be an array of 7 fields")
    version, tx_chain, tx_type, body, signer, nonce, signature = value
    checks = (
        (version, int, "version"),
        (tx_chain, str, "chain_id"),
        (tx_type, str, "type"),
        (body, list, "body"),
        (signer, bytes, "signer"),
        (nonce, int, "nonce"),
        (signature, bytes, "signature"),
    )
    for field, kind, name in checks:
        if type(field) is not kind:
            raise errors.MalformedTx(f"envelope field {name} must be {kind.__name__}")
    if len(signer) != crypto.PUBKEY_BYTES:
        raise errors.MalformedTx("signer must be a 32-byte Ed25519 public key")
    if len(signature) != crypto.SIGNATURE_BYTES:
        raise errors.MalformedTx("signature must be 64 bytes")
    return version, tx_chain, tx_type, body, signer, nonce, signature
