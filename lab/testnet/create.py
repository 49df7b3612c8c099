"""`testnet init`: every home, key and the shared genesis of a roster's validators; nothing is started."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.network import LocalNetwork, Member
from lab.ports import block_bases
from lab.testnet.model import TESTNET_PASSPHRASE, NodeInfo, Testnet, TestnetError
from lab.testnet.roster import Roster, app_state
from node import cometbft
from node.client.keystore import Keystore
from node.p2p import node_host


@dataclass(frozen=True)
class InitOptions:
    out: Path
    base_port: int = cometbft.DEFAULT_BASE_PORT
    timing: cometbft.Timing = field(default_factory=cometbft.Timing)
    docker: bool = False
    chain_id: str | None = None
    p2p: bool = False
    """Give every node a libp2p host. The CLI turns it on by default; off here keeps library callers'
    process trees (app + CometBFT) as they were."""
    hosts: tuple[str, ...] = ()
    """One address per node, in roster order, where it listens (p2p, RPC, metrics) and its peers dial it,
    e.g. each node's own network namespace; empty: every node on 127.0.0.1. The ABCI socket stays on
    the node's loopback."""

def _keys(roster: Roster, keyring: Keystore, passphrase: str) -> dict[str, str]:
    """Hex public key per roster name; account keys for people, meter keys for meters."""
    pubkeys = {}
    for name in [op.name for op in roster.operators] + [p.name for p in roster.participants]:
        pubkeys[name] = keyring.generate(name, passphrase, "account").pubkey
    for meter in roster.meters:
        pubkeys[meter.id] = keyring.generate(meter.id, passphrase, "meter").pubkey
    return pubkeys

def _bases(options: InitOptions, count: int) -> list[int]:
    """First port of each node's block: from --base-port on, or the standard block in every container."""
    return [cometbft.DEFAULT_BASE_PORT] * count if options.docker else block_bases(count, options.base_port)


def _peer_host(options: InitOptions, index: int) -> str:
    """Where the other nodes (and this machine, for its RPC) reach node ``index``."""
    if options.hosts:
        return options.hosts[index]
    return f"node{index}" if options.docker else "127.0.0.1"


def _network(out: Path, roster: Roster, options: InitOptions) -> LocalNetwork:
    """The validators' homes DIR/node0.. in roster order, each with its port block and listen interface."""
    members = []
    for index, (op, base) in enumerate(zip(roster.validators, _bases(options, len(roster.validators)),
                                           strict=True)):
        host = "0.0.0.0" if options.docker else _peer_host(options, index)
        members.append(Member(home=out / f"node{index}", moniker=op.name, ports=cometbft.Ports.from_base(base),
                              power=op.power, p2p_host=host, local_host=host, dial_host=_peer_host(options, index)))
    return LocalNetwork(members, options.timing)


def _chain_zones(roster: Roster) -> list[str]:
    return sorted({zone for op in roster.operators for zone in op.zones})


def _configure_p2p(out: Path, roster: Roster, options: InitOptions, names: list[str],
                   chain_id: str) -> dict[str, dict[str, Any]]:
    """Identity and p2p.toml of every home; the NodeInfo fields of each node by name."""
    identities = {name: node_host.create_identity(out / name) for name in names}
    trusted = [identity.pubkey for identity in identities.values()]
    all_zones = _chain_zones(roster)
    # The libp2p port of a home is in its port block; --docker publishes it on the host like every other.
    ports = [node_host.port_of(base) for base in _bases(options, len(names))]
    dialled = [docker_host_port(i, port) if options.docker else port for i, port in enumerate(ports)]
    fields: dict[str, dict[str, Any]] = {}
    for index, (op, name) in enumerate(zip(roster.validators, names, strict=True)):
        port = ports[index]
        bootstrap = [node_host.multiaddr(_peer_host(options, j), ports[j], identities[other].peer_id)
                     for j, other in enumerate(names) if other != name]
        zones = list(op.zones) or all_zones
        if zones:  # a chain without any zone has no feed to publish
            host = "0.0.0.0" if options.docker else "127.0.0.1"
            node_host.write_config(out / name, chain_id=chain_id, zones=zones,
                                   listen=[node_host.multiaddr(host, port)], bootstrap=bootstrap,
                                   trusted_publishers=trusted)
        fields[name] = {"p2p_peer_id": identities[name].peer_id, "p2p_pubkey": identities[name].pubkey,
                        "p2p_port": port,
                        "p2p_addr": node_host.multiaddr("127.0.0.1", dialled[index], identities[name].peer_id)}
    return fields


def init_testnet(roster: Roster, options: InitOptions) -> Testnet:
    """Create every home, key and the shared genesis; nothing is started."""
    out = options.out.resolve()
    if out.exists() and any(out.iterdir()):
        raise TestnetError(f"{out} exists and is not empty; choose a new --out (or delete it)")
    validators = roster.validators
    names = [f"node{i}" for i in range(len(validators))]
    if options.hosts and len(options.hosts) != len(validators):
        raise TestnetError(f"{len(options.hosts)} host addresses for {len(validators)} validators")
    try:
        network = _network(out, roster, options)
    except ValueError as exc:  # a port block outside the port range
        raise TestnetError(str(exc)) from None
    cometbft.binary()  # a missing CometBFT build fails before anything is written
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _populate(network, roster, options, names)
    except BaseException:
        # Half a testnet is worse than none: the next `init` would refuse the directory.
        for child in out.iterdir() if existed else [out]:
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise


def _populate(network: LocalNetwork, roster: Roster, options: InitOptions, names: list[str]) -> Testnet:
    out = options.out.resolve()
    validators = roster.validators
    network.create_homes()
    node_ids = network.node_ids()
    consensus = {op.name: key for op, key in zip(validators, network.consensus_keys(), strict=True)}
    pubkeys = _keys(roster, Keystore(out / "keyring"), TESTNET_PASSPHRASE)
    chain_id = options.chain_id or roster.chain_id
    # The app returns the operators with a consensus key from InitChain; genesis.json lists the same set.
    genesis = network.genesis(chain_id, app_state(roster, pubkeys, consensus))
    (out / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    network.write_genesis(genesis)
    network.configure()
    p2p_fields = _configure_p2p(out, roster, options, names, chain_id) if options.p2p else {}
    nodes = []
    for index, (op, member) in enumerate(zip(validators, network.members, strict=True)):
        name, ports = names[index], member.ports
        cometbft.write_node_settings(member.home, {
            "app_metrics": f"{member.local_host}:{ports.app_metrics}",
            "operator": {"name": op.name, "role": op.role, "zones": list(op.zones), "pubkey": pubkeys[op.name],
                         "key_name": op.name},
        })
        rpc_port = docker_host_port(index, ports.rpc) if options.docker else ports.rpc
        nodes.append(NodeInfo(name=name, moniker=op.name, role=op.role, power=op.power, home=name,
                              node_id=node_ids[index], consensus_pubkey=consensus[op.name], ports=ports.as_dict(),
                              rpc_url=f"http://{options.hosts[index] if options.hosts else '127.0.0.1'}:{rpc_port}",
                              **p2p_fields.get(name, {})))
    testnet = Testnet(directory=out, chain_id=chain_id, docker=options.docker, nodes=tuple(nodes))
    testnet.save()
    return testnet


def docker_host_port(index: int, container_port: int) -> int:
    """The host port docker-compose.yml publishes node ``index``'s ``container_port`` on (loopback only)."""
    return container_port + cometbft.PORT_STRIDE * index
