"""The demo chain (``gridledger demo``, ``make run``): who is on it, its meters, its log, and its meter reader.

The chain itself is ``lab.network.single``. Demo keys live in an ordinary
encrypted keyring, ``<home>/keyring``, under the publicly known passphrase
``demo``: they guard nothing but a throw-away chain.

Participants can trade at once: alice (a prosumer with rooftop PV) and bob (a
consumer) each own a registered meter (``alice-meter``, ``bob-meter``, keys in
the same keyring). Settlement bills a meter that does not report a slot its
full import capacity (docs/settlement.md), so the demo runs a meter reader
(lab/meter_reader.py) beside the node: at every slot end it signs both meters'
readings (alice's PV by day, bob's household load; seeded, so every demo reads
the same day) and the DSO relays them. Slot bills are then the market's, not
substitutes'.

Logs: every child's line goes to ``<home>/logs/demo.log`` (rotated at 10 MB,
three old files kept); the terminal shows all but CometBFT's, so the hints stay
readable.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abci_app.ledger.crypto import SigningKey
from lab.meter_reader import CONSUMER, PV_PROSUMER, MeterReader, MeterSpec, Profile
from lab.network import LocalNetwork, single
from lab.scenario import RpcTransport
from node import cometbft, supervisor
from node.client.keystore import Keystore

DEMO_CHAIN_ID = "gridledger-demo"
DEMO_ZONE = "zone-a"
DEMO_PASSPHRASE = "demo"
DEMO_SEED = 2026
DEMO_DSO_POWER = 1
LOG_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3


@dataclass(frozen=True)
class DemoMeter:
    meter_id: str
    owner: str
    import_capacity_w: int
    export_capacity_w: int
    profile: Profile


DEMO_METERS = (
    # alice's 10 kW export connection lets her sell up to 2.5 kWh per 15-minute slot.
    DemoMeter("alice-meter", "alice", import_capacity_w=3_000, export_capacity_w=10_000, profile=PV_PROSUMER),
    DemoMeter("bob-meter", "bob", import_capacity_w=11_000, export_capacity_w=0, profile=CONSUMER),
)


def demo_key(home: Path, name: str, kind: str = "account") -> SigningKey:
    """Load a demo key from the demo keyring, creating it on first use."""
    keyring = Keystore(home / "keyring")
    if keyring.exists(name):
        return keyring.load(name, DEMO_PASSPHRASE)
    key = SigningKey.generate()
    keyring.add(name, DEMO_PASSPHRASE, key, kind)
    return key


def create(home: Path, ports: cometbft.Ports, rpc_host: str = "127.0.0.1", metrics: bool = True) -> LocalNetwork:
    """The demo's home (``lab.network.single``); a fresh one's validator key belongs to the DSO ``dso-a``.

    The operator holding the node's consensus key is what names the validator in
    ``query validators`` and the dashboard; an existing home is kept as it is.
    """
    fresh = not (home / "config" / "genesis.json").exists()
    network = single(home, DEMO_CHAIN_ID, demo_app_state(home), ports, rpc_host=rpc_host, metrics=metrics,
                     power=DEMO_DSO_POWER)
    if fresh:
        state = demo_app_state(home, consensus_pubkey=network.consensus_keys()[0])
        network.write_genesis(network.genesis(DEMO_CHAIN_ID, state))
    return network


def demo_app_state(home: Path, consensus_pubkey: str = "") -> dict[str, Any]:
    """The demo's operators, participants and meters; ``consensus_pubkey``: the node's key, held by dso-a."""
    dso, lpd = demo_key(home, "dso"), demo_key(home, "lpd")
    owners = {"alice": demo_key(home, "alice"), "bob": demo_key(home, "bob")}
    return {
        "params": {"currency": "EUR", "currency_exponent": 6},
        "operators": [
            {"name": "dso-a", "role": "dso", "pubkey": dso.pubkey.hex(), "zones": [DEMO_ZONE], "power": DEMO_DSO_POWER,
             **({"consensus_pubkey": consensus_pubkey} if consensus_pubkey else {})},
            {"name": "lpd-a", "role": "lpd", "pubkey": lpd.pubkey.hex(), "zones": [], "power": 1},
        ],
        "participants": [
            {"pubkey": owners["alice"].pubkey.hex(), "role": "prosumer", "zone": DEMO_ZONE, "dso": "dso-a",
             "balance": 50_000_000},
            {"pubkey": owners["bob"].pubkey.hex(), "role": "consumer", "zone": DEMO_ZONE, "dso": "dso-a",
             "balance": 50_000_000},
        ],
        "meters": [
            {"id": meter.meter_id, "pubkey": demo_key(home, meter.meter_id, "meter").pubkey.hex(),
             "owner_pubkey": owners[meter.owner].pubkey.hex(), "import_capacity_w": meter.import_capacity_w,
             "export_capacity_w": meter.export_capacity_w}
            for meter in DEMO_METERS
        ],
    }


def has_meters(home: Path) -> bool:
    """Whether the demo home's genesis registers the demo meters (homes made before they existed do not)."""
    meters = cometbft.read_genesis(home).get("app_state", {}).get("meters", [])
    return {m.get("id") for m in meters} >= {m.meter_id for m in DEMO_METERS}


def meter_reader(home: Path, rpc_url: str, log: Any, seed: int = DEMO_SEED) -> MeterReader:
    """The demo's meter-data service: the demo meters' keys, relayed by the DSO."""
    meters = [MeterSpec(m.meter_id, demo_key(home, m.meter_id, "meter"), m.profile) for m in DEMO_METERS]
    return MeterReader(RpcTransport(rpc_url), demo_key(home, "dso"), meters, seed=seed, log=log)


class DemoLog:
    """The supervisor's sink: every line into a rotated file, all but CometBFT's on the terminal too."""

    def __init__(self, path: Path, terminal: Any = supervisor.write_line) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.terminal = terminal
        self._handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                                             encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        record = logging.LogRecord("demo", logging.INFO, __file__, 0, line, None, None)
        with self._lock:
            self._handler.emit(record)
        if not line.startswith("[cometbft]"):
            self.terminal(line)

    def close(self) -> None:
        self._handler.close()


def start_meter_reader(home: Path, rpc_url: str, sink: Any) -> tuple[threading.Thread, threading.Event]:
    """Run the demo's meter reader in a thread that logs through ``sink``; set the event to stop it."""
    reader = meter_reader(home, rpc_url, log=lambda line: sink(f"[meters] {line}"))
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), name="demo-meter-reader", daemon=True)
    thread.start()
    return thread, stop
