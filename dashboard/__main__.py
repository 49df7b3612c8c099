"""``python -m dashboard``: what the node supervisor runs for a home with a ``[dashboard]`` block.

People use ``gridledger dashboard``; this entry point takes the same options
(and ``--home``, whose block supplies the ones not given) without the CLI's
dependencies. Exit codes: 0 stopped by a signal, 2 invalid options or an
address that cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from dashboard.config import DEFAULT_LISTEN, ConfigError, DashboardConfig, from_home
from dashboard.server import configure_logging, serve

EXIT_USAGE = 2


def parse(argv: list[str]) -> DashboardConfig:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description="gridledger's live market dashboard")
    parser.add_argument("--node", action="append", default=[], help="CometBFT RPC URL (repeat to compare nodes)")
    parser.add_argument("--listen", default=None, help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})")
    parser.add_argument("--results", type=Path, default=None, help="results directory of experiment runs")
    parser.add_argument("--roster", type=Path, default=None, help="roster TOML with participants' names")
    parser.add_argument("--home", type=Path, default=None, help="node home whose [dashboard] block to use")
    args = parser.parse_args(argv)
    if args.home is not None:
        if not args.node:
            raise ConfigError("--home needs --node (the home's own RPC URL)")
        return from_home(args.home, args.node[0], args.listen, args.node[1:], args.results, args.roster)
    return DashboardConfig.build(args.node, args.listen or DEFAULT_LISTEN, args.results, args.roster)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse(sys.argv[1:] if argv is None else argv)
        configure_logging()
        serve(config, lambda line: print(line, file=sys.stderr, flush=True))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def exit_now(code: int) -> NoReturn:
    """End the process without interpreter finalization once the server has shut down.

    The dashboard holds no state, and on a starved machine the final garbage
    collection of the web stack was seen to outlast the supervisor's 15 s stop
    grace (then the child is killed and the node's stop counts as failed).
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
