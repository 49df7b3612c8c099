"""An ``AbciServer`` on loopback, served by an event loop in a background thread, for tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from abci_app.server import AbciServer, Application

T = TypeVar("T")


class ServerThread:
    """Start with ``with ServerThread(app, **limits) as server:``; ``server.port`` is the bound port."""

    def __init__(self, app: Application, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = AbciServer(app, "tcp://127.0.0.1:0", **options)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.call(self.server.start)
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @property
    def port(self) -> int:
        return int(self.server.bound_address.rsplit(":", 1)[1])

    def call(self, coroutine: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``coroutine()`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine(), self.loop).result(timeout)

    def read(self, getter: Callable[[], T]) -> T:
        """Evaluate ``getter`` on the server's loop (so it sees a consistent state)."""

        async def run() -> T:
            return getter()

        result: T = self.call(run)
        return result
