"""The demo chain's operators and participants (``gridledger demo``, ``make run``).

The chain itself is ``lab.network.single``. Demo keys live in an ordinary
encrypted keyring, ``<home>/keyring``, under the publicly known passphrase
``demo``: they guard nothing but a throw-away chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abci_app.ledger.crypto import SigningKey
from node.client.keystore import Keystore

DEMO_ZONE = "zone-a"
DEMO_PASSPHRASE = "demo"


def demo_key(home: Path, name: str) -> SigningKey:
    """Load a demo key from the demo keyring, creating it on first use."""
    keyring = Keystore(home / "keyring")
    if keyring.exists(name):
        return keyring.load(name, DEMO_PASSPHRASE)
    key = SigningKey.generate()
    keyring.add(name, DEMO_PASSPHRASE, key)
    return key


def demo_app_state(home: Path) -> dict[str, Any]:
    dso, lpd = demo_key(home, "dso"), demo_key(home, "lpd")
    alice, bob = demo_key(home, "alice"), demo_key(home, "bob")
    return {
        "params": {"currency": "EUR", "currency_exponent": 6},
        "operators": [
            {"name": "dso-a", "role": "dso", "pubkey": dso.pubkey.hex(), "zones": [DEMO_ZONE], "power": 1},
            {"name": "lpd-a", "role": "lpd", "pubkey": lpd.pubkey.hex(), "zones": [], "power": 1},
        ],
        "participants": [
            {"pubkey": alice.pubkey.hex(), "role": "prosumer", "zone": DEMO_ZONE, "dso": "dso-a",
             "balance": 50_000_000},
            {"pubkey": bob.pubkey.hex(), "role": "consumer", "zone": DEMO_ZONE, "dso": "dso-a",
             "balance": 50_000_000},
        ],
    }
