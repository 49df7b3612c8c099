"""A single-validator local chain with demo operators and participants.

Used by ``make run`` (``gridledger demo``) and by the end-to-end tests. Demo
keys live in an ordinary encrypted keyring, ``<home>/keyring``, under the
publicly known passphrase ``demo``: they guard nothing but a throw-away chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abci_app.ledger.crypto import SigningKey
from cli.keystore import Keystore
from node import cometbft

DEMO_ZONE = "zone-a"
DEMO_PASSPHRASE = "demo"


@dataclass(frozen=True)
class Ports:
    rpc: int
    p2p: int
    abci: int
    app_metrics: int | None = None
    """The app's Prometheus metrics on 127.0.0.1 (None: off); ``make run`` uses 26655, as a node's N+5."""
    cometbft_metrics: int | None = None
    """CometBFT's Prometheus metrics on 127.0.0.1 (None: off); ``make run`` uses 26659, as a node's N+9."""

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc}"

    @property
    def app_metrics_address(self) -> str | None:
        """What ``NodeSpec.app_metrics`` takes (HOST:PORT), or None when the app serves none."""
        return f"127.0.0.1:{self.app_metrics}" if self.app_metrics is not None else None


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


def init_single(home: Path, chain_id: str, app_state: dict[str, Any], ports: Ports,
                timeout_commit: str = "1s", rpc_host: str = "127.0.0.1") -> None:
    """Create (once) a one-validator home; only the RPC may listen beyond loopback."""
    fresh = not (home / "config" / "genesis.json").exists()
    cometbft.init_home(home)
    if fresh:
        cometbft.set_genesis(home, chain_id, app_state)
    cometbft.configure(home, {
        "": {"proxy_app": f"tcp://127.0.0.1:{ports.abci}", "moniker": home.name or "gridledger"},
        "rpc": {"laddr": f"tcp://{rpc_host}:{ports.rpc}"},
        "p2p": {"laddr": f"tcp://127.0.0.1:{ports.p2p}", "allow_duplicate_ip": True, "addr_book_strict": False},
        "consensus": {"timeout_commit": timeout_commit},
        "tx_index": {"indexer": "kv"},
    })
    if ports.cometbft_metrics is not None:
        cometbft.configure(home, {"instrumentation": {
            "prometheus": True, "prometheus_listen_addr": f"127.0.0.1:{ports.cometbft_metrics}"}})
    if ports.app_metrics_address is not None:
        settings = cometbft.read_node_settings(home)
        settings["app_metrics"] = ports.app_metrics_address
        cometbft.write_node_settings(home, settings)
