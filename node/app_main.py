"""The ABCI application process.

    python -m node.app_main --db DIR --address tcp://HOST:PORT [--metrics HOST:PORT]
        [--snapshot-interval N] [--snapshot-keep K] [--snapshot-chunk-bytes B]
        [--retain-blocks N] [--halt-height H]

With ``--metrics`` the app is wrapped by node.metrics.InstrumentedApp and
serves Prometheus metrics on ``http://HOST:PORT/metrics``.

``--retain-blocks`` sets the block retention of Commit's ``retain_height``
(abci_app/retention.py). ``--halt-height H`` is for upgrades at an agreed
height (docs/operators.md, "Upgrades"): once block H is committed the app
says so (the supervisor then stops the node) and executes no further block;
started on a state at or past H it exits with 3 at once. Neither touches the
state machine.
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
from abci_app.retention import DEFAULT_RETAIN_BLOCKS, Retention, RetentionError
from abci_app.server import AbciServer
from node import metrics

log = logging.getLogger("gridledger.app")

EXIT_HALTED = 3
"""The app was started on a state at or past its halt height."""
HALT_LINE = "halt height reached"
"""Printed once, with the height, when the halt height is committed: the supervisor then stops the node."""


class Halted(Exception):
    """The state is at or past the configured halt height: this version must not go on."""


class HaltAfterCommit:
    """Forwards every ABCI call to ``app`` until block ``halt_height`` is committed; then goes no further.

    After that Commit it prints ``HALT_LINE`` (the supervisor stops CometBFT,
    then the app, and exits with 14). Until CometBFT is stopped it may start
    the next height: this wrapper proposes nothing, rejects every proposal,
    and refuses to finalize a block, so the old version never executes block
    ``halt_height + 1`` (a refused FinalizeBlock stops CometBFT, which is
    what a node whose peers went on without it should do). Node-local and
    outside the state machine, like the metrics wrapper.
    """

    def __init__(self, app: Any, halt_height: int, committed_height: Callable[[], int]) -> None:
        self.app = app
        self.halt_height = halt_height
        self.committed_height = committed_height
        self.halted = False
        for method in metrics.ABCI_METHODS:
            if method not in ("commit", "prepare_proposal", "process_proposal", "finalize_block"):
                setattr(self, method, getattr(app, method))

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        resp: abci.ResponseCommit = self.app.commit(req)
        height = self.committed_height()
        if not self.halted and height >= self.halt_height:
            self.halted = True
            print(f"{HALT_LINE}: block {height} is committed (halt height {self.halt_height}); stopping", flush=True)
        return resp

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        if self.halted:
            return abci.ResponsePrepareProposal()
        resp: abci.ResponsePrepareProposal = self.app.prepare_proposal(req)
        return resp

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        if self.halted:
            return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.REJECT)
        resp: abci.ResponseProcessProposal = self.app.process_proposal(req)
        return resp

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        if self.halted:
            raise Halted(f"block {req.height} is past the halt height {self.halt_height}: not executed")
        resp: abci.ResponseFinalizeBlock = self.app.finalize_block(req)
        return resp

    def close(self) -> None:
        self.app.close()


async def serve(db: Path, address: str, metrics_address: str | None = None,
                snapshots: SnapshotStore | None = None, retention: Retention | None = None,
                halt_height: int = 0) -> None:
    """Serve until SIGINT/SIGTERM; ``Halted`` if the state is already at or past ``halt_height``."""
    ledger = LedgerApplication(LevelDBBackend(db), snapshots, retention)
    height = ledger.info(abci.RequestInfo()).last_block_height
    if halt_height and height >= halt_height:
        ledger.close()
        raise Halted(f"{HALT_LINE}: the state is at height {height}, the halt height is {halt_height}; start the "
                     "new version, or remove [upgrade] halt_height from config/gridledger.toml")
    app: Any = ledger
    stop_metrics: Callable[[], None] | None = None
    if metrics_address:
        app_metrics = metrics.AppMetrics()
        app = metrics.InstrumentedApp(ledger, app_metrics)
        stop_metrics = metrics.serve(app_metrics, metrics_address)
        log.info("Prometheus metrics on http://%s/metrics", metrics_address)
    if halt_height:
        app = HaltAfterCommit(app, halt_height, lambda: ledger.committed.height)
        log.info("halt height %d: the node stops once that block is committed", halt_height)
    server = AbciServer(app, address)
    await server.start()
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
    parser.add_argument("--retain-blocks", type=int, default=DEFAULT_RETAIN_BLOCKS,
                        help=f"newest blocks CometBFT keeps (0: every block; default {DEFAULT_RETAIN_BLOCKS})")
    parser.add_argument("--halt-height", type=int, default=0,
                        help="stop once this block is committed, for an upgrade (default 0: never)")
    args = parser.parse_args(argv)
    if args.halt_height < 0:
        parser.error("--halt-height must be 0 (never) or a height")
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
    try:
        retention = Retention(args.retain_blocks, snapshots.interval, snapshots.keep)
    except RetentionError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args.db, args.address, args.metrics, snapshots, retention, args.halt_height))
    except Halted as exc:
        print(exc, flush=True)
        sys.exit(EXIT_HALTED)


if __name__ == "__main__":
    main()
