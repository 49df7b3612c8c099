"""Serve the dashboard with uvicorn on a socket bound before anything starts.

Binding first means a busy or forbidden address is a clear error before any
connection to the chain is made, and ``--listen HOST:0`` gets a free port
whose real address is printed (tests use that).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

from dashboard.app import charts_available, create_app
from dashboard.config import ConfigError, DashboardConfig, Listen
from dashboard.names import Roster, RosterError, load_roster

GRACEFUL_SHUTDOWN_S = 3


def bind(listen: Listen) -> socket.socket:
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.host, listen.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {listen.host}:{listen.port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def prepare(config: DashboardConfig) -> Roster | None:
    """Everything that can fail before serving: the roster (the socket is bound by ``serve``)."""
    if config.roster is None:
        return None
    try:
        return load_roster(config.roster)
    except RosterError as exc:
        raise ConfigError(str(exc)) from exc


def serve(config: DashboardConfig, announce: Callable[[str], None]) -> None:
    """Run until SIGINT/SIGTERM. ``announce`` gets one line with the address (and warnings)."""
    roster = prepare(config)
    sock = bind(config.listen)
    url = config.listen.url(sock.getsockname()[1])
    if not config.listen.loopback:
        announce(f"warning: listening on {config.listen.host}, beyond this machine (the dashboard is read-only "
                 "and has no login)")
    if not charts_available():
        announce("warning: the chart library is not installed (run `make setup`); pages show tables only")
    uv_config = uvicorn.Config(create_app(config, roster), log_level="warning", access_log=False, lifespan="on",
                               ws="none", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = uvicorn.Server(uv_config)
    with _stop_signals_end_cleanly(server):
        announce(f"dashboard: {url}  (node {config.nodes[0]}; Ctrl-C stops it)")
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()


@contextlib.contextmanager
def _stop_signals_end_cleanly(server: uvicorn.Server) -> Iterator[None]:
    """After its graceful shutdown uvicorn raises the stop signal again for the previous handler; with
    this one in place a requested stop ends the process with 0 (the supervisor counts that as clean).
    A signal just before uvicorn listens for them (or just after) still stops it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopped(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC call otherwise
