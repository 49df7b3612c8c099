"""`gridledger testnet ...`: a local multi-validator network for development and research.

    testnet init --roster config/testnet-4.toml --out DIR   homes, keys, genesis (nothing runs yet)
    testnet up --dir DIR                                     start every node detached
    testnet status --dir DIR                                 heights, app hashes, peers; do the apps agree?
    testnet p2p-peers --dir DIR                              bootstrap addresses and feed publisher keys
    testnet logs --dir DIR [--node N] [--follow]             node logs
    testnet down --dir DIR                                   stop every node, nothing left running

Exit codes: 0 success; 2 usage error (bad roster, not a testnet directory);
3 a node did not start, does not answer, or the nodes' app hashes disagree.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.options import OutputOpt
from cli.output import Format, Output, UsageError, note
from lab import testnet as tn
from lab.testnet.compose import write_compose
from node import cometbft

testnet_app = typer.Typer(help="Run a local multi-validator testnet (init, up, status, logs, down).",
                          no_args_is_help=True)

class Switch(StrEnum):
    """A true/false option value, written as in CometBFT's config.toml."""

    true = "true"
    false = "false"


DirOpt = Annotated[Path, typer.Option("--dir", help="Testnet directory made by `testnet init`.")]
DEFAULT_DIR = tn.DEFAULT_OUT
NodesOpt = Annotated[list[str] | None, typer.Option(
    "--node", "-n", help="Only this node (node0 or its moniker); repeatable. Default: all.")]

NEXT_STEPS = """
testnet {chain_id}: {started}. Keys (operators, participants, meters) are in
{keyring} under the passphrase '{passphrase}'. Try:

  export GRIDLEDGER_KEYRING_DIR={keyring} GRIDLEDGER_PASSPHRASE={passphrase} GRIDLEDGER_NODE={rpc}
  gridledger keys list
  gridledger query operators
  gridledger node status
  gridledger testnet status --dir {dir}
  gridledger testnet logs --dir {dir} --node node1 --follow
  gridledger testnet down --dir {dir}
"""


@testnet_app.command("init")
def init(
    roster: Annotated[Path, typer.Option(help="Roster TOML: operators, participants, meters, parameters.")]
    = Path("config/testnet-4.toml"),
    out: Annotated[Path | None, typer.Option(
        help="New directory for the testnet (default .gridledger/testnet; with --docker .gridledger/testnet-docker, "
             "where docker-compose.yml looks).")] = None,
    chain_id: Annotated[str | None, typer.Option(help="Chain id (default: the roster's).")] = None,
    base_port: Annotated[int, typer.Option(
        help="Ports of node K start at BASE+10K: metrics +5, p2p +6, RPC +7, ABCI +8, CometBFT metrics +9.")]
    = cometbft.DEFAULT_BASE_PORT,
    timeout_commit: Annotated[str, typer.Option(help="CometBFT consensus.timeout_commit.")] = "1s",
    timeout_propose: Annotated[str, typer.Option(help="CometBFT consensus.timeout_propose.")] = "3s",
    create_empty_blocks: Annotated[Switch, typer.Option(
        help="Produce blocks without transactions (CometBFT consensus.create_empty_blocks).")] = Switch.true,
    create_empty_blocks_interval: Annotated[str, typer.Option(
        help="With --create-empty-blocks false: still make an empty block this often (0s: never).")] = "0s",
    docker: Annotated[bool, typer.Option(
        "--docker", help="Homes for containers (peers by service name, listen on 0.0.0.0) and their compose file.")]
    = False,
    compose: Annotated[Path, typer.Option(
        help="With --docker: the compose file to write (its image builds from the current directory).")]
    = Path("docker-compose.yml"),
    p2p: Annotated[bool, typer.Option(
        "--p2p/--no-p2p", help="Give every node a libp2p host (offers, market feed) on port BASE+10K+4.")] = True,
    validator: Annotated[list[str] | None, typer.Option(
        "--validator", help="Only this operator runs a node (repeatable; default: every operator the roster marks "
                            "validator = true). One gives a single-node chain with the roster's other operators.")]
    = None,
    output: OutputOpt = Format.table,
) -> None:
    """Create the validator homes, keys and shared genesis of a local testnet.

    Example: gridledger testnet init --roster config/testnet-4.toml --out /tmp/tn --timeout-commit 300ms
    """
    timing = cometbft.Timing(timeout_commit=timeout_commit, timeout_propose=timeout_propose,
                             create_empty_blocks=create_empty_blocks is Switch.true,
                             create_empty_blocks_interval=create_empty_blocks_interval)
    if out is None:
        out = tn.DOCKER_OUT if docker else tn.DEFAULT_OUT
    options = tn.InitOptions(out=out, base_port=base_port, timing=timing, docker=docker, chain_id=chain_id,
                             p2p=p2p)
    testnet = tn.init_testnet(tn.with_validators(tn.load_roster(roster), tuple(validator or ())), options)
    Output(output.value).records(
        [{"node": n.name, "moniker": n.moniker, "role": n.role, "power": n.power, "node_id": n.node_id,
          "rpc": n.rpc_url, "p2p": n.ports["p2p"], "libp2p": n.p2p_addr or None, "home": str(testnet.home(n))}
         for n in testnet.nodes],
        columns=("node", "moniker", "role", "power", "rpc", "p2p", "libp2p", "home"))
    if docker:
        written = write_compose(testnet, compose, Path.cwd(), roster.as_posix())
        up = "docker compose up --build" if written == Path("docker-compose.yml") else \
            f"docker compose -f {written} up --build"
        note(f"docker homes written to {testnet.directory}, their compose file to {written}; run them with "
             f"`{up}` (see README, section Docker)")
    else:
        note(f"start it with: gridledger testnet up --dir {out}")


@testnet_app.command("up")
def up(
    directory: DirOpt = DEFAULT_DIR,
    node: NodesOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every node's RPC.")] = 60.0,
    output: OutputOpt = Format.table,
) -> None:
    """Start the nodes (each a detached `gridledger node start`, log in DIR/<node>/node.log).

    Exit code 3 if a node did not come up in time.

    Example: gridledger testnet up --dir /tmp/tn
    """
    testnet = tn.load_testnet(directory)
    results = tn.up(testnet, testnet.select(node), timeout)
    Output(output.value).records(results, columns=("node", "moniker", "pid", "rpc", "state"))
    failed = [r["node"] for r in results if r["state"] not in ("started", "already running")]
    if failed:
        raise tn.NetworkUnhealthy(f"not up: {', '.join(failed)} (see their node.log; `testnet down` stops the rest)")
    note(NEXT_STEPS.format(chain_id=testnet.chain_id, started=up_summary(results, len(testnet.nodes)),
                           keyring=testnet.keyring,
                           passphrase=tn.TESTNET_PASSPHRASE, rpc=testnet.nodes[0].rpc_url, dir=directory))


def up_summary(results: list[dict[str, Any]], total: int) -> str:
    """What `up` did, by node ("node3 started; the other 3 nodes not touched"), not a count it did not check."""
    started = [r["node"] for r in results if r["state"] == "started"]
    running = [r["node"] for r in results if r["state"] == "already running"]
    parts = ([f"{', '.join(started)} started"] if started else []) + \
        ([f"{', '.join(running)} already running"] if running else [])
    untouched = total - len(results)
    scope = "" if untouched == 0 else f"; the other {untouched} node{'s' if untouched > 1 else ''} not touched"
    return f"{'; '.join(parts) or 'nothing started'}{scope}"


@testnet_app.command("down")
def down(
    directory: DirOpt = DEFAULT_DIR,
    node: NodesOpt = None,
    grace: Annotated[float, typer.Option(help="Seconds before a node that ignores SIGTERM is killed.")] = 30.0,
    output: OutputOpt = Format.table,
) -> None:
    """Stop the nodes: SIGTERM (CometBFT stops, then the app), SIGKILL after --grace.

    Example: gridledger testnet down --dir /tmp/tn --node node3
    """
    testnet = tn.load_testnet(directory)
    Output(output.value).records(tn.down(testnet, testnet.select(node), grace),
                                 columns=("node", "moniker", "pid", "state"))


@testnet_app.command("status")
def status(directory: DirOpt = DEFAULT_DIR, output: OutputOpt = Format.table) -> None:
    """Every node's height, app hash, peers and role, and whether all apps agree on the state.

    The app hashes are compared at the lowest height all answering nodes have reached.
    Exit code 3 if a node does not answer or the app hashes disagree.

    Example: gridledger testnet status --dir /tmp/tn --output json
    """
    testnet = tn.load_testnet(directory)
    reports = [tn.node_report(testnet, n) for n in testnet.nodes]
    summary = tn.agreement(testnet, reports)
    out = Output(output.value)
    if output is Format.json:
        out.record({"chain_id": testnet.chain_id, "nodes": reports, **summary})
    else:
        out.records(reports, columns=("node", "moniker", "pid", "height", "app_hash", "catching_up", "peers",
                                      "validator", "voting_power", "p2p_port", "p2p_peers", "p2p_peer_id"))
        out.record({k: v for k, v in summary.items() if k != "hashes"}, title="agreement")
    unreachable = [r["node"] for r in reports if not r["reachable"]]
    if unreachable:
        raise tn.NetworkUnhealthy(f"not answering: {', '.join(unreachable)}")
    if summary["agree"] is False:
        raise tn.NetworkUnhealthy(f"app hashes differ at height {summary['compared_height']}: {summary['hashes']}")


@testnet_app.command("p2p-peers")
def p2p_peers(directory: DirOpt = DEFAULT_DIR, output: OutputOpt = Format.table) -> None:
    """How a participant joins the testnet's libp2p network: bootstrap addresses and feed publisher keys.

    Prints the `gridledger p2p listen` options to paste; `--output json` gives
    {"chain_id", "bootstrap": [...], "trusted_publishers": [...], "nodes": [...]}.

    Example: gridledger testnet p2p-peers --dir /tmp/tn --output json
    """
    testnet = tn.load_testnet(directory)
    peers = tn.p2p_peers(testnet)
    if not peers["bootstrap"]:
        raise UsageError(f"the nodes of {testnet.directory} run no libp2p host (made with --no-p2p)")
    out = Output(output.value)
    if output is Format.json:
        out.record(peers)
        return
    out.records([{**n, "zones": ",".join(n["zones"])} for n in peers["nodes"]],
                columns=("node", "moniker", "zones", "addr", "publisher"))
    options = " ".join([*(f"--bootstrap {a}" for a in peers["bootstrap"]),
                        *(f"--trust-publisher {k}" for k in peers["trusted_publishers"])])
    note(f"join as a participant:\n  gridledger p2p listen --home DIR --zone ZONE "
         f"--node {testnet.nodes[0].rpc_url} {options}")


@testnet_app.command("logs")
def logs(
    directory: DirOpt = DEFAULT_DIR,
    node: NodesOpt = None,
    lines: Annotated[int, typer.Option("--lines", "-l", min=0, help="Lines of history per node.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C ends).")]
    = False,
) -> None:
    """Print the nodes' logs, each line prefixed with its node (one node: no prefix).

    Example: gridledger testnet logs --dir /tmp/tn --node node2 --follow
    """
    testnet = tn.load_testnet(directory)
    chosen = testnet.select(node)
    paths = {n.name: tn.log_file(testnet, n) for n in chosen}
    prefix = len(chosen) > 1
    for name, path in paths.items():
        for line in tn.tail_lines(path, lines):
            typer.echo(f"{name} | {line}" if prefix else line)
    if not follow:
        return
    try:
        for name, line in tn.follow(paths):
            typer.echo(f"{name} | {line}" if prefix else line)
    except KeyboardInterrupt:
        return
