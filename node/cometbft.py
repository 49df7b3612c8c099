"""The pinned CometBFT binaries and the homes they run in."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

REPO_ROOT = Path(__file__).resolve().parents[1]
# gridledger's own per-node settings (the app's metrics address, the operator
# this node belongs to), next to CometBFT's config.toml.
NODE_SETTINGS = Path("config") / "gridledger.toml"
# A home's port block: base + offset. With the default base 26650 a node gets
# CometBFT's usual ports (p2p 26656, RPC 26657, ABCI 26658); the next node of
# a testnet takes base + 10, and so on.
DEFAULT_BASE_PORT = 26650
PORT_STRIDE = 10


@dataclass(frozen=True)
class Ports:
    """Every TCP port one node listens on."""

    app_metrics: int
    p2p: int
    rpc: int
    abci: int
    cometbft_metrics: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        if not 1024 <= base <= 65535 - PORT_STRIDE:
            raise ValueError(f"base port {base} is outside 1024..{65535 - PORT_STRIDE}")
        return cls(app_metrics=base + 5, p2p=base + 6, rpc=base + 7, abci=base + 8, cometbft_metrics=base + 9)

    def as_dict(self) -> dict[str, int]:
        return {"p2p": self.p2p, "rpc": self.rpc, "abci": self.abci, "cometbft_metrics": self.cometbft_metrics,
                "app_metrics": self.app_metrics}

    @property
    def rpc_url(self) -> str:
        """Where this machine reaches the node's RPC over loopback."""
        return f"http://127.0.0.1:{self.rpc}"


@dataclass(frozen=True)
class Network:
    """Where a node listens and whom it dials.

    ``p2p_host`` is the interface peers reach (0.0.0.0 on a real host, a
    container's 0.0.0.0, or 127.0.0.1 in a local testnet); ``local_host`` is
    where the RPC and the metrics listen (loopback unless in a container,
    where the port is published instead). The ABCI socket is always loopback:
    the app runs next to CometBFT.
    """

    ports: Ports
    p2p_host: str = "0.0.0.0"
    local_host: str = "127.0.0.1"
    peers: tuple[str, ...] = ()
    # Several nodes on one machine (loopback or one Docker network) need
    # CometBFT's anti-eclipse checks relaxed: same IP, non-routable addresses.
    same_host_peers: bool = False


@dataclass(frozen=True)
class Timing:
    """Block-production settings (CometBFT [consensus])."""

    timeout_commit: str = "1s"
    timeout_propose: str = "3s"
    create_empty_blocks: bool = True
    create_empty_blocks_interval: str = "0s"


def pinned_version() -> str:
    """The CometBFT version pinned in config/versions.env."""
    for line in (REPO_ROOT / "config" / "versions.env").read_text().splitlines():
        if line.startswith("COMETBFT_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("config/versions.env does not pin COMETBFT_VERSION")


def tools_bin() -> Path:
    """Where `make` installs the pinned binaries (override: GRIDLEDGER_TOOLS_BIN)."""
    override = os.environ.get("GRIDLEDGER_TOOLS_BIN")
    if override:
        return Path(override)
    return REPO_ROOT / ".tools" / f"cometbft-{pinned_version()}" / "bin"


def binary(name: str = "cometbft") -> Path:
    path = tools_bin() / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make setup` to build the pinned CometBFT")
    return path


def init_home(home: Path) -> None:
    """Create a CometBFT home (keys, config, genesis) unless one exists."""
    if (home / "config" / "genesis.json").exists():
        return
    subprocess.run([str(binary()), "init", "--home", str(home)], check=True, capture_output=True)


def configure(home: Path, settings: dict[str, dict[str, Any]]) -> None:
    """Set values in config.toml: ``{"consensus": {"timeout_commit": "1s"}, "": {"moniker": "x"}}``."""
    path = home / "config" / "config.toml"
    doc = tomlkit.parse(path.read_text())
    for section, values in settings.items():
        table: Any = doc if section == "" else doc[section]
        for key, value in values.items():
            if key not in table:
                raise KeyError(f"config.toml has no setting {section}.{key}")
            table[key] = value
    path.write_text(tomlkit.dumps(doc))


def set_genesis(home: Path, chain_id: str, app_state: dict[str, Any], genesis_time: str | None = None) -> None:
    """Write the chain id and gridledger's app_state into genesis.json."""
    path = home / "config" / "genesis.json"
    genesis = json.loads(path.read_text())
    genesis["chain_id"] = chain_id
    genesis["app_state"] = app_state
    if genesis_time is not None:
        genesis["genesis_time"] = genesis_time
    path.write_text(json.dumps(genesis, indent=2) + "\n")


def validator_pubkey(home: Path) -> str:
    """Base64 Ed25519 consensus public key of the home's validator."""
    key = json.loads((home / "config" / "priv_validator_key.json").read_text())
    value: str = key["pub_key"]["value"]
    return value


def node_id(home: Path) -> str:
    out = subprocess.run([str(binary()), "show-node-id", "--home", str(home)], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def node_id_from_key(home: Path) -> str:
    """The node id (hex of the first 20 bytes of SHA-256 of the node's p2p public key), without a subprocess."""
    key = json.loads((home / "config" / "node_key.json").read_text())
    private = base64.b64decode(key["priv_key"]["value"])
    return hashlib.sha256(private[32:]).hexdigest()[:40]


def validator_address(pubkey_b64: str) -> str:
    """CometBFT's validator address: upper-case hex of the first 20 bytes of SHA-256 of the key."""
    return hashlib.sha256(base64.b64decode(pubkey_b64)).hexdigest()[:40].upper()


def genesis_validator(pubkey_b64: str, power: int, name: str) -> dict[str, Any]:
    """One entry of genesis.json ``validators``."""
    return {"address": validator_address(pubkey_b64),
            "pub_key": {"type": "tendermint/PubKeyEd25519", "value": pubkey_b64},
            "power": str(power), "name": name}


def read_genesis(home: Path) -> dict[str, Any]:
    genesis: dict[str, Any] = json.loads((home / "config" / "genesis.json").read_text())
    return genesis


def write_genesis(home: Path, genesis: dict[str, Any]) -> None:
    (home / "config" / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")


def rpc_url(home: Path, laddr: str | None = None) -> str:
    """Where processes on this machine reach a node's RPC: ``laddr``, else the home's ``rpc.laddr``; a wildcard
    listener via loopback."""
    address = laddr or read_config(home)["rpc"]["laddr"]
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def read_config(home: Path) -> dict[str, Any]:
    """CometBFT's config.toml as plain data."""
    return tomllib.loads((home / "config" / "config.toml").read_text())


def network_settings(network: Network, moniker: str, timing: Timing) -> dict[str, dict[str, Any]]:
    """config.toml values for a node's addresses, peers, block timing and metrics."""
    ports = network.ports
    return {
        "": {"moniker": moniker, "proxy_app": f"tcp://127.0.0.1:{ports.abci}"},
        "rpc": {"laddr": f"tcp://{network.local_host}:{ports.rpc}", "pprof_laddr": ""},
        "p2p": {"laddr": f"tcp://{network.p2p_host}:{ports.p2p}", "persistent_peers": ",".join(network.peers),
                "addr_book_strict": not network.same_host_peers, "allow_duplicate_ip": network.same_host_peers},
        "consensus": {"timeout_commit": timing.timeout_commit, "timeout_propose": timing.timeout_propose,
                      "create_empty_blocks": timing.create_empty_blocks,
                      "create_empty_blocks_interval": timing.create_empty_blocks_interval},
        "instrumentation": {"prometheus": True,
                            "prometheus_listen_addr": f"{network.local_host}:{ports.cometbft_metrics}"},
        "tx_index": {"indexer": "kv"},
    }


def statesync_settings(rpc_servers: list[str], trust_height: int, trust_hash: str,
                       trust_period: str) -> dict[str, dict[str, Any]]:
    """config.toml [statesync] of a node that joins by restoring a snapshot (docs/operators.md).

    CometBFT's light client wants a primary and at least one witness: a single
    trusted server is listed twice.
    """
    servers = rpc_servers if len(rpc_servers) > 1 else rpc_servers * 2
    return {"statesync": {"enable": True, "rpc_servers": ",".join(servers), "trust_height": trust_height,
                          "trust_hash": trust_hash, "trust_period": trust_period}}


def write_node_settings(home: Path, settings: dict[str, Any]) -> None:
    """Write gridledger's own settings of a node (config/gridledger.toml)."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("gridledger settings of this node; CometBFT's own are in config.toml"))
    for key, value in settings.items():
        doc[key] = value
    (home / NODE_SETTINGS).write_text(tomlkit.dumps(doc))


def read_node_settings(home: Path) -> dict[str, Any]:
    """gridledger's settings of a node; empty for a plain CometBFT home."""
    path = home / NODE_SETTINGS
    if not path.exists():
        return {}
    return tomllib.loads(path.read_text())
