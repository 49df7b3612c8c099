"""Strict Ed25519: weak keys and malleable or torsion-assisted signatures are refused everywhere."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from abci_app.ledger import crypto, errors
from abci_app.ledger.crypto import SMALL_ORDER_Y, L, P
from abci_app.ledger.genesis import GenesisError, load_genesis
from abci_app.ledger.modules.gov import ProposeValidator, ValidatorChange
from abci_app.ledger.modules.registry import RegisterMeter, RegisterParticipant
from abci_app.ledger.state import State
from abci_app.ledger.store import MemoryBackend, Overlay
from tests.harness import ZONE_A, Chain, default_app_state, rejected, seeded_key

IDENTITY = (1).to_bytes(32, "little")
MESSAGE = b"pay 1000 to anyone"


def encode(y: int, sign: int = 0) -> bytes:
    return (y | sign << 255).to_bytes(32, "little")


def weak_encodings() -> list[bytes]:
    """Every torsion point (both x signs), and the non-canonical encodings y + p of y < 19."""
    found = [encode(y, sign) for y in sorted(SMALL_ORDER_Y) for sign in (0, 1)]
    found += [encode(y + P) for y in range(19)]
    return found


# -- pure-Python point arithmetic, only to prove the small-order table right ------------------------
def decompress(encoding: bytes) -> tuple[int, int]:
    value = int.from_bytes(encoding, "little")
    y, sign = value & ((1 << 255) - 1), value >> 255
    x = crypto._x_for(y, sign)
    assert x is not None
    return x, y


def add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = crypto.D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def test_basic() -> None:
    key = seeded_key("alice")
    assert crypto.verify(key.pubkey, key.sign(MESSAGE), MESSAGE)
    assert crypto.is_strong_pubkey(key.pubkey)
    verifier = crypto.Verifier()
    assert verifier.verify(key.pubkey, key.sign(MESSAGE), MESSAGE)
    assert verifier.verify(key.pubkey, key.sign(MESSAGE), MESSAGE)  # remembered
    assert verifier.key(key.pubkey) is not None and verifier.key(IDENTITY) is None
    assert not verifier.verify(IDENTITY, IDENTITY + bytes(32), MESSAGE)


def test_small_order_table_is_the_torsion_subgroup() -> None:
    """Each listed y gives points P with 8P = identity; there are exactly eight such points."""
    points = set()
    for y in SMALL_ORDER_Y:
        for sign in (0, 1):
            if crypto._x_for(y, sign) is None:
                continue
            point = decompress(encode(y, sign))
            multiple = point
            for _ in range(7):
                multiple = add(multiple, point)
            assert multiple == (0, 1), y
            points.add(point)
    assert len(points) == 8


def test_invalid_identity_key_forgery() -> None:
    """R = identity, S = 0 verifies for any message under the identity key: OpenSSL alone accepts it."""
    forged = IDENTITY + bytes(32)
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(forged, MESSAGE)  # the trap: no exception
    assert not crypto.verify(IDENTITY, forged, MESSAGE)


@pytest.mark.parametrize("weak", weak_encodings(), ids=lambda b: b.hex()[:8] + ".." + b.hex()[-4:])
def test_invalid_weak_key(weak: bytes) -> None:
    assert not crypto.is_strong_point(weak)
    assert not crypto.is_strong_pubkey(weak)
    assert not crypto.verify(weak, IDENTITY + bytes(32), MESSAGE)


@pytest.mark.parametrize("weak", weak_encodings()[:10], ids=lambda b: b.hex()[:8] + ".." + b.hex()[-4:])
def test_invalid_weak_r(weak: bytes) -> None:
    key = seeded_key("alice")
    signature = key.sign(MESSAGE)
    assert not crypto.verify(key.pubkey, weak + signature[32:], MESSAGE)


def test_invalid_non_canonical_r() -> None:
    """A point with y < 19 also has the encoding y + p; only the canonical one is accepted."""
    key = seeded_key("alice")
    signature = key.sign(MESSAGE)
    on_curve = [y for y in range(2, 19) if crypto._x_for(y, 0) is not None and y not in SMALL_ORDER_Y]
    assert on_curve
    for y in on_curve:
        assert crypto.is_strong_point(encode(y)) and not crypto.is_strong_point(encode(y + P))
        assert not crypto.verify(key.pubkey, encode(y + P) + signature[32:], MESSAGE)


def test_invalid_s_not_reduced() -> None:
    """S + L is the same signature to the equation: malleable, refused."""
    key = seeded_key("alice")
    signature = key.sign(MESSAGE)
    s = int.from_bytes(signature[32:], "little")
    assert s + L < 1 << 256
    assert not crypto.verify(key.pubkey, signature[:32] + (s + L).to_bytes(32, "little"), MESSAGE)


def test_invalid_key_off_the_curve() -> None:
    y = next(y for y in range(2, 100) if crypto._x_for(y, 0) is None)
    assert crypto.is_strong_point(encode(y)) and not crypto.is_strong_pubkey(encode(y))


# -- keys entering the state ---------------------------------------------------------------------------
def test_invalid_participant_with_identity_key(chain: Chain) -> None:
    rejected(chain, "dso", RegisterParticipant(pubkey=IDENTITY, role="consumer", zone=ZONE_A),
             errors.MalformedBody, spends_nonce=False)


def test_invalid_meter_with_small_order_key(chain: Chain) -> None:
    msg = RegisterMeter(meter_id="m-weak", pubkey=encode(sorted(SMALL_ORDER_Y)[-1]), owner=chain.id("alice"),
                        import_capacity_w=1_000, export_capacity_w=0, import_register_wh=0, export_register_wh=0)
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize("field", ["account_pubkey", "consensus_pubkey"])
def test_invalid_validator_with_weak_key(chain: Chain, field: str) -> None:
    keys = {"account_pubkey": seeded_key("new-op").pubkey, "consensus_pubkey": seeded_key("new-val").pubkey}
    keys[field] = encode(0)
    change = ValidatorChange(action="add", name="dso-x", role="dso", zones=("zone-x",), power=1, **keys)
    rejected(chain, "dso", ProposeValidator(change=change, description=""), errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize("section", ["operators", "participants"])
def test_invalid_genesis_weak_key(section: str) -> None:
    app_state = default_app_state({name: seeded_key(name) for name in
                                   ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol")})
    app_state[section][-1]["pubkey"] = IDENTITY.hex()
    with pytest.raises(GenesisError, match="weak Ed25519 key"):
        load_genesis(State(Overlay(MemoryBackend())), json.dumps(app_state).encode())
