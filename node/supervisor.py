"""Run the ABCI app and CometBFT as one supervised unit.

Order: the app starts first and CometBFT only once the app listens; on SIGINT
or SIGTERM CometBFT stops first (so it never calls a vanished app), then the
app. If either child dies, the other is stopped and the exit code says which:

    0   stopped by SIGINT/SIGTERM (CometBFT, then the app, were asked to stop)
    10  the ABCI app died
    11  CometBFT died
    12  a child did not start

Children get PR_SET_PDEATHSIG, so even a SIGKILLed supervisor leaves no orphans.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from node import cometbft

EXIT_APP_DIED = 10
EXIT_COMETBFT_DIED = 11
EXIT_START_FAILED = 12
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class NodeSpec:
    """Everything needed to run one node."""

    home: Path
    abci_address: str
    rpc_laddr: str
    p2p_laddr: str
    log_level: str = "info"
    extra_args: list[str] = field(default_factory=list)


def _forward(stream: IO[str], prefix: str, sink: Callable[[str], None], ready: threading.Event | None) -> None:
    for line in stream:
        if ready is not None and "ABCI server ready" in line:
            ready.set()
        sink(f"{prefix} {line.rstrip()}")


class Supervisor:
    def __init__(self, spec: NodeSpec, sink: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.sink = sink or (lambda line: print(line, flush=True))
        self.app: subprocess.Popen[str] | None = None
        self.comet: subprocess.Popen[str] | None = None
        self._stop = threading.Event()

    def _spawn(self, argv: list[str], prefix: str, ready: threading.Event | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_die_with_parent)
        assert proc.stdout is not None
        threading.Thread(target=_forward, args=(proc.stdout, prefix, self.sink, ready), daemon=True).start()
        return proc

    def start(self, ready_timeout: float = 60.0) -> None:
        spec = self.spec
        ready = threading.Event()
        self.app = self._spawn(
            [sys.executable, "-m", "node.app_main", "--db", str(spec.home / "data" / "app"),
             "--address", spec.abci_address],
            "[app]", ready,
        )
        # Wait for the app's ready line (or its death) before CometBFT dials it.
        while not ready.wait(0.1):
            if self.app.poll() is not None:
                raise ChildProcessError(f"ABCI app exited with {self.app.returncode} before listening")
            ready_timeout -= 0.1
            if ready_timeout <= 0:
                raise TimeoutError("ABCI app did not start listening")
        self.comet = self._spawn(
            [str(cometbft.binary()), "start", "--home", str(spec.home), "--proxy_app", spec.abci_address,
             "--rpc.laddr", spec.rpc_laddr, "--p2p.laddr", spec.p2p_laddr, "--log_level", spec.log_level,
             *spec.extra_args],
            "[cometbft]",
        )

    def wait(self) -> int:
        """Block until a signal or a child's death; stop both; return the exit code."""
        assert self.app is not None and self.comet is not None
        code = 0
        while not self._stop.wait(0.2):
            if self.app.poll() is not None:
                self.sink(f"[supervisor] ABCI app exited with {self.app.returncode}; stopping CometBFT")
                code = EXIT_APP_DIED
                break
            if self.comet.poll() is not None:
                self.sink(f"[supervisor] CometBFT exited with {self.comet.returncode}; stopping the app")
                code = EXIT_COMETBFT_DIED
                break
        self.shutdown()
        return code

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def shutdown(self, grace: float = 15.0) -> None:
        """CometBFT first, then the app; SIGKILL whatever ignores SIGTERM."""
        for proc in (self.comet, self.app):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run(spec: NodeSpec) -> int:
    """Run a node in the foreground until SIGINT/SIGTERM or a child's death."""
    supervisor = Supervisor(spec)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    try:
        supervisor.start()
    except (ChildProcessError, TimeoutError, FileNotFoundError) as exc:
        print(f"[supervisor] {exc}", file=sys.stderr)
        supervisor.shutdown()
        return EXIT_START_FAILED
    return supervisor.wait()


