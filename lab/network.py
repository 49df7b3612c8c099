"""Local networks: validator homes on this machine that make one chain.

Every network gridledger sets up on one machine is made here: the demo's single
validator (``single``, also the end-to-end tests' node), a roster's testnet
(lab/testnet/create.py) and the experiment clusters (lab/cluster.py). A
``LocalNetwork`` gives each member a CometBFT home (``cometbft init``: its keys
and a default config.toml), one shared genesis listing the members as the
validators, and a config.toml with its port block (lab/ports.py), every other
member as a persistent peer, the block timing, and the caller's settings on
top. Addresses and peers are written last: no caller's settings can change what
makes the network a network.

Running the nodes is the caller's part: the demo runs its node in the
foreground, the testnet detaches one ``gridledger node start`` per home, a
cluster supervises its nodes in-process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node import cometbft

Settings = dict[str, dict[str, Any]]
"""config.toml values by section (``""`` is the top level): ``{"consensus": {"timeout_commit": "1s"}}``."""

# The keys of network_settings that make the network a network (addresses, peers, the app).
_IDENTITY = {"": ("moniker", "proxy_app"), "rpc": ("laddr",),
             "p2p": ("laddr", "persistent_peers", "addr_book_strict", "allow_duplicate_ip")}


@dataclass(frozen=True)
class Member:
    """One validator of a local network."""

    home: Path
    moniker: str
    ports: cometbft.Ports
    power: int = 10
    p2p_host: str = "127.0.0.1"
    """Interface its CometBFT p2p port listens on (0.0.0.0 in a container)."""
    local_host: str = "127.0.0.1"
    """Interface of its RPC and metrics ports."""
    dial_host: str = "127.0.0.1"
    """Where the other members reach it (a container's service name, a network namespace's address)."""
    proxy_app: str | None = None
    """CometBFT's ``proxy_app``; None: the gridledger app on the member's ABCI port over loopback."""


def merge(*layers: Mapping[str, Mapping[str, Any]]) -> Settings:
    """Settings layered in order: a later layer's value wins."""
    merged: Settings = {}
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    return merged


class LocalNetwork:
    """The members' homes, their shared genesis and their config.toml (see the module doc)."""

    def __init__(self, members: Sequence[Member], timing: cometbft.Timing | None = None) -> None:
        if not members:
            raise ValueError("a network needs at least one member")
        self.members = tuple(members)
        self.timing = timing or cometbft.Timing()

    @property
    def homes(self) -> list[Path]:
        return [member.home for member in self.members]

    @property
    def rpc_urls(self) -> list[str]:
        """Where this machine reaches each member's RPC."""
        return [f"http://{m.dial_host}:{m.ports.rpc}" for m in self.members]

    def create(self, chain_id: str, app_state: dict[str, Any],
               settings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """Homes, the shared genesis and every config.toml in one go; returns the genesis."""
        self.create_homes()
        genesis = self.genesis(chain_id, app_state)
        self.write_genesis(genesis)
        self.configure(settings)
        return genesis

    def create_homes(self) -> None:
        """A CometBFT home per member (its validator and node keys); an existing home is kept as it is."""
        for home in self.homes:
            cometbft.init_home(home)

    def consensus_keys(self) -> list[str]:
        """Each member's base64 Ed25519 validator key, in member order."""
        return [cometbft.validator_pubkey(home) for home in self.homes]

    def node_ids(self) -> list[str]:
        return [cometbft.node_id_from_key(home) for home in self.homes]

    def genesis(self, chain_id: str, app_state: dict[str, Any]) -> dict[str, Any]:
        """The first home's consensus parameters and genesis time, every member as a validator, ``app_state``."""
        genesis = cometbft.read_genesis(self.members[0].home)
        genesis["chain_id"] = chain_id
        genesis["validators"] = [cometbft.genesis_validator(key, member.power, member.moniker)
                                 for member, key in zip(self.members, self.consensus_keys(), strict=True)]
        genesis["app_state"] = app_state
        return genesis

    def write_genesis(self, genesis: dict[str, Any]) -> None:
        for home in self.homes:
            cometbft.write_genesis(home, genesis)

    def peers(self, index: int, node_ids: Sequence[str]) -> tuple[str, ...]:
        """``NODE_ID@HOST:PORT`` of every member but ``index``."""
        return tuple(f"{node_ids[j]}@{m.dial_host}:{m.ports.p2p}" for j, m in enumerate(self.members) if j != index)

    def settings_of(self, index: int, node_ids: Sequence[str],
                    settings: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
        """Member ``index``'s config.toml values: timing and metrics, the caller's ``settings``, then its identity."""
        member = self.members[index]
        network = cometbft.Network(ports=member.ports, p2p_host=member.p2p_host, local_host=member.local_host,
                                   peers=self.peers(index, node_ids), same_host_peers=True)
        base = cometbft.network_settings(network, member.moniker, self.timing)
        if member.proxy_app is not None:
            base[""]["proxy_app"] = member.proxy_app
        identity = {section: {key: base[section][key] for key in keys} for section, keys in _IDENTITY.items()}
        return merge(base, settings or {}, identity)

    def configure(self, settings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Write every member's config.toml (``settings_of``)."""
        node_ids = self.node_ids()
        for index, home in enumerate(self.homes):
            cometbft.configure(home, self.settings_of(index, node_ids, settings))


def single(home: Path, chain_id: str, app_state: dict[str, Any], ports: cometbft.Ports, timeout_commit: str = "1s",
           rpc_host: str = "127.0.0.1", metrics: bool = False, power: int = 10) -> LocalNetwork:
    """A one-validator chain on loopback (only the RPC may listen on ``rpc_host``), as ``gridledger demo`` runs it.

    The home is created once: a home that exists keeps its keys, genesis and state, and only
    its config.toml is written again (the ports or the RPC interface may differ from the last run).
    With ``metrics`` the node serves CometBFT's Prometheus metrics on ``ports.cometbft_metrics`` and
    the app's on ``ports.app_metrics`` (both on 127.0.0.1); without, neither.
    """
    member = Member(home=home, moniker=home.name or "gridledger", ports=ports, local_host=rpc_host, power=power)
    network = LocalNetwork([member], cometbft.Timing(timeout_commit=timeout_commit))
    fresh = not (home / "config" / "genesis.json").exists()
    network.create_homes()
    if fresh:
        network.write_genesis(network.genesis(chain_id, app_state))
    prometheus: dict[str, Any] = {"prometheus": metrics}
    if metrics:
        prometheus["prometheus_listen_addr"] = f"127.0.0.1:{ports.cometbft_metrics}"
    network.configure({"instrumentation": prometheus})
    settings = cometbft.read_node_settings(home)
    settings.pop("app_metrics", None)
    if metrics:
        settings["app_metrics"] = f"127.0.0.1:{ports.app_metrics}"
    cometbft.write_node_settings(home, settings)
    return network
