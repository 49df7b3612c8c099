"""`gridledger`: one typer sub-app per noun, and the one place errors become exit codes.

Commands are thin: they parse options, call library code (node/, lab/) and
print results. Library code raises typed errors; ``ERRORS`` below maps each
type to its one-line message and exit code, for every command alike:

    0 success; 1 transaction rejected; 2 usage or input error;
    3 node unreachable or timed out; 4 a --prove answer did not verify.

User errors print one plain ``error: ...`` line on stderr, never a traceback.
Anything else is a bug: one line naming it (exit code 2), the traceback with --debug.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from abci_app import version as app_version
from cli.bench import bench_app
from cli.config import config_app
from cli.dashboard import dashboard
from cli.experiment import experiment_app
from cli.keys import keys_app
from cli.node import node_app
from cli.options import DEFAULT_NODE, LogLevel, NodeOpt, OutputOpt
from cli.output import NODE_UNREACHABLE, PROOF_INVALID, TX_REJECTED, USAGE, Format, Output, UsageError, error, note
from cli.p2p import p2p_app
from cli.query import query_app
from cli.scenario import scenario_app
from cli.testnet import testnet_app
from cli.tx import tx_app
from dashboard.config import ConfigError as DashboardConfigError
from lab import demo as demo_chain
from lab.experiment import ConfigError as ExperimentConfigError
from lab.experiment import ExperimentFailed
from lab.load import LoadSetupError
from lab.ports import port_blocks
from lab.scenario import ScenarioError
from lab.testnet import NetworkUnhealthy, TestnetError
from node import cometbft, supervisor
from node.client import config as client_config
from node.client.chain import CommitTimeout, NodeClient, QueryFailed, TxRejected
from node.client.keystore import KeystoreError
from node.client.lightclient import LightClientError
from node.client.units import UnitError
from node.client.verified import QueryRefused, VerificationError
from node.home import HomeError
from node.p2p.messages import MessageError
from node.rpc import NodeUnreachable, RpcError


def _unreachable(exc: NodeUnreachable) -> str:
    if exc.during:
        return f"node {exc.url} is unreachable while {exc.during} (is it running?)"
    return f"node {exc.url or '(unknown URL)'} is unreachable (is it running? use --node URL)"


def _os_error(exc: OSError) -> str:
    return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)


# The error table: the first entry whose type matches wins, so a subclass comes before its base.
ERRORS: tuple[tuple[type[BaseException] | tuple[str, str], int, Callable[[Any], str]], ...] = (
    (TxRejected, TX_REJECTED, str),
    (VerificationError, PROOF_INVALID, lambda exc: f"NOT VERIFIED: {exc}"),
    (NodeUnreachable, NODE_UNREACHABLE, _unreachable),
    (CommitTimeout, NODE_UNREACHABLE, str),
    (TimeoutError, NODE_UNREACHABLE, str),
    (NetworkUnhealthy, NODE_UNREACHABLE, str),
    (ExperimentFailed, NODE_UNREACHABLE, str),
    (UsageError, USAGE, str),
    (client_config.ConfigError, USAGE, str),
    (UnitError, USAGE, str),
    (KeystoreError, USAGE, str),
    (QueryFailed, USAGE, str),
    (QueryRefused, USAGE, str),
    (RpcError, USAGE, str),
    (LightClientError, USAGE, str),
    # Defined in a module only the p2p commands import (it loads trio): looked up when it is loaded.
    (("node.p2p.control", "ControlError"), USAGE, str),
    (MessageError, USAGE, str),
    (HomeError, USAGE, str),
    (TestnetError, USAGE, str),
    (ScenarioError, USAGE, str),
    (ExperimentConfigError, USAGE, str),
    (LoadSetupError, USAGE, str),
    (DashboardConfigError, USAGE, str),
    # click turns Ctrl-D / Ctrl-C at a prompt into Abort, whose own exit code (1) would read as "rejected".
    (typer.Abort, USAGE, lambda _exc: "aborted"),
    (OSError, USAGE, _os_error),
)
_debug = False
"""--debug (anywhere on the command line): let unexpected exceptions through with their traceback."""


def exit_code_for(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and one-line message of an error in the table; None for anything else."""
    for kind, code, message in ERRORS:
        if isinstance(kind, tuple):  # (module, name): unloaded, its error cannot have been raised
            module = sys.modules.get(kind[0])
            if module is None:
                continue
            kind = getattr(module, kind[1])
        if isinstance(exc, kind):
            return code, message(exc)
    return None


class _Gridledger(TyperGroup):
    """The root command: applies ``ERRORS`` to whatever a command raises (also under typer's CliRunner)."""

    def invoke(self, ctx: Any) -> Any:  # click's Context: typer vendors click and does not export its type
        try:
            # The client config file's values are the defaults of this one invocation (node/client/config.py).
            with client_config.defaults():
                return super().invoke(ctx)
        except (typer.Exit, typer.TyperException):  # click's own exits and usage errors
            raise
        except Exception as exc:
            known = exit_code_for(exc)
            if known is not None:
                code, message = known
                error(message)
                raise typer.Exit(code) from exc
            if _debug:
                raise
            error(f"{type(exc).__name__}: {exc} (run with --debug for details)")
            raise typer.Exit(USAGE) from exc


app = typer.Typer(
    name="gridledger",
    cls=_Gridledger,
    help="Permissioned peer-to-peer energy-trading ledger on CometBFT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# One sub-app per noun, one line each.
app.add_typer(node_app, name="node")
app.add_typer(testnet_app, name="testnet")
app.add_typer(keys_app, name="keys")
app.add_typer(tx_app, name="tx")
app.add_typer(query_app, name="query")
app.add_typer(bench_app, name="bench")
app.add_typer(experiment_app, name="experiment")
app.add_typer(p2p_app, name="p2p")
app.add_typer(scenario_app, name="scenario")
app.add_typer(config_app, name="config")
app.command("dashboard")(dashboard)

DEMO_HINT = """
demo chain: home {home}, RPC {rpc}  (Ctrl-C stops CometBFT, then the app)
demo keys (dso, lpd, alice, bob, alice-meter, bob-meter) are in {home}/keyring under the passphrase 'demo'.
alice (PV) and bob own meters; a meter reader signs their readings at every slot end, relayed by the DSO.
{metrics}log: {log} (CometBFT's lines only there)
In another shell, trade at once:

  . .venv/bin/activate
  export GRIDLEDGER_KEYRING_DIR={home}/keyring GRIDLEDGER_PASSPHRASE=demo{node_env}
  gridledger query slots
  gridledger tx order place --side ask --qty 2kWh --price 0.24EUR/kWh --slot next --origin solar --from alice --wait
  gridledger tx order place --side bid --qty 1kWh --price 0.27EUR/kWh --slot next --from bob --wait
  gridledger query trades --slot next
  gridledger query account bob
"""


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gridledger {app_version()}\nCometBFT {cometbft.pinned_version()} (pinned)")
        raise typer.Exit(0)


@app.callback()
def _root(version_flag: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                            help="Print gridledger's and the pinned CometBFT's versions.")) -> None:
    """Permissioned peer-to-peer energy-trading ledger on CometBFT."""


@app.command("status")
def status(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """The node's height, block time, app hash, sync state, peers and validator set (as `node status`).

    Example: gridledger status
    """
    Output(output.value).record(NodeClient(node, timeout=5.0).node_status())


@app.command()
def version() -> None:
    """Print gridledger's and the pinned CometBFT's versions.

    Example: gridledger version
    """
    typer.echo(f"gridledger {app_version()}\nCometBFT {cometbft.pinned_version()} (pinned)")


@app.command()
def demo(
    home: Path = typer.Option(Path(".gridledger/demo"), help="Home directory of the demo chain."),
    base_port: int = typer.Option(cometbft.DEFAULT_BASE_PORT, help="Port block: app metrics +5, p2p +6, RPC +7, "
                                  "ABCI +8, CometBFT metrics +9 (the default: 26655 .. 26659)."),
    rpc_port: int | None = typer.Option(None, help="CometBFT RPC port on 127.0.0.1 (default: the block's)."),
    p2p_port: int | None = typer.Option(None, help="CometBFT p2p port on 127.0.0.1 (default: the block's)."),
    abci_port: int | None = typer.Option(None, help="ABCI port on 127.0.0.1 (default: the block's)."),
    rpc_host: str = typer.Option("127.0.0.1", help="Interface the RPC listens on (0.0.0.0 in a container)."),
    dashboard_listen: str = typer.Option("127.0.0.1:8080", help="Where the demo's dashboard listens; 'off': none."),
    metrics: bool = typer.Option(True, "--metrics/--no-metrics",
                                 help="Serve the app's (port 26655) and CometBFT's (26659) Prometheus metrics."),
    meters: bool = typer.Option(True, "--meters/--no-meters",
                                help="Run the meter reader (alice's and bob's readings at every slot end)."),
    log_level: LogLevel = typer.Option(LogLevel.warn, "--log-level", case_sensitive=False,
                                       help="CometBFT and the app (warn: CometBFT's errors only)."),
) -> None:
    """Start a single-validator local chain with demo operators, participants and meters.

    Example: gridledger demo --home /tmp/gl-demo
    """
    # The standard port block, with the ports given on the command line.
    block = port_blocks(1, base_port)[0]
    ports = replace(block, rpc=rpc_port or block.rpc, p2p=p2p_port or block.p2p, abci=abci_port or block.abci)
    home = home.resolve()
    demo_chain.create(home, ports, rpc_host=rpc_host, metrics=metrics)
    log = demo_chain.DemoLog(home / "logs" / "demo.log")
    served = (f"metrics: app http://127.0.0.1:{ports.app_metrics}/metrics, "
              f"CometBFT http://127.0.0.1:{ports.cometbft_metrics}/metrics\n") if metrics else ""
    node_env = "" if ports.rpc_url == DEFAULT_NODE else f" GRIDLEDGER_NODE={ports.rpc_url}"
    typer.echo(DEMO_HINT.format(home=home, rpc=ports.rpc_url, metrics=served, log=log.path, node_env=node_env),
               err=True)
    if meters and not demo_chain.has_meters(home):
        note(f"this demo home predates the demo's meters: remove {home} for a demo you can trade on")
        meters = False
    dashboard = _demo_dashboard(home, dashboard_listen)
    cometbft_level, app_level = supervisor.log_levels(log_level.value)
    spec = supervisor.NodeSpec(
        home=home, abci_address=f"tcp://127.0.0.1:{ports.abci}", rpc_laddr=f"tcp://{rpc_host}:{ports.rpc}",
        p2p_laddr=f"tcp://127.0.0.1:{ports.p2p}", dashboard=dashboard, log_level=cometbft_level,
        app_log_level=app_level, app_metrics=f"127.0.0.1:{ports.app_metrics}" if metrics else None)
    reader = demo_chain.start_meter_reader(home, ports.rpc_url, log) if meters else None
    try:
        code = supervisor.run(spec, sink=log)
    finally:
        if reader is not None:
            reader[1].set()
            reader[0].join(timeout=5)
        log.close()
    raise typer.Exit(code)


def _demo_dashboard(home: Path, listen: str) -> bool:
    """The demo home's [dashboard] block (docs/dashboard.md): the supervisor serves it."""
    from dashboard.config import parse_listen

    settings = cometbft.read_node_settings(home)
    settings.pop("dashboard", None)
    if listen != "off":
        address = parse_listen(listen)
        settings["dashboard"] = {"listen": listen}
        note(f"dashboard: {address.url()}  (market, prices, settlement, network)\n")
    cometbft.write_node_settings(home, settings)
    return listen != "off"


def main() -> None:
    global _debug
    _debug = "--debug" in sys.argv
    if _debug:
        sys.argv.remove("--debug")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
