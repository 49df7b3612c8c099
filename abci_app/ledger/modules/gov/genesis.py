"""Genesis step of the gov module: the operators, with the rules of a validator ``add`` proposal."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from abci_app.ledger import crypto, errors
from abci_app.ledger.modules.gov.handlers import check_new_operator, check_total_power, create_operator
from abci_app.ledger.modules.gov.msgs import check_operator_fields
from abci_app.ledger.modules.gov.records import Operator
from abci_app.ledger.msg import require_amount, require_new_key
from abci_app.ledger.state import State


def init_operators(state: State, entries: list[dict[str, Any]]) -> dict[str, Operator]:
    """Create the genesis operators; returns them by name."""
    created: dict[str, Operator] = {}
    for entry in entries:
        zones = tuple(sorted(entry.get("zones", [])))
        # Rule: a genesis operator lists each zone once (the order does not matter).
        if len(set(zones)) != len(zones):
            raise errors.MalformedBody(f"operator {entry['name']} lists a zone twice")
        account_pubkey = pubkey_from_hex(entry["pubkey"])
        consensus_pubkey = consensus_pubkey_from_base64(entry.get("consensus_pubkey", ""))
        power, balance = entry.get("power", 1), entry.get("balance", 0)
        check_operator_fields(entry["role"], entry["name"], account_pubkey, zones, power)
        require_amount("balance", balance, minimum=0)
        check_new_operator(state, entry["name"], account_pubkey, consensus_pubkey, zones)
        check_total_power(state, power)
        created[entry["name"]] = create_operator(state, entry["role"], entry["name"], account_pubkey,
                                                 consensus_pubkey, zones, power, balance)
    return created


def pubkey_from_hex(text: Any) -> bytes:
    key = bytes.fromhex(text)
    if len(key) != crypto.PUBKEY_BYTES:
        raise errors.MalformedBody(f"public key {text!r} is not 32 bytes of hex")
    return key


def consensus_pubkey_from_base64(text: Any) -> bytes:
    """The validator key as CometBFT writes it (base64 ``pub_key.value``); empty: no validator."""
    if text == "":
        return b""
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise errors.MalformedBody(f"consensus_pubkey {text!r} is not base64") from exc
    if len(key) != crypto.PUBKEY_BYTES:
        raise errors.MalformedBody(f"consensus_pubkey {text!r} is not a 32-byte Ed25519 key")
    require_new_key("consensus_pubkey", key)
    return key
