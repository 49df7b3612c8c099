"""`testnet init`: every home, key and the shared genesis of a roster's validators; nothing is started."""

from __future__ import annotations

import json
import random
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.testnet.model import TESTNET_PASSPHRASE, NodeInfo, Testnet, TestnetError
from lab.testnet.roster import Roster, app_state
from node import cometbft
from node.client.keystore import Keystore
from node.p2p import node_host

# --- init ------------------------------------------------------------------------------


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

def _node_base(options: InitOptions, index: int) -> int:
    """First port of node ``index``'s block (every container has the standard block)."""
    return cometbft.DEFAULT_BASE_PORT if options.docker else options.base_port + cometbft.PORT_STRIDE * index


def _node_ports(options: InitOptions, index: int) -> cometbft.Ports:
    return cometbft.Ports.from_base(_node_base(options, index))


def _peer_host(options: InitOptions, name: str) -> str:
    if options.hosts:
        return options.hosts[int(name.removeprefix("node"))]
    return name if options.docker else "127.0.0.1"


def _chain_zones(roster: Roster) -> list[str]:
    return sorted({zone for op in roster.operators for zone in op.zones})


def _p2p_ports(options: InitOptions, index: int) -> tuple[int, int]:
    """(listen port of the home, port this machine dials): equal, except for a published --docker port."""
    port = node_host.port_of(_node_base(options, index))
    return port, (docker_host_port(index, port) if options.docker else port)


def _configure_p2p(out: Path, roster: Roster, options: InitOptions, names: list[str],
                   chain_id: str) -> dict[str, dict[str, Any]]:
    """Identity and p2p.toml of every home; the NodeInfo fields of each node by name."""
    identities = {name: node_host.create_identity(out / name) for name in names}
    trusted = [identity.pubkey for identity in identities.values()]
    all_zones = _chain_zones(roster)
    fields: dict[str, dict[str, Any]] = {}
    for index, (op, name) in enumerate(zip(roster.validators, names, strict=True)):
        port, dialled = _p2p_ports(options, index)
        bootstrap = [node_host.multiaddr(_peer_host(options, other), _p2p_ports(options, j)[0],
                                         identities[other].peer_id)
                     for j, other in enumerate(names) if other != name]
        zones = list(op.zones) or all_zones
        if zones:  # a chain without any zone has no feed to publish
            host = "0.0.0.0" if options.docker else "127.0.0.1"
            node_host.write_config(out / name, chain_id=chain_id, zones=zones,
                                   listen=[node_host.multiaddr(host, port)], bootstrap=bootstrap,
                                   trusted_publishers=trusted)
        fields[name] = {"p2p_peer_id": identities[name].peer_id, "p2p_pubkey": identities[name].pubkey,
                        "p2p_port": port,
                        "p2p_addr": node_host.multiaddr("127.0.0.1", dialled, identities[name].peer_id)}
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
        for i, _ in enumerate(validators):
            _node_ports(options, i)
    except ValueError as exc:
        raise TestnetError(str(exc)) from None
    cometbft.binary()  # a missing CometBFT build fails before anything is written
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _populate(out, roster, options, names)
    except BaseException:
        # Half a testnet is worse than none: the next `init` would refuse the directory.
        for child in out.iterdir() if existed else [out]:
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise


def _populate(out: Path, roster: Roster, options: InitOptions, names: list[str]) -> Testnet:
    validators = roster.validators
    for name in names:
        cometbft.init_home(out / name)
    node_ids = {name: cometbft.node_id_from_key(out / name) for name in names}
    consensus = {op.name: cometbft.validator_pubkey(out / name) for op, name in zip(validators, names, strict=True)}
    pubkeys = _keys(roster, Keystore(out / "keyring"), TESTNET_PASSPHRASE)
    chain_id = options.chain_id or roster.chain_id
    genesis = _genesis(out / names[0], chain_id, roster, app_state(roster, pubkeys, consensus), consensus)
    (out / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    p2p_fields = _configure_p2p(out, roster, options, names, chain_id) if options.p2p else {}
    nodes = []
    for index, (op, name) in enumerate(zip(validators, names, strict=True)):
        ports = _node_ports(options, index)
        peers = tuple(f"{node_ids[other]}@{_peer_host(options, other)}:{_node_ports(options, j).p2p}"
                      for j, other in enumerate(names) if other != name)
        host = "0.0.0.0" if options.docker else _peer_host(options, name)
        network = cometbft.Network(ports=ports, p2p_host=host, local_host=host, peers=peers, same_host_peers=True)
        home = out / name
        cometbft.write_genesis(home, genesis)
        cometbft.configure(home, cometbft.network_settings(network, op.name, options.timing))
        cometbft.write_node_settings(home, {
            "app_metrics": f"{host}:{ports.app_metrics}",
            "operator": {"name": op.name, "role": op.role, "zones": list(op.zones), "pubkey": pubkeys[op.name],
                         "key_name": op.name},
        })
        rpc_port = docker_host_port(index, ports.rpc) if options.docker else ports.rpc
        nodes.append(NodeInfo(name=name, moniker=op.name, role=op.role, power=op.power, home=name,
                              node_id=node_ids[name], consensus_pubkey=consensus[op.name], ports=ports.as_dict(),
                              rpc_url=f"http://{options.hosts[index] if options.hosts else '127.0.0.1'}:{rpc_port}",
                              **p2p_fields.get(name, {})))
    testnet = Testnet(directory=out, chain_id=chain_id, docker=options.docker, nodes=tuple(nodes))
    testnet.save()
    return testnet


def free_base_port(nodes: int, low: int = 20000, high: int = 32000) -> int:
    """A base port whose whole block (``nodes`` x PORT_STRIDE ports) is free on loopback right now.

    The default range stays below Linux's ephemeral ports (32768+), which
    outgoing connections could take between this check and the nodes' start.
    """
    rng = random.Random()
    span = nodes * cometbft.PORT_STRIDE
    for _ in range(200):
        base = rng.randrange(low, high - span, cometbft.PORT_STRIDE)
        if all(_port_free(port) for port in range(base, base + span)):
            return base
    raise TestnetError(f"no free block of {span} ports found between {low} and {high}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def docker_host_port(index: int, container_port: int) -> int:
    """The host port docker-compose.yml publishes node ``index``'s ``container_port`` on (loopback only)."""
    return container_port + cometbft.PORT_STRIDE * index


def _genesis(template_home: Path, chain_id: str, roster: Roster, state: dict[str, Any],
             consensus: dict[str, str]) -> dict[str, Any]:
    """CometBFT genesis: one home's consensus params and time, our validators and app_state."""
    genesis = cometbft.read_genesis(template_home)
    genesis["chain_id"] = chain_id
    # The app returns the operators with a consensus key from InitChain; genesis.json must list the same set.
    genesis["validators"] = [cometbft.genesis_validator(consensus[op.name], op.power, op.name)
                             for op in roster.validators]
    genesis["app_state"] = state
    return genesis
