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
from typing import Any

import msgspec

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.msg import Msg
from abci_app.ledger.router import MESSAGE_TYPES
from abci_app.ledger.wire import ENCODER, I64, decoder

TX_FORMAT_VERSION = 1
SIGN_DOMAIN = "gridledger/tx"
MSGPACK_ARRAY_HEADS = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])
"""First byte of a msgpack array: fixarray, array16, array32."""


class Envelope(msgspec.Struct, array_like=True, forbid_unknown_fields=True, frozen=True, gc=False):
    """The envelope's seven fields; the body stays raw until its type is known."""

    version: I64
    chain_id: str
    msg_type: str
    body: msgspec.Raw
    signer: bytes
    nonce: I64
    signature: bytes


_ENVELOPE = msgspec.msgpack.Decoder(Envelope)


class SignedTx(msgspec.Struct, frozen=True, gc=False):
    """A transaction that passed every stateless check (decoding, canonical form, chain, signature)."""

    msg: Msg
    signer: bytes
    nonce: int
    account: str
    """Account id derived from ``signer``."""
    size: int
    digest: bytes
    """SHA-256 of the transaction bytes: CometBFT's transaction hash."""


def sign_bytes(chain_id: str, msg: Msg, signer: bytes, nonce: int, version: int = TX_FORMAT_VERSION) -> bytes:
    return _sign_bytes(version, chain_id, msg.TYPE, msgspec.Raw(msg.encode()), signer, nonce)


def _sign_bytes(version: int, chain_id: str, msg_type: str, body: msgspec.Raw, signer: bytes, nonce: int) -> bytes:
    return ENCODER.encode((SIGN_DOMAIN, version, chain_id, msg_type, body, signer, nonce))


def encode_tx(chain_id: str, msg: Msg, key: crypto.SigningKey, nonce: int) -> bytes:
    """Sign ``msg`` with ``key`` and return the transaction bytes."""
    body = msgspec.Raw(msg.encode())
    signature = key.sign(_sign_bytes(TX_FORMAT_VERSION, chain_id, msg.TYPE, body, key.pubkey, nonce))
    return ENCODER.encode(Envelope(TX_FORMAT_VERSION, chain_id, msg.TYPE, body, key.pubkey, nonce, signature))


class TxCache:
    """Transactions that passed ``decode_tx``, by hash: bounded, least recently used first out.

    CheckTx, its rechecks, ProcessProposal and FinalizeBlock see the same bytes;
    decoding and verifying them once is enough. The result is a pure function
    of the bytes and the chain id, so the cache cannot make nodes disagree; it
    belongs to one application object (one chain id), never to the process.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._txs: OrderedDict[bytes, SignedTx] = OrderedDict()
        self.verifier = crypto.Verifier(capacity)
        """Parsed keys and valid signatures (of transactions, and of the readings and offers inside them)."""

    def __len__(self) -> int:
        return len(self._txs)

    def get(self, digest: bytes) -> SignedTx | None:
        found = self._txs.get(digest)
        if found is not None:
            self._txs.move_to_end(digest)
        return found

    def add(self, tx: SignedTx) -> None:
        self._txs[tx.digest] = tx
        self._txs.move_to_end(tx.digest)
        if len(self._txs) > self.capacity:
            self._txs.popitem(last=False)

    def discard(self, digest: bytes) -> None:
        self._txs.pop(digest, None)


def decode_tx(raw: bytes, chain_id: str, max_bytes: int, cache: TxCache | None = None) -> SignedTx:
    """Every check that needs no state; raises a ``LedgerError`` with its code."""
    # Rule: a transaction is no larger than the max_tx_bytes parameter.
    if len(raw) > max_bytes:
        raise errors.TxTooLarge(f"transaction has {len(raw)} bytes, the limit is {max_bytes}")
    digest = hashlib.sha256(raw).digest()
    if cache is not None:
        known = cache.get(digest)
        if known is not None:
            return known
    envelope, msg = _parse(raw, chain_id)
    # Rule: the message passes its own stateless checks.
    msg.validate_basic()
    # Rule: the nonce is positive.
    if envelope.nonce <= 0:
        raise errors.ValueOutOfRange("nonce must be positive")
    # Rule: the signature verifies over the sign bytes under the signer key.
    message = _sign_bytes(envelope.version, envelope.chain_id, envelope.msg_type, envelope.body, envelope.signer,
                          envelope.nonce)
    verify = cache.verifier.verify if cache is not None else crypto.verify
    if not verify(envelope.signer, envelope.signature, message):
        raise errors.BadSignature("signature does not verify for the signer's public key")
    tx = SignedTx(msg=msg, signer=envelope.signer, nonce=envelope.nonce, account=crypto.account_id(envelope.signer),
                  size=len(raw), digest=digest)
    if cache is not None:
        cache.add(tx)
    return tx


def _parse(raw: bytes, chain_id: str) -> tuple[Envelope, Msg]:
    """The envelope and its typed message, from canonical bytes only.

    The fast path decodes with msgspec and proves canonical form by
    re-encoding. When anything fails, the bytes are classified as the generic
    canonical codec sees them, so every malformed transaction gets the same
    code whichever part of it is wrong: first the encoding (2, 3), then
    version (4), chain (5), type (6) and body (7).
    """
    try:
        envelope = _ENVELOPE.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # a str of invalid UTF-8 is not msgspec's error
        _refuse_encoding(raw, str(exc))
        raise errors.MalformedTx(f"not a transaction envelope: {exc}") from exc
    # Rule: the envelope is an array of seven fields of the right types.
    _check_envelope_fields(envelope)
    msg_class = MESSAGE_TYPES.get(envelope.msg_type)
    msg: Msg | None = None
    problem = "fields do not match the type"
    if msg_class is not None:
        try:
            msg = decoder(msg_class).decode(envelope.body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            problem = str(exc)
    canonical = msg is not None and msg.encode() == bytes(envelope.body) and ENCODER.encode(envelope) == raw
    if not canonical:
        # Rule: the bytes are one value of the canonical msgpack subset (docs/transactions.md).
        _refuse_encoding(raw, problem)
    # Rule: the format version is one this node understands.
    if envelope.version != TX_FORMAT_VERSION:
        raise errors.UnsupportedVersion(f"envelope version {envelope.version}; this node reads {TX_FORMAT_VERSION}")
    # Rule: the chain id matches, so a transaction cannot be replayed on another chain.
    if envelope.chain_id != chain_id:
        raise errors.WrongChainId(f"transaction is for chain {envelope.chain_id!r}, this is {chain_id!r}")
    # Rule: the type is known.
    if msg_class is None:
        raise errors.UnknownTxType(f"unknown transaction type {envelope.msg_type!r}")
    # Rule: the body has the fields of its type, in canonical form.
    if msg is None or not canonical:
        raise errors.MalformedBody(f"{envelope.msg_type}: {problem}")
    return envelope, msg


def _refuse_encoding(raw: bytes, problem: str) -> None:
    """Raise ``MalformedTx`` or ``NonCanonicalTx`` if ``raw`` is outside the canonical subset (slow path)."""
    try:
        value = codec.decode(raw)
    except codec.NonCanonical as exc:
        raise errors.NonCanonicalTx(str(exc)) from exc
    except codec.CodecError as exc:
        raise errors.MalformedTx(str(exc)) from exc
    _check_generic_envelope(value)


def _check_generic_envelope(value: Any) -> None:
    if not isinstance(value, list) or len(value) != 7:
        raise errors.MalformedTx("envelope must be an array of 7 fields")
    names = ("version", "chain_id", "type", "body", "signer", "nonce", "signature")
    kinds = (int, str, str, list, bytes, int, bytes)
    for field, kind, name in zip(value, kinds, names, strict=True):
        if type(field) is not kind:
            raise errors.MalformedTx(f"envelope field {name} must be {kind.__name__}")


def _check_envelope_fields(envelope: Envelope) -> None:
    body = memoryview(envelope.body)
    if not body or body[0] not in MSGPACK_ARRAY_HEADS:
        raise errors.MalformedTx("envelope field body must be list")
    if len(envelope.signer) != crypto.PUBKEY_BYTES:
        raise errors.MalformedTx("signer must be a 32-byte Ed25519 public key")
    if len(envelope.signature) != crypto.SIGNATURE_BYTES:
        raise errors.MalformedTx("signature must be 64 bytes")
