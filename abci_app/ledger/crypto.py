"""Ed25519 keys and the pseudonymous account ids derived from them.

Verification is strict (docs/transactions.md, "Keys and signatures"): besides
the signature equation that OpenSSL checks, a public key and a signature's R
must be canonical encodings (y < p) of points that are not of small order, and
S must be below the group order L. Small-order keys are the danger: under the
identity key, R = identity and S = 0 verify for every message, so anyone could
sign for an account or meter registered with such a key. The same checks
guard every key that enters the state (``is_strong_pubkey``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBKEY_BYTES = 32
SIGNATURE_BYTES = 64
ACCOUNT_ID_BYTES = 20

# -- the curve (RFC 8032 section 5.1): -x^2 + y^2 = 1 + d x^2 y^2 over GF(p) -----------------
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
"""Order of the prime subgroup; S must be below it."""
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
"""A square root of -1 mod p."""


def _sqrt(value: int) -> int | None:
    """A square root of ``value`` mod p, or None if there is none (p = 5 mod 8)."""
    root = pow(value, (P + 3) // 8, P)
    if root * root % P != value % P:
        root = root * SQRT_M1 % P
    return root if root * root % P == value % P else None


def _x_for(y: int, sign: int) -> int | None:
    """The x of the point with this y and x's sign bit, or None if there is no such point."""
    x = _sqrt((y * y - 1) * pow(D * y * y + 1, P - 2, P) % P)
    if x is None or (x == 0 and sign):
        return None
    return P - x if x & 1 != sign else x


def _small_order_y() -> frozenset[int]:
    """y of the eight points of order dividing 8 (the torsion subgroup).

    Order 1 and 2: (0, 1), (0, -1); order 4: y = 0; order 8: the points whose
    double has y = 0, i.e. x^2 = -y^2, so d y^4 + 2 y^2 - 1 = 0.
    """
    found = {1, P - 1, 0}
    discriminant = _sqrt(1 + D)
    if discriminant is not None:
        for root in (discriminant, P - discriminant):
            y = _sqrt((root - 1) * pow(D, P - 2, P) % P)
            if y is not None:
                found |= {y, P - y}
    return frozenset(found)


SMALL_ORDER_Y = _small_order_y()


def is_strong_point(encoding: bytes) -> bool:
    """A canonical encoding (y < p, no sign bit on x = 0) of a point outside the torsion subgroup.

    Cheap (integer comparisons): it does not prove the point is on the curve,
    which the signature check itself does. ``is_strong_pubkey`` adds that.
    """
    if len(encoding) != PUBKEY_BYTES:
        return False
    y = int.from_bytes(encoding, "little") & ((1 << 255) - 1)
    return y < P and y not in SMALL_ORDER_Y


def is_strong_pubkey(pubkey: bytes) -> bool:
    """May this key enter the state (an account's, a meter's, a validator's)? A strong point on the curve."""
    if not is_strong_point(pubkey):
        return False
    value = int.from_bytes(pubkey, "little")
    return _x_for(value & ((1 << 255) - 1), value >> 255) is not None


def account_id(pubkey: bytes) -> str:
    """Pseudonymous account id: hex of the first 20 bytes of SHA-256(public key).

    Other participants see only this id; the registering DSO keeps the link to
    the person off-chain.
    """
    return hashlib.sha256(pubkey).digest()[:ACCOUNT_ID_BYTES].hex()


def is_account_id(text: str) -> bool:
    return len(text) == 2 * ACCOUNT_ID_BYTES and all(c in "0123456789abcdef" for c in text)


class Verifier:
    """Strict verification with memory: parsed keys, and the signatures already found valid (both bounded).

    Owned by the application object, never a module global. A signature's
    validity is a pure function of key, signature and message, so remembering
    it cannot make nodes disagree; it lets a meter reading or an offer checked
    at admission (CheckTx) skip the second check in FinalizeBlock.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[bytes, Ed25519PublicKey | None] = OrderedDict()
        self._valid: OrderedDict[bytes, None] = OrderedDict()

    def key(self, pubkey: bytes) -> Ed25519PublicKey | None:
        """The parsed key, or None for a weak one."""
        if pubkey in self._keys:
            self._keys.move_to_end(pubkey)
            return self._keys[pubkey]
        parsed = Ed25519PublicKey.from_public_bytes(pubkey) if is_strong_point(pubkey) else None
        self._keys[pubkey] = parsed
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return parsed

    def verify(self, pubkey: bytes, signature: bytes, message: bytes) -> bool:
        digest = hashlib.sha256(pubkey + signature + message).digest()
        if digest in self._valid:
            self._valid.move_to_end(digest)
            return True
        if not _verify(pubkey, signature, message, self.key):
            return False
        self._valid[digest] = None
        if len(self._valid) > self.capacity:
            self._valid.popitem(last=False)
        return True


def verify(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is a strictly valid Ed25519 signature of ``message`` under ``pubkey``."""
    return _verify(pubkey, signature, message, _parse)


def _parse(pubkey: bytes) -> Ed25519PublicKey | None:
    return Ed25519PublicKey.from_public_bytes(pubkey) if is_strong_point(pubkey) else None


def _verify(pubkey: bytes, signature: bytes, message: bytes,
            parse: Callable[[bytes], Ed25519PublicKey | None]) -> bool:
    if len(pubkey) != PUBKEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    # S below the group order and R a strong point: no malleable or torsion-assisted signatures.
    if int.from_bytes(signature[32:], "little") >= L or not is_strong_point(signature[:32]):
        return False
    key = parse(pubkey)
    if key is None:
        return False
    try:
        key.verify(signature, message)
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
