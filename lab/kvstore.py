"""The consensus engine alone: the pinned ``cometbft`` running its built-in kvstore app.

``cometbft start --proxy_app kvstore`` needs no ABCI process: CometBFT runs its
example key-value application in-process. Transactions are ``key=value`` bytes
(``KvWorkload`` pads them to the size of gridledger's transactions). Measuring
it with the same generator, rates, validator counts and block settings on the
same machine gives the baseline every experiment report divides by.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import IO

from node import cometbft, parent_death_exec

KVSTORE_PROXY_APP = "kvstore"


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

    def argv(self) -> list[str]:
        return [str(cometbft.binary()), "start", "--home", str(self.home), "--proxy_app", KVSTORE_PROXY_APP,
                "--rpc.laddr", self.rpc_laddr, "--p2p.laddr", self.p2p_laddr, "--log_level", self.log_level]

    def start(self) -> None:
        """Start CometBFT in its own session (a terminal's Ctrl-C reaches only us; we stop it in order).

        It runs through ``parent_death_exec`` so that it gets SIGTERM if this
        process dies without stopping it, even by SIGKILL: no CometBFT outlives
        the run. (No ``preexec_fn``: Python code between fork and exec can
        deadlock in a threaded process.)
        """
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(parent_death_exec.command(os.getpid(), self.argv()), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

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
