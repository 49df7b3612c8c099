"""`gridledger dashboard`: serve the live market dashboard for a node (docs/dashboard.md).

    gridledger dashboard --node http://127.0.0.1:26657 --listen 127.0.0.1:8080

Exit codes: 0 stopped (Ctrl-C); 2 an invalid option, roster or results
directory, or an address that cannot be bound. An unreachable node is not an
error: the pages say so and the dashboard reconnects when the node is back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import DEFAULT_NODE, NODE_ENV
from cli.output import note
from dashboard.config import DEFAULT_LISTEN, DashboardConfig


def dashboard(
    node: Annotated[list[str] | None, typer.Option(
        "--node", envvar=NODE_ENV,
        help="CometBFT RPC URL to read and follow; repeat it to compare the app hash of several nodes.")] = None,
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to serve the pages on (port 0: a free one).")]
    = DEFAULT_LISTEN,
    results: Annotated[Path | None, typer.Option(
        "--results", help="Directory of experiment runs (gridledger experiment run's results/) to show.")] = None,
    roster: Annotated[Path | None, typer.Option(
        "--roster", help="Roster TOML (config/testnet-4.toml format) naming the participants.")] = None,
) -> None:
    """Serve the live market dashboard: market, prices, settlement, network, experiments.

    It reads only public chain data (the node's RPC and the app's queries) and pushes
    each committed block to open pages.

    Example: gridledger dashboard --node http://127.0.0.1:26657 --listen 127.0.0.1:8080 --results results
    """
    from dashboard.server import configure_logging, serve  # the web stack loads only for this command

    config = DashboardConfig.build(node or [DEFAULT_NODE], listen, results, roster)
    configure_logging()
    serve(config, note)
