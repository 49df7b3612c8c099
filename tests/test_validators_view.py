"""node/validators.py: validator rows with operator names; one consensus-key text, old hex still read."""

from __future__ import annotations

import base64

import pytest

from node.cometbft import validator_address
from node.validators import KeyFormatError, consensus_key_text, named_validators, parse_consensus_pubkey
from tests.harness import seeded_key

KEY = seeded_key("consensus-dso-a").pubkey
OTHER = seeded_key("consensus-gone").pubkey


def test_basic_base64_and_old_hex_give_the_same_key() -> None:
    text = consensus_key_text(KEY)
    assert text == base64.b64encode(KEY).decode() and len(text) == 44
    assert parse_consensus_pubkey(text) == KEY
    assert parse_consensus_pubkey(KEY.hex()) == KEY
    assert parse_consensus_pubkey(KEY.hex().upper()) == KEY
    assert parse_consensus_pubkey(f"  {text}\n") == KEY


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"x" * 31).decode(),
                                  base64.b64encode(b"x" * 48).decode(), "ab" * 31, "zz" * 32])
def test_invalid_consensus_key_text(text: str) -> None:
    with pytest.raises(KeyFormatError):
        parse_consensus_pubkey(text)


def test_basic_hex_of_a_key_is_never_also_a_base64_key() -> None:
    # 64 hex digits decode as base64 to 48 bytes: no 32-byte key is read two ways.
    assert len(base64.b64decode(KEY.hex())) == 48


def test_basic_validators_named_by_their_operators() -> None:
    key, other = consensus_key_text(KEY), consensus_key_text(OTHER)
    validators = [
        {"address": validator_address(key), "pub_key": {"type": "tendermint/PubKeyEd25519", "value": key},
         "voting_power": "10", "proposer_priority": "-5"},
        {"address": validator_address(other), "pub_key": {"type": "tendermint/PubKeyEd25519", "value": other},
         "voting_power": "3", "proposer_priority": "5"},
    ]
    operators = [{"name": "dso-a", "role": "dso", "consensus_pubkey": key},
                 {"name": "lpd-x", "role": "lpd", "consensus_pubkey": ""}]
    assert named_validators(validators, operators) == [
        {"name": "dso-a", "role": "dso", "address": validator_address(key), "pub_key": key, "voting_power": 10,
         "proposer_priority": -5},
        {"name": "", "role": "", "address": validator_address(other), "pub_key": other, "voting_power": 3,
         "proposer_priority": 5},
    ]
