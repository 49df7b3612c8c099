"""A `gridledger p2p listen` process for tests: started with its own home, stopped with SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

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
