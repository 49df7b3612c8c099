"""The validator set with names, and validator keys in the one text form operators see everywhere.

CometBFT names a validator only by its address and key (``/validators``);
the ledger knows whose key it is (``/operators``). ``named_validators`` joins
the two, so a table shows operator names next to addresses and power.

Consensus keys are written in base64, as CometBFT writes them
(``priv_validator_key.json``, ``/validators``, genesis) and as the app's
queries answer them. ``parse_consensus_pubkey`` also takes the hex that
earlier versions printed in proposal JSON: a 32-byte key is 44 characters of
base64 or 64 of hex, and no text is both (64 hex digits read as base64 would
be 48 bytes), so accepting both is unambiguous.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from node.cometbft import validator_address

CONSENSUS_KEY_BYTES = 32
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


class KeyFormatError(ValueError):
    """A consensus key that is neither base64 nor hex of 32 bytes."""


def parse_consensus_pubkey(text: str) -> bytes:
    """An Ed25519 consensus key from base64 (CometBFT's form) or 64 hex digits (older JSON)."""
    text = text.strip()
    if _HEX_KEY.fullmatch(text):
        return bytes.fromhex(text)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError(f"consensus key {text!r} is not base64 (as in priv_validator_key.json)") from exc
    if len(key) != CONSENSUS_KEY_BYTES:
        raise KeyFormatError(f"consensus key {text!r} is {len(key)} bytes, an Ed25519 key is {CONSENSUS_KEY_BYTES}")
    return key


def consensus_key_text(key: bytes) -> str:
    """The base64 text of a consensus key, as CometBFT and the app's queries write it."""
    return base64.b64encode(key).decode()


def named_validators(validators: Iterable[Mapping[str, Any]],
                     operators: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """CometBFT's ``/validators`` entries with the operator that owns each key (``name``, ``role``).

    A key no operator holds (the set changes two blocks after the ledger
    decides, or an operator left) keeps an empty name rather than a guess.
    """
    owners = {op.get("consensus_pubkey"): op for op in operators if op.get("consensus_pubkey")}
    rows = []
    for validator in validators:
        key = validator["pub_key"]["value"]
        owner = owners.get(key, {})
        rows.append({"name": owner.get("name", ""), "role": owner.get("role", ""),
                     "address": validator.get("address") or validator_address(key), "pub_key": key,
                     "voting_power": int(validator["voting_power"]),
                     "proposer_priority": int(validator.get("proposer_priority", 0))})
    return rows
