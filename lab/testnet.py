"""A local multi-validator testnet: roster file -> node homes -> supervised processes.

Layout of a testnet directory (``gridledger testnet init --out DIR``)::

    DIR/testnet.json        what `up`, `down`, `status`, `logs` need (nodes, ports, chain id)
    DIR/genesis.json        the shared genesis (a copy of every home's config/genesis.json)
    DIR/keyring/            encrypted account and meter keys of operators and demo participants
    DIR/node0 .. nodeN-1/   one CometBFT home per validator operator, in roster order
    DIR/nodeK/node.log      output of `gridledger node start` (while up)
    DIR/nodeK/node.pid      the supervisor's pid and start time (while up)

Keys guard a throw-away chain: they are encrypted under the publicly known
passphrase ``testnet`` (TESTNET_PASSPHRASE). Validator and CometBFT node keys
are CometBFT's own (``cometbft init``), unencrypted in each home as usual.

With ``p2p`` (the CLI's default) every home also gets a libp2p host
(``DIR/nodeK/p2p.toml``, ``p2p_identity.key``): listen port = base + 4 of its
port block, zones = its DSO zones (an LPD: every zone of the chain),
bootstrap = the other validators, trusted publishers = every validator's key.
``gridledger node start`` runs it as a third child.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from abci_app.ledger.msg import NAME_PATTERN
from node import cometbft
from node.client.keystore import NAME_PATTERN as KEY_NAME_PATTERN
from node.client.keystore import Keystore
from node.p2p import node_host
from node.p2p.control import ControlClient, ControlError, socket_path
from node.rpc import CometRpc, NodeUnreachable, RpcError

TESTNET_PASSPHRASE = "testnet"
METADATA = "testnet.json"
OPERATOR_ROLES = ("dso", "lpd")
PARTICIPANT_ROLES = ("consumer", "prosumer", "producer")
# In a --docker testnet every node runs in its own container with the standard ports.
DOCKER_IMAGE_HOME = "/data"
DOCKER_PORTS = cometbft.Ports.from_base(cometbft.DEFAULT_BASE_PORT)
# Where docker-compose.yml expects the homes (relative to the repository root).
DOCKER_OUT = Path(".gridledger/testnet-docker")
DEFAULT_OUT = Path(".gridledger/testnet")


class TestnetError(Exception):
    """A user-facing problem with a roster, a testnet directory or its nodes."""


class NetworkUnhealthy(Exception):
    """A node did not start or does not answer, or the nodes' apps disagree on the state."""


# --- roster ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorSpec:
    name: str
    role: str
    zones: tuple[str, ...]
    power: int
    balance: int
    validator: bool
    """False: an operator without a node at genesis (it may join later by governance)."""


@dataclass(frozen=True)
class ParticipantSpec:
    name: str
    role: str
    zone: str
    balance: int


@dataclass(frozen=True)
class MeterSpec:
    id: str
    owner: str
    import_capacity_w: int
    export_capacity_w: int
    import_register_wh: int = 0
    export_register_wh: int = 0


@dataclass(frozen=True)
class Roster:
    chain_id: str
    params: dict[str, Any]
    operators: tuple[OperatorSpec, ...]
    participants: tuple[ParticipantSpec, ...]
    meters: tuple[MeterSpec, ...]
    grid_fees: tuple[dict[str, Any], ...]

    @property
    def validators(self) -> tuple[OperatorSpec, ...]:
        return tuple(op for op in self.operators if op.validator)

    def dso_of_zone(self, zone: str) -> str | None:
        return next((op.name for op in self.operators if op.role == "dso" and zone in op.zones), None)


def _require(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in entry:
        raise TestnetError(f"roster: {where} needs {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TestnetError(f"roster: {where}: {key} must be {kind.__name__}, not {value!r}")
    return value


def _optional(entry: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    return _require(entry, key, kind, where) if key in entry else default


def _key_name(name: str, where: str) -> str:
    """Roster names double as keyring names, so they follow the stricter key-name rule."""
    if KEY_NAME_PATTERN.fullmatch(name) is None:
        raise TestnetError(f"roster: {where}: name {name!r} must be 1-64 of a-z 0-9 . _ - (it names a key)")
    return name


def _operator(entry: dict[str, Any], index: int) -> OperatorSpec:
    where = f"operators[{index}]"
    name = _key_name(_require(entry, "name", str, where), where)
    role = _require(entry, "role", str, where)
    if role not in OPERATOR_ROLES:
        raise TestnetError(f"roster: operator {name}: role must be dso or lpd, not {role!r}")
    zones = tuple(_optional(entry, "zones", list, [], where))
    if role == "dso" and not zones:
        raise TestnetError(f"roster: DSO {name} serves no zones")
    if role == "lpd" and zones:
        raise TestnetError(f"roster: LPD {name} cannot serve zones")
    for zone in zones:
        if not isinstance(zone, str) or NAME_PATTERN.fullmatch(zone) is None:
            raise TestnetError(f"roster: operator {name}: bad zone {zone!r}")
    power = _optional(entry, "power", int, 10, where)
    if power < 1:
        raise TestnetError(f"roster: operator {name}: power must be at least 1")
    return OperatorSpec(name=name, role=role, zones=zones, power=power,
                        balance=_optional(entry, "balance", int, 0, where),
                        validator=_optional(entry, "validator", bool, True, where))


def _participant(entry: dict[str, Any], index: int) -> ParticipantSpec:
    where = f"participants[{index}]"
    name = _key_name(_require(entry, "name", str, where), where)
    role = _require(entry, "role", str, where)
    if role not in PARTICIPANT_ROLES:
        raise TestnetError(f"roster: participant {name}: role must be one of {', '.join(PARTICIPANT_ROLES)}")
    return ParticipantSpec(name=name, role=role, zone=_require(entry, "zone", str, where),
                           balance=_optional(entry, "balance", int, 0, where))


def _meter(entry: dict[str, Any], index: int) -> MeterSpec:
    where = f"meters[{index}]"
    return MeterSpec(
        id=_key_name(_require(entry, "id", str, where), where), owner=_require(entry, "owner", str, where),
        import_capacity_w=_optional(entry, "import_capacity_w", int, 0, where),
        export_capacity_w=_optional(entry, "export_capacity_w", int, 0, where),
        import_register_wh=_optional(entry, "import_register_wh", int, 0, where),
        export_register_wh=_optional(entry, "export_register_wh", int, 0, where),
    )


def parse_roster(doc: dict[str, Any]) -> Roster:
    """Check a roster's structure and cross-references; every problem names its entry."""
    known = {"chain_id", "params", "operators", "participants", "meters", "grid_fees"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise TestnetError(f"roster: unknown keys {unknown} (known: {', '.join(sorted(known))})")
    chain_id = _require(doc, "chain_id", str, "the roster")
    operators = tuple(_operator(e, i) for i, e in enumerate(doc.get("operators", [])))
    participants = tuple(_participant(e, i) for i, e in enumerate(doc.get("participants", [])))
    meters = tuple(_meter(e, i) for i, e in enumerate(doc.get("meters", [])))
    roster = Roster(chain_id=chain_id, params=dict(doc.get("params", {})), operators=operators,
                    participants=participants, meters=meters, grid_fees=tuple(doc.get("grid_fees", [])))
    _check_references(roster)
    return roster


def _check_references(roster: Roster) -> None:
    if not roster.validators:
        raise TestnetError("roster: no operator runs a validator (validator = true)")
    names = [op.name for op in roster.operators] + [p.name for p in roster.participants] + \
        [m.id for m in roster.meters]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TestnetError(f"roster: names used twice (they name keys): {duplicates}")
    for participant in roster.participants:
        if roster.dso_of_zone(participant.zone) is None:
            raise TestnetError(f"roster: participant {participant.name}: no DSO serves zone {participant.zone!r}")
    participant_names = {p.name for p in roster.participants}
    for meter in roster.meters:
        if meter.owner not in participant_names:
            raise TestnetError(f"roster: meter {meter.id}: owner {meter.owner!r} is not a participant")
    operator_names = {op.name for op in roster.operators}
    for fee in roster.grid_fees:
        if fee.get("dso") not in operator_names:
            raise TestnetError(f"roster: grid fee {fee}: dso must name an operator")


def load_roster(path: Path) -> Roster:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TestnetError(f"roster {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise TestnetError(f"roster {path} is not valid TOML: {exc}") from None
    return parse_roster(doc)


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


@dataclass(frozen=True)
class NodeInfo:
    """One node of a testnet, as recorded in testnet.json."""

    name: str
    moniker: str
    role: str
    power: int
    home: str
    """Relative to the testnet directory."""
    node_id: str
    consensus_pubkey: str
    ports: dict[str, int]
    rpc_url: str
    """Where this machine reaches the node's RPC (a published port for --docker)."""
    p2p_peer_id: str = ""
    """The libp2p host's peer id; empty when the node runs none."""
    p2p_pubkey: str = ""
    """Hex public key that signs this node's feed snapshots."""
    p2p_port: int = 0
    """The libp2p listen port inside the node's home (in its container for --docker)."""
    p2p_addr: str = ""
    """The multiaddr this machine dials to reach the host (a published port for --docker)."""


@dataclass(frozen=True)
class Testnet:
    directory: Path
    chain_id: str
    docker: bool
    nodes: tuple[NodeInfo, ...]

    def home(self, node: NodeInfo) -> Path:
        return self.directory / node.home

    @property
    def keyring(self) -> Path:
        return self.directory / "keyring"

    def select(self, names: Sequence[str] | None) -> list[NodeInfo]:
        """Nodes by name (node0) or moniker (dso-north); all when ``names`` is empty."""
        if not names:
            return list(self.nodes)
        chosen = []
        for name in names:
            node = next((n for n in self.nodes if name in (n.name, n.moniker)), None)
            if node is None:
                known = ", ".join(f"{n.name} ({n.moniker})" for n in self.nodes)
                raise TestnetError(f"no node {name!r} in {self.directory}; nodes: {known}")
            chosen.append(node)
        return chosen

    def save(self) -> None:
        doc = {"chain_id": self.chain_id, "docker": self.docker, "keyring": "keyring",
               "passphrase": TESTNET_PASSPHRASE, "nodes": [asdict(node) for node in self.nodes]}
        (self.directory / METADATA).write_text(json.dumps(doc, indent=2) + "\n")


def load_testnet(directory: Path) -> Testnet:
    path = directory / METADATA
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise TestnetError(f"{directory} is not a testnet directory (no {METADATA}; run `testnet init`)") from None
    return Testnet(directory=directory.resolve(), chain_id=doc["chain_id"], docker=doc["docker"],
                   nodes=tuple(NodeInfo(**node) for node in doc["nodes"]))


def _keys(roster: Roster, keyring: Keystore, passphrase: str) -> dict[str, str]:
    """Hex public key per roster name; account keys for people, meter keys for meters."""
    pubkeys = {}
    for name in [op.name for op in roster.operators] + [p.name for p in roster.participants]:
        pubkeys[name] = keyring.generate(name, passphrase, "account").pubkey
    for meter in roster.meters:
        pubkeys[meter.id] = keyring.generate(meter.id, passphrase, "meter").pubkey
    return pubkeys


def app_state(roster: Roster, pubkeys: dict[str, str], consensus_keys: dict[str, str]) -> dict[str, Any]:
    """The genesis app_state (docs/genesis.md) of a roster with generated keys."""
    operators = []
    for op in roster.operators:
        entry: dict[str, Any] = {"name": op.name, "role": op.role, "pubkey": pubkeys[op.name],
                                 "zones": list(op.zones), "power": op.power, "balance": op.balance}
        if op.name in consensus_keys:
            entry["consensus_pubkey"] = consensus_keys[op.name]
        operators.append(entry)
    state: dict[str, Any] = {
        "params": dict(roster.params),
        "operators": operators,
        "participants": [{"pubkey": pubkeys[p.name], "role": p.role, "zone": p.zone,
                          "dso": roster.dso_of_zone(p.zone), "balance": p.balance} for p in roster.participants],
        "meters": [{"id": m.id, "pubkey": pubkeys[m.id], "owner_pubkey": pubkeys[m.owner],
                    "import_capacity_w": m.import_capacity_w, "export_capacity_w": m.export_capacity_w,
                    "import_register_wh": m.import_register_wh, "export_register_wh": m.export_register_wh}
                   for m in roster.meters],
    }
    if roster.grid_fees:
        state["grid_fees"] = [dict(fee) for fee in roster.grid_fees]
    return state


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


# --- processes -------------------------------------------------------------------------


def pid_file(testnet: Testnet, node: NodeInfo) -> Path:
    return testnet.home(node) / "node.pid"


def log_file(testnet: Testnet, node: NodeInfo) -> Path:
    return testnet.home(node) / "node.log"


def _is_our_supervisor(proc: psutil.Process, home: Path) -> bool:
    """Guards against a recycled pid: the process must be `node start` of this very home."""
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "node" in cmdline and "start" in cmdline and str(home) in cmdline


def running_supervisor(testnet: Testnet, node: NodeInfo) -> psutil.Process | None:
    """The live supervisor of a node, if its pid file names one."""
    path = pid_file(testnet, node)
    try:
        record = json.loads(path.read_text())
        proc = psutil.Process(int(record["pid"]))
        if abs(proc.create_time() - float(record["started"])) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (FileNotFoundError, ValueError, KeyError, psutil.NoSuchProcess):
        return None
    return proc if _is_our_supervisor(proc, testnet.home(node)) else None


def start_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)]


def start_node(testnet: Testnet, node: NodeInfo) -> psutil.Process:
    """Start `gridledger node start` detached (own session), output appended to node.log."""
    home = testnet.home(node)
    with open(log_file(testnet, node), "ab") as log:
        proc = subprocess.Popen(start_command(home), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    handle = psutil.Process(proc.pid)
    pid_file(testnet, node).write_text(json.dumps({"pid": proc.pid, "started": handle.create_time()}) + "\n")
    return handle


def p2p_status(testnet: Testnet, node: NodeInfo, timeout: float = 2.0) -> dict[str, Any] | None:
    """The running libp2p host's status from its control socket; None if none answers."""
    try:
        return ControlClient(socket_path(testnet.home(node)), timeout=timeout).request("status")
    except (ControlError, OSError, ValueError):
        return None


def wait_p2p(testnet: Testnet, node: NodeInfo, proc: psutil.Process, deadline: float) -> str | None:
    """Poll until the node's p2p host answers on its control socket (no event to wait on)."""
    while p2p_status(testnet, node) is None:
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            return "exited while starting (see its node.log)"
        if time.monotonic() > deadline:
            return "p2p host not answering yet (see its node.log)"
        time.sleep(0.2)
    return None


def wait_rpc(node: NodeInfo, proc: psutil.Process, deadline: float) -> str | None:
    """Poll until the node's RPC answers; the problem text if it died or the deadline passed."""
    rpc = CometRpc(node.rpc_url, timeout=2.0)
    try:
        while True:
            try:
                rpc.status()
                return None
            except (NodeUnreachable, RpcError):
                pass
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return "exited while starting (see its node.log)"
            if time.monotonic() > deadline:
                return "RPC not answering yet (see its node.log)"
            time.sleep(0.2)
    finally:
        rpc.close()


def up(testnet: Testnet, nodes: Sequence[NodeInfo], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Start the nodes not yet running and wait for their RPC; one result record per node."""
    if testnet.docker:
        raise TestnetError(f"{testnet.directory} was made with --docker: start it with `docker compose up`")
    started: list[tuple[NodeInfo, psutil.Process]] = []
    results: dict[str, dict[str, Any]] = {}
    for node in nodes:
        running = running_supervisor(testnet, node)
        if running is not None:
            results[node.name] = {"node": node.name, "moniker": node.moniker, "pid": running.pid,
                                  "rpc": node.rpc_url, "state": "already running"}
            continue
        started.append((node, start_node(testnet, node)))
    deadline = time.monotonic() + timeout
    for node, proc in started:
        problem = wait_rpc(node, proc, deadline)
        if problem is None and node_host.enabled(testnet.home(node)):
            problem = wait_p2p(testnet, node, proc, deadline)
        results[node.name] = {"node": node.name, "moniker": node.moniker, "pid": proc.pid, "rpc": node.rpc_url,
                              "state": problem or "started"}
    return [results[node.name] for node in nodes]


def process_tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [proc]


def down(testnet: Testnet, nodes: Sequence[NodeInfo], grace: float = 30.0) -> list[dict[str, Any]]:
    """SIGTERM each supervisor (it stops CometBFT, then the app); SIGKILL whatever outlives ``grace``."""
    targets: list[tuple[NodeInfo, list[psutil.Process]]] = []
    results: dict[str, dict[str, Any]] = {}
    for node in nodes:
        proc = running_supervisor(testnet, node)
        if proc is None:
            results[node.name] = {"node": node.name, "moniker": node.moniker, "state": "not running"}
            pid_file(testnet, node).unlink(missing_ok=True)
            continue
        tree = process_tree(proc)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
        targets.append((node, tree))
    everything = [p for _, tree in targets for p in tree]
    _, alive = psutil.wait_procs(everything, timeout=grace)
    for straggler in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            straggler.kill()
    psutil.wait_procs(alive, timeout=10)
    killed = {p.pid for p in alive}
    for node, tree in targets:
        forced = any(p.pid in killed for p in tree)
        results[node.name] = {"node": node.name, "moniker": node.moniker, "pid": tree[0].pid,
                              "state": "killed after the grace period" if forced else "stopped"}
        pid_file(testnet, node).unlink(missing_ok=True)
    return [results[node.name] for node in nodes]


# --- status ----------------------------------------------------------------------------


def node_report(testnet: Testnet, node: NodeInfo) -> dict[str, Any]:
    """What one node says about itself (``reachable`` False if its RPC does not answer)."""
    proc = running_supervisor(testnet, node)
    report: dict[str, Any] = {"node": node.name, "moniker": node.moniker, "pid": proc.pid if proc else None,
                              "rpc": node.rpc_url, "reachable": False, "height": None, "app_hash": None,
                              "catching_up": None, "peers": None, "validator": None, "voting_power": None,
                              **p2p_report(testnet, node)}
    rpc = CometRpc(node.rpc_url, timeout=3.0)
    try:
        status = rpc.status()
        peers = int(rpc.call("net_info")["n_peers"])
    except (NodeUnreachable, RpcError):
        return report
    finally:
        rpc.close()
    sync = status["sync_info"]
    power = int(status["validator_info"]["voting_power"])
    report.update(reachable=True, height=int(sync["latest_block_height"]), app_hash=sync["latest_app_hash"],
                  catching_up=bool(sync["catching_up"]), peers=peers, validator=power > 0, voting_power=power)
    return report


def p2p_report(testnet: Testnet, node: NodeInfo) -> dict[str, Any]:
    """The node's libp2p identity and port, and how many peers its running host has (None: not answering)."""
    if not node.p2p_peer_id:
        return {"p2p_peer_id": None, "p2p_port": None, "p2p_peers": None}
    status = p2p_status(testnet, node) if not testnet.docker else None
    return {"p2p_peer_id": node.p2p_peer_id, "p2p_port": int(node.p2p_addr.split("/tcp/")[1].split("/")[0]),
            "p2p_peers": len(status["peers"]) if status else None}


def p2p_peers(testnet: Testnet) -> dict[str, Any]:
    """What a participant needs to join the testnet's p2p network: bootstrap addresses, publisher keys."""
    hosts = [node for node in testnet.nodes if node.p2p_peer_id]
    return {
        "chain_id": testnet.chain_id,
        "bootstrap": [node.p2p_addr for node in hosts],
        "trusted_publishers": [node.p2p_pubkey for node in hosts],
        "nodes": [{"node": node.name, "moniker": node.moniker,
                   "zones": node_host.read_config(testnet.home(node)).get("zones", []),
                   "peer_id": node.p2p_peer_id, "addr": node.p2p_addr, "publisher": node.p2p_pubkey}
                  for node in hosts],
    }


def app_hash_at(node: NodeInfo, height: int, report: dict[str, Any]) -> str | None:
    """The app hash in a node's header of block ``height`` (what /status shows at that height).

    It is the state after block ``height - 1``: CometBFT accepts block
    ``height`` only if that hash equals its own app's result, so equal hashes
    mean every app computed the same state.
    """
    if report["height"] == height:
        return str(report["app_hash"])
    rpc = CometRpc(node.rpc_url, timeout=3.0)
    try:
        header = rpc.call("block", height=str(height))["block"]["header"]
        return str(header["app_hash"])
    except (NodeUnreachable, RpcError):
        return None
    finally:
        rpc.close()


def agreement(testnet: Testnet, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Do all reachable nodes agree on the app hash at the lowest height among them?"""
    reachable = [r for r in reports if r["reachable"]]
    if not reachable:
        return {"compared_height": None, "app_hash": None, "agree": None, "nodes_compared": 0}
    height = min(r["height"] for r in reachable)
    by_name = {n.name: n for n in testnet.nodes}
    hashes = {r["node"]: app_hash_at(by_name[r["node"]], height, r) for r in reachable}
    distinct = sorted({h for h in hashes.values() if h is not None})
    agree = len(distinct) == 1 and None not in hashes.values()
    return {"compared_height": height, "app_hash": distinct[0] if agree else None, "agree": agree,
            "nodes_compared": len(hashes), "hashes": hashes}


# --- logs ------------------------------------------------------------------------------


def tail_lines(path: Path, count: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        # CometBFT lines run to a few hundred bytes; read generously, then cut.
        handle.seek(max(0, size - max(64 * 1024, 1024 * count)))
        lines = handle.read().decode("utf-8", "replace").splitlines()
    return lines[-count:] if count else []


def follow(paths: dict[str, Path], stop_after: float | None = None) -> Iterator[tuple[str, str]]:
    """Yield (node, line) for lines appended to the logs from now on (a file has no event to wait on: poll)."""
    offsets = {name: (path.stat().st_size if path.exists() else 0) for name, path in paths.items()}
    return _follow(paths, offsets, stop_after)


def _follow(paths: dict[str, Path], offsets: dict[str, int], stop_after: float | None) -> Iterator[tuple[str, str]]:
    partial = dict.fromkeys(paths, "")
    deadline = None if stop_after is None else time.monotonic() + stop_after
    while deadline is None or time.monotonic() < deadline:
        grew = False
        for name, path in paths.items():
            if not path.exists():
                continue
            if path.stat().st_size < offsets[name]:
                offsets[name] = 0  # truncated or replaced
            with path.open("rb") as handle:
                handle.seek(offsets[name])
                chunk = handle.read()
            if not chunk:
                continue
            grew = True
            offsets[name] += len(chunk)
            text = partial[name] + chunk.decode("utf-8", "replace")
            *complete, partial[name] = text.split("\n")
            for line in complete:
                yield name, line
        if not grew:
            time.sleep(0.25)
