"""The ABCI application process.

    python -m node.app_main --db DIR --address tcp://HOST:PORT [--metrics HOST:PORT]
        [--snapshot-interval N] [--snapshot-keep K] [--snapshot-chunk-bytes B]

With ``--metrics`` the app is wrapped by node.metrics.InstrumentedApp and
serves Prometheus metrics on ``http://HOST:PORT/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abci_app.app import LedgerApplication
from abci_app.ledger.snapshots import DEFAULT_CHUNK_BYTES, DEFAULT_INTERVAL, DEFAULT_KEEP, SnapshotStore
from abci_app.ledger.store import LevelDBBackend
from abci_app.pb.tendermint.abci import types_pb2 as abci
from abci_app.server import AbciServer
from node import metrics

log = logging.getLogger("gridledger.app")


async def serve(db: Path, address: str, metrics_address: str | None = None,
                snapshots: SnapshotStore | None = None) -> None:
    ledger = LedgerApplication(LevelDBBackend(db), snapshots)
    app: Any = ledger
    stop_metrics: Callable[[], None] | None = None
    if metrics_address:
        app_metrics = metrics.AppMetrics()
        app = metrics.InstrumentedApp(ledger, app_metrics)
        stop_metrics = metrics.serve(app_metrics, metrics_address)
        log.info("Prometheus metrics on http://%s/metrics", metrics_address)
    server = AbciServer(app, address)
    await server.start()
    height = ledger.info(abci.RequestInfo()).last_block_height
    # The supervisor (and tests) wait for this line before starting CometBFT; the supervisor
    # re-indexes CometBFT's newest blocks up to this height first (node/supervisor.py).
    print(f"ABCI server ready on {server.bound_address} at height {height}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(server.serve_forever())
    await stop.wait()
    log.info("stopping: closing connections and the store")
    serving.cancel()
    await server.stop()
    if stop_metrics is not None:
        stop_metrics()
    ledger.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="gridledger ABCI application server")
    parser.add_argument("--db", type=Path, required=True, help="LevelDB directory of the app state")
    parser.add_argument("--address", default="tcp://127.0.0.1:26658", help="tcp://HOST:PORT or unix://PATH")
    parser.add_argument("--metrics", default=None, metavar="HOST:PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off)")
    parser.add_argument("--log-level", default="INFO")
    # State-sync snapshots (docs/operators.md): written next to the state, in <db>/../snapshots.
    parser.add_argument("--snapshot-interval", type=int, default=DEFAULT_INTERVAL, help="0: take none")
    parser.add_argument("--snapshot-keep", type=int, default=DEFAULT_KEEP)
    parser.add_argument("--snapshot-chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    args = parser.parse_args(argv)
    if args.metrics:
        try:
            metrics.parse_address(args.metrics)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        snapshots = SnapshotStore(args.db.parent / "snapshots", args.snapshot_interval, args.snapshot_keep,
                                  args.snapshot_chunk_bytes)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.db, args.address, args.metrics, snapshots))


if __name__ == "__main__":
    main()
