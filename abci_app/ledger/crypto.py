"""Ed25519 keys and the pseudonymous account ids derived from them."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBKEY_BYTES = 32
SIGNATURE_BYTES = 64
ACCOUNT_ID_BYTES = 20


def account_id(pubkey: bytes) -> str:
    """Pseudonymous account id: hex of the first 20 bytes of SHA-256(public key).

    Other participants see only this id; the registering DSO keeps the link to
    the person off-chain.
    """
    return hashlib.sha256(pubkey).digest()[:ACCOUNT_ID_BYTES].hex()


def is_account_id(text: str) -> bool:
    return len(text) == 2 * ACCOUNT_ID_BYTES and all(c in "0123456789abcdef" for c in text)


def verify(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` under ``pubkey``."""
    if len(pubkey) != PUBKEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class SigningKey:
    """An Ed25519 private key (used by clients, tests and genesis tooling)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.pubkey: bytes = private.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        return self._private.private_bytes_raw()

    @property
    def account(self) -> str:
        return account_id(self.pubkey)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)
