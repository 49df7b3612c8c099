"""A validator's home as `gridledger node init` creates it: CometBFT's home plus gridledger's settings.

    <home>/config/                  CometBFT: config.toml, genesis.json, node and validator keys
    <home>/config/gridledger.toml   the operator this node belongs to, app metrics, snapshot settings
    <home>/p2p.toml                 the libp2p host's settings (when the node runs one)
    <home>/p2p_identity.key         the libp2p host's identity, which signs its feed snapshots
    <home>/data/                    CometBFT's block store; data/app holds the app's LevelDB

``check`` refuses bad options before anything is written (a bad option must
not leave half a home, nor an operator key for a node that never was);
``trusted_block`` reads the block a joining node trusts for state sync;
``create`` writes the home for an operator account key the caller holds.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abci_app.ledger.crypto import account_id
from abci_app.ledger.modules.auth.records import OPERATOR_ROLES
from abci_app.ledger.msg import NAME_PATTERN
from abci_app.ledger.snapshots import DEFAULT_INTERVAL, DEFAULT_KEEP
from node import cometbft
from node.client import lightclient
from node.p2p import node_host
from node.rpc import CometRpc, NodeUnreachable, RpcError

DEFAULT_CHAIN_ID = "gridledger-1"


class HomeError(Exception):
    """An option that cannot make a validator home (nothing was written)."""


@dataclass(frozen=True)
class HomeSpec:
    """Everything `gridledger node init` needs to know (the CLI's options, parsed)."""

    home: Path
    moniker: str
    role: str
    zones: tuple[str, ...] = ()
    power: int = 10
    chain_id: str = DEFAULT_CHAIN_ID
    """Of a new one-operator chain; a joined chain's comes from ``genesis``."""
    genesis: Path | None = None
    """genesis.json of the network to join; None: a new chain with this node as its only validator."""
    peers: tuple[str, ...] = ()
    base_port: int = cometbft.DEFAULT_BASE_PORT
    p2p_host: str = "0.0.0.0"
    rpc_host: str = "127.0.0.1"
    timeout_commit: str = "1s"
    libp2p: bool = True
    p2p_listen: str | None = None
    p2p_zones: tuple[str, ...] = ()
    p2p_bootstrap: tuple[str, ...] = ()
    p2p_trusted: tuple[str, ...] = ()
    key_name: str = ""
    """Keyring name of the operator's account key (default: the moniker in lower case)."""

    @property
    def operator_key_name(self) -> str:
        return self.key_name or self.moniker.lower()


def parse_zones(text: str) -> tuple[str, ...]:
    """``north-1, north-2`` -> the zone names, sorted, without repeats."""
    return tuple(sorted({zone.strip() for zone in text.split(",") if zone.strip()}))


def check(spec: HomeSpec) -> cometbft.Ports:
    """Every rule the options must meet before anything is written; the home's port block."""
    if NAME_PATTERN.fullmatch(spec.moniker) is None:
        raise HomeError(f"moniker {spec.moniker!r} is not a valid name (1-64 of A-Z a-z 0-9 . _ : -)")
    if spec.role not in OPERATOR_ROLES:
        raise HomeError(f"role must be one of {', '.join(OPERATOR_ROLES)}, not {spec.role!r}")
    for zone in spec.zones:
        if NAME_PATTERN.fullmatch(zone) is None:
            raise HomeError(f"zone {zone!r} is not a valid name (1-64 of A-Z a-z 0-9 . _ : -)")
    if spec.role == "dso" and not spec.zones:
        raise HomeError("a DSO serves at least one zone: add --zones z1,z2")
    if spec.role == "lpd" and spec.zones:
        raise HomeError("an LPD serves no zones: drop --zones")
    for zone in spec.p2p_zones:
        if NAME_PATTERN.fullmatch(zone) is None:
            raise HomeError(f"--p2p-zone {zone!r} is not a valid zone name")
    for key in spec.p2p_trusted:
        if len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key):
            raise HomeError(f"--p2p-trust-publisher {key!r} is not a 64-hex public key")
    if (spec.home / "config" / "genesis.json").exists():
        raise HomeError(f"{spec.home} is already a node home; choose another --home")
    if spec.genesis is not None and not spec.genesis.is_file():
        raise HomeError(f"genesis file {spec.genesis} not found")
    try:
        return cometbft.Ports.from_base(spec.base_port)
    except ValueError as exc:
        raise HomeError(str(exc)) from None


@dataclass(frozen=True)
class TrustedBlock:
    """The block a node joining by state sync trusts, and where it was read."""

    height: int
    hash: str
    rpc_servers: tuple[str, ...]
    trust_period: str

    def settings(self) -> dict[str, dict[str, Any]]:
        """config.toml's [statesync] (docs/operators.md)."""
        return cometbft.statesync_settings(list(self.rpc_servers), self.height, self.hash, self.trust_period)


def trusted_block(genesis: Path | None, rpc_servers: list[str], trust_period: str) -> TrustedBlock:
    """The latest block of the first RPC server, verified by the light client against the genesis's chain id."""
    if genesis is None:
        raise HomeError("--state-sync joins an existing network: give its --genesis")
    if not rpc_servers:
        raise HomeError("--state-sync needs --state-sync-rpc URL of a node you trust (repeat it for witnesses)")
    try:
        chain_id = str(json.loads(genesis.read_text())["chain_id"])
    except (OSError, ValueError, KeyError) as exc:
        raise HomeError(f"cannot read the chain id of {genesis}: {exc}") from None
    rpc = CometRpc(rpc_servers[0], timeout=10.0)
    try:
        height, block_hash = lightclient.trust_point(rpc, chain_id)
    except NodeUnreachable as exc:
        raise NodeUnreachable(str(exc), url=rpc_servers[0], during="reading the block to trust") from exc
    except (RpcError, lightclient.LightClientError, KeyError, ValueError) as exc:
        raise HomeError(f"trusted RPC {rpc_servers[0]} gave no verifiable block of chain {chain_id!r}: {exc}") \
            from None
    finally:
        rpc.close()
    return TrustedBlock(height, block_hash, tuple(rpc_servers), trust_period)


@dataclass(frozen=True)
class Created:
    """What `node init` reports: what other operators need to add this node by governance."""

    record: dict[str, Any]
    libp2p: bool
    """The node runs a libp2p host (False also when it has no zone to publish a feed for)."""


def create(spec: HomeSpec, account_pubkey: str, statesync: TrustedBlock | None = None) -> Created:
    """Write the home: CometBFT's keys and config, the genesis, gridledger.toml, the libp2p host's files."""
    ports = check(spec)
    home = spec.home
    cometbft.init_home(home)
    network = cometbft.Network(ports=ports, p2p_host=spec.p2p_host, local_host=spec.rpc_host, peers=spec.peers,
                               same_host_peers=_is_loopback(spec.p2p_host))
    cometbft.configure(home, {**cometbft.network_settings(network, spec.moniker, cometbft.Timing(spec.timeout_commit)),
                              **(statesync.settings() if statesync else {})})
    consensus_pubkey = cometbft.validator_pubkey(home)
    operator = {"name": spec.moniker, "role": spec.role, "pubkey": account_pubkey, "zones": list(spec.zones),
                "power": spec.power, "consensus_pubkey": consensus_pubkey}
    if spec.genesis is not None:
        shutil.copyfile(spec.genesis, home / "config" / "genesis.json")
    else:
        _own_genesis(home, spec.chain_id, operator)
    cometbft.write_node_settings(home, {
        "app_metrics": f"{spec.rpc_host}:{ports.app_metrics}",
        "operator": {"name": spec.moniker, "role": spec.role, "zones": list(spec.zones), "pubkey": account_pubkey,
                     "key_name": spec.operator_key_name},
        "snapshots": {"interval": DEFAULT_INTERVAL, "keep": DEFAULT_KEEP},
    })
    chain_id = cometbft.read_genesis(home)["chain_id"]
    node_id = cometbft.node_id_from_key(home)
    # Peers need an address they can reach; a wildcard listener has none to offer.
    advertised = "<public-host>" if spec.p2p_host in ("0.0.0.0", "::") else spec.p2p_host
    libp2p_facts = _setup_libp2p(spec, chain_id, advertised) if spec.libp2p else {}
    record = {
        "home": str(home), "moniker": spec.moniker, "role": spec.role, "zones": list(spec.zones),
        "power": spec.power, "chain_id": chain_id, "node_id": node_id,
        "p2p_address": f"{node_id}@{advertised}:{ports.p2p}",
        "consensus_pubkey": consensus_pubkey, "validator_address": cometbft.validator_address(consensus_pubkey),
        "account_pubkey": account_pubkey, "account": account_id(bytes.fromhex(account_pubkey)),
        "ports": ports.as_dict(), **libp2p_facts,
        **({"state_sync_trust_height": statesync.height, "state_sync_trust_hash": statesync.hash}
           if statesync else {}),
    }
    return Created(record, libp2p=bool(libp2p_facts))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _own_genesis(home: Path, chain_id: str, operator: dict[str, Any]) -> None:
    """A one-operator genesis: this node is the only validator of a new chain."""
    genesis = cometbft.read_genesis(home)
    genesis["chain_id"] = chain_id
    genesis["validators"] = [cometbft.genesis_validator(operator["consensus_pubkey"], operator["power"],
                                                        operator["name"])]
    genesis["app_state"] = {"operators": [operator]}
    cometbft.write_genesis(home, genesis)


def _p2p_zones(spec: HomeSpec) -> list[str]:
    """Zones the host publishes: --p2p-zone, else a DSO's own zones, else (LPD) every zone of the genesis."""
    if spec.p2p_zones:
        return sorted(set(spec.p2p_zones))
    if spec.role == "dso":
        return list(spec.zones)
    operators = cometbft.read_genesis(spec.home).get("app_state", {}).get("operators", [])
    return sorted({zone for op in operators for zone in op.get("zones", [])})


def _setup_libp2p(spec: HomeSpec, chain_id: str, advertised: str) -> dict[str, Any]:
    """Identity and p2p.toml of the node's libp2p host; no host (empty facts) when there is no zone to serve."""
    zones = _p2p_zones(spec)
    if not zones:
        return {}
    port = node_host.port_of(spec.base_port)
    identity = node_host.create_identity(spec.home)
    node_host.write_config(spec.home, chain_id=chain_id, zones=zones,
                           listen=[spec.p2p_listen or node_host.multiaddr(spec.p2p_host, port)],
                           bootstrap=list(spec.p2p_bootstrap),
                           trusted_publishers=[identity.pubkey, *(k.lower() for k in spec.p2p_trusted)])
    address = (f"/ip4/{advertised}/tcp/{port}/p2p/{identity.peer_id}" if spec.p2p_listen is None
               else f"{spec.p2p_listen}/p2p/{identity.peer_id}")
    return {"libp2p_peer_id": identity.peer_id, "feed_publisher_key": identity.pubkey, "libp2p_address": address}
