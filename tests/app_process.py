"""The ABCI app as a subprocess (``python -m node.app_main``) with its log captured."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import free_port


class AppProcess:
    def __init__(self, db: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.app_main", "--db", str(db), "--address", self.address],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(30):
            self.stop()
            raise TimeoutError("app server did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip())
                self._changed.notify_all()
            if "ABCI server ready" in line:
                self._ready.set()

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Block until a log line containing ``text`` appears; return it."""
        with self._changed:
            found = self._changed.wait_for(lambda: any(text in line for line in self.lines), timeout)
            if not found:
                raise AssertionError(f"no log line with {text!r}:\n" + "\n".join(self.lines))
            return next(line for line in self.lines if text in line)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
