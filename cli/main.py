"""`gridledger`: one typer sub-app per noun.

Exit codes: 0 success; 1 transaction rejected; 2 usage or input error;
3 node unreachable or timed out. User errors print one or two plain lines on
stderr, never a traceback (unless --debug).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cli.bench import bench_app
from cli.dashboard import dashboard
from cli.experiment import experiment_app
from cli.keys import keys_app
from cli.node import node_app
from cli.p2p import p2p_app
from cli.query import query_app
from cli.scenario import scenario_app
from cli.testnet import testnet_app
from cli.tx import tx_app
from lab import localnet
from node import cometbft, supervisor

app = typer.Typer(
    name="gridledger",
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
app.command("dashboard")(dashboard)

EXIT_USAGE = 2
DEMO_HINT = """
demo chain: home {home}, RPC {rpc}  (Ctrl-C stops CometBFT, then the app)
demo keys (dso, lpd, alice, bob) are in {home}/keyring under the passphrase 'demo'. In another shell:

  . .venv/bin/activate
  export GRIDLEDGER_KEYRING_DIR={home}/keyring GRIDLEDGER_PASSPHRASE=demo
  gridledger query account alice
  gridledger tx transfer bob 1.50EUR --from alice --wait
  gridledger keys add carol
  gridledger tx participant register carol --role consumer --zone zone-a --from dso --wait
  gridledger tx deposit carol 25EUR --reference demo-1 --from lpd --wait
  gridledger query account carol
"""


def fail(message: str, code: int = EXIT_USAGE) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print gridledger's and the pinned CometBFT's versions.

    Example: gridledger version
    """
    from abci_app.app import _version

    typer.echo(f"gridledger {_version()}\nCometBFT {cometbft.pinned_version()} (pinned)")


@app.command()
def demo(
    home: Path = typer.Option(Path(".gridledger/demo"), help="Home directory of the demo chain."),
    rpc_port: int = typer.Option(26657, help="CometBFT RPC port on 127.0.0.1."),
    p2p_port: int = typer.Option(26656, help="CometBFT p2p port on 127.0.0.1."),
    abci_port: int = typer.Option(26658, help="ABCI port on 127.0.0.1."),
    rpc_host: str = typer.Option("127.0.0.1", help="Interface the RPC listens on (0.0.0.0 in a container)."),
    dashboard_listen: str = typer.Option("127.0.0.1:8080", help="Where the demo's dashboard listens; 'off': none."),
) -> None:
    """Start a single-validator local chain with demo operators and participants.

    Example: gridledger demo --home /tmp/gl-demo
    """
    ports = localnet.Ports(rpc=rpc_port, p2p=p2p_port, abci=abci_port)
    home = home.resolve()
    try:
        localnet.init_single(home, "gridledger-demo", localnet.demo_app_state(home), ports, rpc_host=rpc_host)
    except FileNotFoundError as exc:
        fail(str(exc))
    typer.echo(DEMO_HINT.format(home=home, rpc=ports.rpc_url, cwd=Path.cwd()), err=True)
    dashboard = _demo_dashboard(home, dashboard_listen)
    code = supervisor.run(supervisor.NodeSpec(
        home=home, abci_address=f"tcp://127.0.0.1:{abci_port}",
        rpc_laddr=f"tcp://{rpc_host}:{rpc_port}", p2p_laddr=f"tcp://127.0.0.1:{p2p_port}", dashboard=dashboard,
    ))
    raise typer.Exit(code)


def _demo_dashboard(home: Path, listen: str) -> bool:
    """The demo home's [dashboard] block (docs/dashboard.md): the supervisor serves it."""
    from dashboard.config import ConfigError, parse_listen

    settings = cometbft.read_node_settings(home)
    settings.pop("dashboard", None)
    if listen != "off":
        try:
            address = parse_listen(listen)
        except ConfigError as exc:
            fail(str(exc))
        settings["dashboard"] = {"listen": listen}
        typer.echo(f"dashboard: {address.url()}  (market, prices, settlement, network)\n", err=True)
    cometbft.write_node_settings(home, settings)
    return listen != "off"


def main() -> None:
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # last line of defence: no traceback for users
        if debug:
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
