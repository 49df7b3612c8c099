"""`gridledger node ...`: set up, run and inspect one validator node.

A node home is a CometBFT home (config/, data/) plus ``config/gridledger.toml``
(the operator this node belongs to, the app's metrics address). The ABCI app
keeps its state in ``data/app``. With ``p2p.toml`` and ``p2p_identity.key``
the node also runs its libp2p host (offers, market feed; docs/p2p.md).
node/home.py creates the home; node/supervisor.py runs it.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.options import (
    DEFAULT_KEYRING,
    DEFAULT_NODE,
    KeyringDirOpt,
    LogLevelOpt,
    NodeOpt,
    OutputOpt,
    PassphraseFileOpt,
    read_passphrase,
)
from cli.output import Format, Output, UsageError, note
from node import cometbft, supervisor
from node import home as node_home
from node.client.chain import NodeClient
from node.client.keystore import Keystore, validate_name

node_app = typer.Typer(help="Run a validator node (CometBFT + the gridledger ABCI app).", no_args_is_help=True)


class Role(StrEnum):
    dso = "dso"
    lpd = "lpd"


HomeOpt = Annotated[Path, typer.Option("--home", help="Node home directory (CometBFT home).")]


# --- init ------------------------------------------------------------------------------


def _operator_key(keyring_dir: Path, name: str, passphrase_file: Path | None) -> str:
    """Hex public key of the operator's account key, created in the keyring unless it exists."""
    store = Keystore(keyring_dir.expanduser())
    if store.exists(validate_name(name)):
        note(f"using the existing key {name!r} of {store.directory}")
        return store.show(name).pubkey
    passphrase = read_passphrase(passphrase_file, prompt=f"New passphrase for operator key {name!r}", confirm=True)
    return store.generate(name, passphrase, "account").pubkey


@node_app.command("init")
def init(
    home: HomeOpt,
    moniker: Annotated[str, typer.Option(help="Operator / node name, e.g. dso-north (also the genesis name).")],
    role: Annotated[Role, typer.Option(help="dso (grid operator) or lpd (liquidity provider).")],
    zones: Annotated[str, typer.Option(help="DSO only: comma-separated zones served, e.g. north-1,north-2.")] = "",
    power: Annotated[int, typer.Option(min=1, help="Voting power (governance and, as a validator, consensus).")]
    = 10,
    chain_id: Annotated[str, typer.Option(help="Chain id of a new one-operator chain (ignored with --genesis).")]
    = node_home.DEFAULT_CHAIN_ID,
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
    spec = node_home.HomeSpec(
        home=home.expanduser().resolve(), moniker=moniker, role=role.value, zones=node_home.parse_zones(zones),
        power=power, chain_id=chain_id, genesis=genesis, peers=tuple(p.strip() for p in peers.split(",") if p.strip()),
        base_port=base_port, p2p_host=p2p_host, rpc_host=rpc_host, timeout_commit=timeout_commit, libp2p=libp2p,
        p2p_listen=p2p_listen, p2p_zones=tuple(p2p_zone or ()), p2p_bootstrap=tuple(p2p_bootstrap or ()),
        p2p_trusted=tuple(p2p_trust_publisher or ()), key_name=key_name or "")
    node_home.check(spec)  # before the operator key is made: a bad option leaves nothing behind
    trusted = node_home.trusted_block(genesis, state_sync_rpc or [], trust_period) if state_sync else None
    if trusted is not None:
        note(f"state sync: trusting block {trusted.height} ({trusted.hash}) of {trusted.rpc_servers[0]} "
             f"for {trust_period}")
    pubkey = _operator_key(keyring_dir, spec.operator_key_name, passphrase_file)
    created = node_home.create(spec, pubkey, trusted)
    Output(output.value).record(created.record)
    if created.libp2p:
        note("the libp2p host: give libp2p_address and feed_publisher_key to the other validators (their "
             f"--p2p-bootstrap and --p2p-trust-publisher, or p2p.toml); protect {spec.home}/p2p_identity.key")
    elif libp2p:
        note("no zones to publish a feed for (an LPD on a chain without zones): the node runs no libp2p host; "
             "add --p2p-zone to run one")
    note(f"next: share node_id, consensus_pubkey and account_pubkey with the operators; start with "
         f"`gridledger node start --home {spec.home}`; protect {spec.home}/config/priv_validator_key.json and "
         f"{spec.home}/config/node_key.json")


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
    log_level: LogLevelOpt = None,
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
    if log_level is not None:
        spec.log_level, spec.app_log_level = supervisor.log_levels(log_level.value)
    raise typer.Exit(supervisor.run(spec))


# --- verify-backup ---------------------------------------------------------------------


@node_app.command("verify-backup")
def verify_backup(
    db: Annotated[Path, typer.Argument(help="The copy's app state: BACKUP/data/app (a stopped node's, or a copy).")],
    node: Annotated[str | None, typer.Option(
        "--node", help="A node of the chain (RPC URL) whose signed header the app hash is compared with.")] = None,
) -> None:
    """Check a backup of a node's app state: whole (its Merkle root is its app hash) and, with --node, this chain's.

    Exit codes: 0 verified, 1 damaged or not the chain's state, 2 not an app state, 3 the node did not answer
    (docs/operators.md, "Backup and restore").

    Example: gridledger node verify-backup /backups/node0/data/app --node http://127.0.0.1:26657
    """
    from node import backup

    raise typer.Exit(backup.verify(db.expanduser(), node))


# --- status ----------------------------------------------------------------------------


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
        url = cometbft.rpc_url(home)
    Output(output.value).record(NodeClient(url, timeout=5.0).node_status())
