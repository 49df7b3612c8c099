"""The ABCI application process: ``python -m node.app_main --db DIR --address tcp://HOST:PORT``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from abci_app.app import LedgerApplication
from abci_app.ledger.store import LevelDBBackend
from abci_app.server import AbciServer


async def serve(db: Path, address: str) -> None:
    app = LedgerApplication(LevelDBBackend(db))
    server = AbciServer(app, address)
    await server.start()
    # The supervisor (and tests) wait for this line before starting CometBFT.
    print(f"ABCI server ready on {server.bound_address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(server.serve_forever())
    await stop.wait()
    logging.getLogger("gridledger.app").info("stopping: closing connections and the store")
    serving.cancel()
    await server.stop()
    app.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="gridledger ABCI application server")
    parser.add_argument("--db", type=Path, required=True, help="LevelDB directory of the app state")
    parser.add_argument("--address", default="tcp://127.0.0.1:26658", help="tcp://HOST:PORT or unix://PATH")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.db, args.address))


if __name__ == "__main__":
    main()
