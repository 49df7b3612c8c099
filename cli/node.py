"""`gridledger node ...`: set up, run and inspect one validator node.

A node home is a CometBFT home (config/, data/) plus ``config/gridledger.toml``
(the operator this node belongs to, the app's metrics address). The ABCI app
keeps its state in ``data/app``. With ``p2p.toml`` and ``p2p_identity.key``
the node also runs its libp2p host (offers, market feed; docs/p2p.md).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from abci_app.ledger.crypto import account_id
from abci_app.ledger.msg import NAME_PATTERN
from abci_app.ledger.snapshots import DEFAULT_INTERVAL, DEFAULT_KEEP
from cli.options import (
    DEFAULT_KEYRING,
    DEFAULT_NODE,
    KeyringDirOpt,
    NodeOpt,
    OutputOpt,
    PassphraseFileOpt,
    read_passphrase,
)
from cli.output import Format, Output, UsageError, note
from node import cometbft, supervisor
from node.client import lightclient
from node.client.chain import NodeClient
from node.client.keystore import Keystore, validate_name
from node.p2p import node_host
from node.rpc import CometRpc, NodeUnreachable, RpcError

node_app = typer.Typer(help="Run a validator node (CometBFT + the gridledger ABCI app).", no_args_is_help=True)

DEFAULT_CHAIN_ID = "gridledger-1"


class Role(StrEnum):
    dso = "dso"
    lpd = "lpd"


HomeOpt = Annotated[Path, typer.Option("--home", help="Node home directory (CometBFT home).")]


# --- init ------------------------------------------------------------------------------


def _zones(text: str, role: Role) -> list[str]:
    zones = [zone.strip() for zone in text.split(",") if zone.strip()]
    for zone in zones:
        if NAME_PATTERN.fullmatch(zone) is None:
            raise UsageError(f"zone {zone!r} is not a valid name (1-64 of A-Z a-z 0-9 . _ : -)")
    if role is Role.dso and not zones:
        raise UsageError("a DSO serves at least one zone: add --zones z1,z2")
    if role is Role.lpd and zones:
        raise UsageError("an LPD serves no zones: drop --zones")
    return sorted(set(zones))


def _operator_key(keyring_dir: Path, name: str, passphrase_file: Path | None) -> str:
    """Hex public key of the operator's account key, created in the keyring unless it exists."""
    store = Keystore(keyring_dir.expanduser())
    if store.exists(validate_name(name)):
        note(f"using the existing key {name!r} of {store.directory}")
        return store.show(name).pubkey
    passphrase = read_passphrase(passphrase_file, prompt=f"New passphrase for operator key {name!r}", confirm=True)
    return store.generate(name, passphrase, "account").pubkey


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _p2p_zones(home: Path, role: Role, zones: list[str], chosen: list[str] | None) -> list[str]:
    """Zones the host publishes: --p2p-zone, else a DSO's own zones, else (LPD) every zone of the genesis."""
    if chosen:
        return sorted(set(chosen))
    if role is Role.dso:
        return zones
    operators = cometbft.read_genesis(home).get("app_state", {}).get("operators", [])
    return sorted({zone for op in operators for zone in op.get("zones", [])})


def _check_p2p_options(zones: list[str], trusted: list[str]) -> None:
    """Before anything is written: a bad option must not leave half a home."""
    for zone in zones:
        if NAME_PATTERN.fullmatch(zone) is None:
            raise UsageError(f"--p2p-zone {zone!r} is not a valid zone name")
    for key in trusted:
        if len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key):
            raise UsageError(f"--p2p-trust-publisher {key!r} is not a 64-hex public key")


def _setup_p2p(home: Path, *, chain_id: str, zones: list[str], listen: str, bootstrap: list[str],
               trusted: list[str]) -> node_host.Identity | None:
    """Identity and p2p.toml of the node's libp2p host; None (with a note) when there is no zone to serve."""
    if not zones:
        note("no zones to publish a feed for (an LPD on a chain without zones): the node runs no libp2p host; "
             "add --p2p-zone to run one")
        return None
    identity = node_host.create_identity(home)
    node_host.write_config(home, chain_id=chain_id, zones=zones, listen=[listen], bootstrap=bootstrap,
                           trusted_publishers=[identity.pubkey, *(k.lower() for k in trusted)])
    return identity


def _own_genesis(home: Path, chain_id: str, operator: dict[str, Any]) -> None:
    """A one-operator genesis: this node is the only validator of a new chain."""
    genesis = cometbft.read_genesis(home)
    genesis["chain_id"] = chain_id
    genesis["validators"] = [cometbft.genesis_validator(operator["consensus_pubkey"], operator["power"],
                                                        operator["name"])]
    genesis["app_state"] = {"operators": [operator]}
    cometbft.write_genesis(home, genesis)


@node_app.command("init")
def init(
    home: HomeOpt,
    moniker: Annotated[str, typer.Option(help="Operator / node name, e.g. dso-north (also the genesis name).")],
    role: Annotated[Role, typer.Option(help="dso (grid operator) or lpd (liquidity provider).")],
    zones: Annotated[str, typer.Option(help="DSO only: comma-separated zones served, e.g. north-1,north-2.")] = "",
    power: Annotated[int, typer.Option(min=1, help="Voting power (governance and, as a validator, consensus).")]
    = 10,
    chain_id: Annotated[str, typer.Option(help="Chain id of a new one-operator chain (ignored with --genesis).")]
    = DEFAULT_CHAIN_ID,
    genesis: Annotated[Path | None, typer.Option(
        help="genesis.json of the network to join (else: a new chain with this node as its only validator).")]
    = None,
    peers: Annotated[str, typer.Option(help="persistent_peers: comma-separated NODE_ID@HOST:PORT.")] = "",
    base_port: Annotated[int, typer.Option(
        help="Port block: metrics +5, p2p +6, RPC +7, ABCI +8, CometBFT metrics +9.")] = cometbft.DEFAULT_BASE_PORT,
    p2p_host: Annotated[str, typer.Option(help="Interface the p2p port listens on (peers connect here).")]
    = "0.0.0.0",
    rpc_host: Annotated[str, typer.Option(help="Interface of the RPC and metrics ports (keep it private).")]
    = "127.0.0.1",
    timeout_commit: Annotated[str, typer.Option(help="CometBFT consensus.timeout_commit.")] = "1s",
    libp2p: Annotated[bool, typer.Option(
        "--libp2p/--no-libp2p", help="Run the libp2p host (direct offers, market feed) with the node.")] = True,
    p2p_listen: Annotated[str | None, typer.Option(
        help="Multiaddr of the libp2p host (default /ip4/<p2p-host>/tcp/<base-port + 4>).")] = None,
    p2p_zone: Annotated[list[str] | None, typer.Option(
        help="Zone whose feed the host publishes (repeat; default: the DSO's zones, an LPD's: all of the chain).")]
    = None,
    p2p_bootstrap: Annotated[list[str] | None, typer.Option(
        help="Other validators' libp2p hosts: /ip4/A/tcp/P/p2p/PEERID (repeat).")] = None,
    p2p_trust_publisher: Annotated[list[str] | None, typer.Option(
        help="Another validator's feed publisher key, 64 hex (repeat; this node's own is always trusted).")]
    = None,
    state_sync: Annotated[bool, typer.Option(
        "--state-sync/--no-state-sync", help="Join by restoring a recent snapshot instead of replaying every block "
        "(needs --genesis, --peers and --state-sync-rpc).")] = False,
    state_sync_rpc: Annotated[list[str] | None, typer.Option(
        help="RPC URL of a node you trust (repeat: a primary and witnesses); the latest block there becomes the "
             "trusted height and hash.")] = None,
    trust_period: Annotated[str, typer.Option(help="With --state-sync: how long the trusted header is trusted.")]
    = "168h0m0s",
    key_name: Annotated[str | None, typer.Option(help="Keyring name of the operator's account key (default: "
                                                      "the moniker).")] = None,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    passphrase_file: PassphraseFileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Create a validator home (CometBFT keys and config) and the operator's account key.

    Prints what other operators need to add this node by governance: the node id,
    the consensus public key and the operator's account.

    Example: gridledger node init --home ~/.gridledger/node --moniker dso-east --role dso --zones east-1
    """
    if NAME_PATTERN.fullmatch(moniker) is None:
        raise UsageError(f"moniker {moniker!r} is not a valid name (1-64 of A-Z a-z 0-9 . _ : -)")
    zone_list = _zones(zones, role)
    _check_p2p_options(p2p_zone or [], p2p_trust_publisher or [])
    home = home.expanduser().resolve()
    if (home / "config" / "genesis.json").exists():
        raise UsageError(f"{home} is already a node home; choose another --home")
    if genesis is not None and not genesis.is_file():
        raise UsageError(f"genesis file {genesis} not found")
    try:
        ports = cometbft.Ports.from_base(base_port)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    statesync = _statesync(genesis, state_sync_rpc or [], trust_period) if state_sync else {}
    pubkey = _operator_key(keyring_dir, key_name or moniker.lower(), passphrase_file)
    cometbft.init_home(home)
    network = cometbft.Network(ports=ports, p2p_host=p2p_host, local_host=rpc_host,
                               peers=tuple(p.strip() for p in peers.split(",") if p.strip()),
                               same_host_peers=_is_loopback(p2p_host))
    cometbft.configure(home, {**cometbft.network_settings(network, moniker, cometbft.Timing(timeout_commit)),
                              **statesync})
    consensus_pubkey = cometbft.validator_pubkey(home)
    operator = {"name": moniker, "role": role.value, "pubkey": pubkey, "zones": zone_list, "power": power,
                "consensus_pubkey": consensus_pubkey}
    if genesis is not None:
        shutil.copyfile(genesis, home / "config" / "genesis.json")
    else:
        _own_genesis(home, chain_id, operator)
    cometbft.write_node_settings(home, {
        "app_metrics": f"{rpc_host}:{ports.app_metrics}",
        "operator": {"name": moniker, "role": role.value, "zones": zone_list, "pubkey": pubkey,
                     "key_name": key_name or moniker.lower()},
        "snapshots": {"interval": DEFAULT_INTERVAL, "keep": DEFAULT_KEEP},
    })
    node_id = cometbft.node_id_from_key(home)
    # Peers need an address they can reach; a wildcard listener has none to offer.
    advertised = "<public-host>" if p2p_host in ("0.0.0.0", "::") else p2p_host
    libp2p_port = node_host.port_of(base_port)
    identity = None
    if libp2p:
        identity = _setup_p2p(home, chain_id=cometbft.read_genesis(home)["chain_id"],
                              zones=_p2p_zones(home, role, zone_list, p2p_zone),
                              listen=p2p_listen or node_host.multiaddr(p2p_host, libp2p_port),
                              bootstrap=list(p2p_bootstrap or ()), trusted=list(p2p_trust_publisher or ()))
    libp2p_facts = {} if identity is None else {
        "libp2p_peer_id": identity.peer_id, "feed_publisher_key": identity.pubkey,
        "libp2p_address": f"/ip4/{advertised}/tcp/{libp2p_port}/p2p/{identity.peer_id}" if p2p_listen is None
        else f"{p2p_listen}/p2p/{identity.peer_id}",
    }
    Output(output.value).record({
        "home": str(home), "moniker": moniker, "role": role.value, "zones": zone_list, "power": power,
        "chain_id": cometbft.read_genesis(home)["chain_id"],
        "node_id": node_id, "p2p_address": f"{node_id}@{advertised}:{ports.p2p}",
        "consensus_pubkey": consensus_pubkey, "validator_address": cometbft.validator_address(consensus_pubkey),
        "account_pubkey": pubkey, "account": account_id(bytes.fromhex(pubkey)),
        "ports": ports.as_dict(),
        **libp2p_facts,
        **({"state_sync_trust_height": statesync["statesync"]["trust_height"],
            "state_sync_trust_hash": statesync["statesync"]["trust_hash"]} if statesync else {}),
    })
    if identity is not None:
        note("the libp2p host: give libp2p_address and feed_publisher_key to the other validators (their "
             f"--p2p-bootstrap and --p2p-trust-publisher, or p2p.toml); protect {home}/p2p_identity.key")
    note(f"next: share node_id, consensus_pubkey and account_pubkey with the operators; start with "
         f"`gridledger node start --home {home}`; protect {home}/config/priv_validator_key.json and "
         f"{home}/config/node_key.json")


def _statesync(genesis: Path | None, rpc_servers: list[str], trust_period: str) -> dict[str, dict[str, Any]]:
    """[statesync] settings, with the trusted height and hash read (and verified) from the first RPC server."""
    if genesis is None:
        raise UsageError("--state-sync joins an existing network: give its --genesis")
    if not rpc_servers:
        raise UsageError("--state-sync needs --state-sync-rpc URL of a node you trust (repeat it for witnesses)")
    try:
        chain_id = str(json.loads(genesis.read_text())["chain_id"])
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot read the chain id of {genesis}: {exc}") from None
    rpc = CometRpc(rpc_servers[0], timeout=10.0)
    try:
        height, block_hash = lightclient.trust_point(rpc, chain_id)
    except NodeUnreachable as exc:
        raise NodeUnreachable(str(exc), url=rpc_servers[0], during="reading the block to trust") from exc
    except (RpcError, lightclient.LightClientError, KeyError, ValueError) as exc:
        raise UsageError(f"trusted RPC {rpc_servers[0]} gave no verifiable block of chain {chain_id!r}: {exc}") \
            from None
    finally:
        rpc.close()
    note(f"state sync: trusting block {height} ({block_hash}) of {rpc_servers[0]} for {trust_period}")
    return cometbft.statesync_settings(rpc_servers, height, block_hash, trust_period)


# --- start -----------------------------------------------------------------------------


@node_app.command("start")
def start(
    home: HomeOpt,
    abci: Annotated[str | None, typer.Option(help="ABCI address of the app (default: proxy_app of config.toml).")]
    = None,
    rpc: Annotated[str | None, typer.Option(help="CometBFT RPC listen address (default: config.toml).")] = None,
    p2p: Annotated[str | None, typer.Option(help="CometBFT p2p listen address (default: config.toml).")] = None,
    metrics: Annotated[str | None, typer.Option(
        help="App metrics HOST:PORT (default: config/gridledger.toml; '' turns them off).")] = None,
) -> None:
    """Run the ABCI app, CometBFT and (with <home>/p2p.toml) the libp2p host; Ctrl-C stops them in reverse.

    A dead libp2p host is restarted with back-off; consensus goes on.
    Exit codes: 0 stopped cleanly, 10 the app died, 11 CometBFT died, 12 start failed,
    13 a child failed while stopping.

    Example: gridledger node start --home ~/.gridledger/node0
    """
    home = home.expanduser().resolve()
    if not (home / "config" / "genesis.json").exists():
        raise UsageError(f"{home} is not a node home (no config/genesis.json)")
    spec = supervisor.NodeSpec.from_home(home, abci_address=abci, rpc_laddr=rpc, p2p_laddr=p2p, app_metrics=metrics)
    raise typer.Exit(supervisor.run(spec))


# --- status ----------------------------------------------------------------------------


def node_status(client: NodeClient) -> dict[str, Any]:
    """Height, app hash, sync state, peers and validator role of one node (exit 3 if unreachable)."""
    status = client.call("status")
    net_info = client.call("net_info")
    validators = client.call("validators", per_page="100")
    sync, info, me = status["sync_info"], status["node_info"], status["validator_info"]
    power = int(me.get("voting_power", 0))
    return {
        "moniker": info.get("moniker", ""),
        "node_id": info.get("id", ""),
        "network": info.get("network", ""),
        "height": int(sync["latest_block_height"]),
        "block_time": sync.get("latest_block_time", ""),
        "app_hash": sync.get("latest_app_hash", ""),
        "catching_up": bool(sync.get("catching_up", False)),
        "peers": int(net_info.get("n_peers", 0)),
        "peer_monikers": sorted(p["node_info"].get("moniker", "") for p in net_info.get("peers", [])),
        "validator": power > 0,
        "voting_power": power,
        "validator_address": me.get("address", ""),
        "validators": int(validators.get("total", len(validators.get("validators", [])))),
        "total_power": sum(int(v["voting_power"]) for v in validators.get("validators", [])),
    }


def _rpc_url_of(home: Path) -> str:
    laddr = cometbft.read_config(home)["rpc"]["laddr"]
    host_port = laddr.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


@node_app.command("status")
def status(
    node: NodeOpt = DEFAULT_NODE,
    home: Annotated[Path | None, typer.Option("--home", help="Read the RPC address from this home instead.")]
    = None,
    output: OutputOpt = Format.table,
) -> None:
    """Height, app hash, catching up, peers and whether the node is a validator.

    Exit code 3 if the node does not answer.

    Example: gridledger node status --node http://127.0.0.1:26657
    """
    url = node
    if home is not None:
        if not (home / "config" / "config.toml").exists():
            raise UsageError(f"{home} is not a node home (no config/config.toml)")
        url = _rpc_url_of(home)
    Output(output.value).record(node_status(NodeClient(url, timeout=5.0)))
