"""p2p test helpers: a `gridledger p2p listen` process (own home, stopped with SIGTERM) and polling."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GRIDLEDGER = [sys.executable, "-c", "from cli.main import main; main()"]
STOP_TIMEOUT_S = 20.0


class Listener:
    """Runs `gridledger p2p listen --home HOME ARGS...` and waits until its control socket is up."""

    def __init__(self, home: Path, env: dict[str, str], *args: str) -> None:
        self.home = home
        self.process = subprocess.Popen(
            [*GRIDLEDGER, "p2p", "listen", "--home", str(home), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.addr = ""
        assert self.process.stderr is not None
        # The listener announces its address and then its control socket: wait for those lines.
        for line in self.process.stderr:
            if "listening:" in line:
                self.addr = line.split()[-1]
            if "control socket:" in line:
                break
        assert self.addr, "listener did not start"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_S)


def eventually(check: Callable[[], Any], deadline_s: float) -> Any:
    """Poll ``check`` (a query of a host's control socket or the node) until it is truthy.

    A host exposes no event for "this offer is cached" or "the mesh has formed", so these
    conditions are polled every 0.1 s, with a deadline.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
