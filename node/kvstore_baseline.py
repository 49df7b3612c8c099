"""The consensus engine alone: the pinned ``cometbft`` running its built-in kvstore app.

``cometbft start --proxy_app kvstore`` needs no ABCI process: CometBFT runs its
example key-value application in-process. Transactions are ``key=value`` bytes
(``KvWorkload`` pads them to the size of gridledger's transactions). Measuring
it with the same generator, rates, validator counts and block settings on the
same machine gives the baseline every experiment report divides by.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
from pathlib import Path
from typing import IO

from node import cometbft

KVSTORE_PROXY_APP = "kvstore"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Child-side: get SIGTERM when the parent dies, so no CometBFT outlives the run."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class KvstoreNode:
    """One ``cometbft start`` with the built-in kvstore, its output in a log file."""

    def __init__(self, home: Path, rpc_laddr: str, p2p_laddr: str, log_path: Path, log_level: str = "error") -> None:
        self.home = home
        self.rpc_laddr = rpc_laddr
        self.p2p_laddr = p2p_laddr
        self.log_path = log_path
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(cometbft.binary()), "start", "--home", str(self.home), "--proxy_app", KVSTORE_PROXY_APP,
             "--rpc.laddr", self.rpc_laddr, "--p2p.laddr", self.p2p_laddr, "--log_level", self.log_level],
            stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
