"""The supervisor's ordering and exit codes, with small stand-in processes instead of the app and CometBFT."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import psutil
import pytest

from node import supervisor
from node.supervisor import NodeSpec, Supervisor

# A stand-in app: announces readiness like node.app_main, then waits for SIGTERM.
# ON_TERM decides how it reacts: exit 0 (clean), exit 3 (fails while stopping), ignore.
APP = """
import signal, sys, time
on_term = sys.argv[1]
def handler(*_):
    if on_term == "ignore":
        return
    print("app stopping", flush=True)
    sys.exit(0 if on_term == "clean" else 3)
signal.signal(signal.SIGTERM, handler)
if on_term != "never-ready":
    print("ABCI server ready on tcp://127.0.0.1:1", flush=True)
else:
    sys.exit(4)
while True:
    signal.pause()
"""
CONSENSUS = """
import signal, sys
def handler(*_):
    print("consensus stopping", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, handler)
print("consensus running", flush=True)
while True:
    signal.pause()
"""


class FakeSpec(NodeSpec):
    def __init__(self, home: Path, on_term: str = "clean") -> None:
        super().__init__(home=home, abci_address="tcp://127.0.0.1:1")
        self.on_term = on_term

    def app_argv(self) -> list[str]:
        return [sys.executable, "-c", APP, self.on_term]

    def cometbft_argv(self) -> list[str]:
        return [sys.executable, "-c", CONSENSUS]


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, line: str) -> None:
        with self.changed:
            self.lines.append(line)
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: any(text in line for line in self.lines), timeout), self.lines

    def index(self, text: str) -> int:
        return next(i for i, line in enumerate(self.lines) if text in line)


def started(tmp_path: Path, on_term: str = "clean", grace: float = 15.0) -> tuple[Supervisor, Recorder]:
    log = Recorder()
    sup = Supervisor(FakeSpec(tmp_path, on_term), sink=log, grace=grace)
    sup.start(ready_timeout=20)
    log.wait_for("consensus running")
    return sup, log


def children_gone(sup: Supervisor) -> bool:
    assert sup.app is not None and sup.comet is not None
    return not any(psutil.pid_exists(p.pid) and p.poll() is None for p in (sup.app, sup.comet))


def test_basic_stop_request_stops_consensus_then_app(tmp_path: Path) -> None:
    sup, log = started(tmp_path)
    sup.request_stop()
    assert sup.wait() == supervisor.EXIT_OK
    assert log.index("CometBFT stopped (exit 0)") < log.index("ABCI app stopped (exit 0)")
    assert log.index("consensus stopping") < log.index("app stopping")
    assert any(line.startswith("[app] ") for line in log.lines)
    assert any(line.startswith("[cometbft] ") for line in log.lines)
    assert children_gone(sup)


def test_basic_app_death_stops_consensus_with_10(tmp_path: Path) -> None:
    sup, log = started(tmp_path)
    assert sup.app is not None
    sup.app.kill()
    assert sup.wait() == supervisor.EXIT_APP_DIED
    assert "consensus stopping" in "\n".join(log.lines)
    assert children_gone(sup)


def test_basic_consensus_death_stops_app_with_11(tmp_path: Path) -> None:
    sup, log = started(tmp_path)
    assert sup.comet is not None
    sup.comet.kill()
    assert sup.wait() == supervisor.EXIT_COMETBFT_DIED
    assert "app stopping" in "\n".join(log.lines)
    assert children_gone(sup)


def test_invalid_app_never_ready_raises(tmp_path: Path) -> None:
    sup = Supervisor(FakeSpec(tmp_path, "never-ready"), sink=Recorder())
    with pytest.raises(ChildProcessError, match="before listening"):
        sup.start(ready_timeout=20)
    assert sup.comet is None


@pytest.mark.parametrize(("on_term", "note"), [("fail", "ABCI app stopped (exit 3)"),
                                               ("ignore", "ignored SIGTERM")])
def test_invalid_child_failing_during_shutdown_gives_13(tmp_path: Path, on_term: str, note: str) -> None:
    sup, log = started(tmp_path, on_term, grace=1.0)
    sup.request_stop()
    assert sup.wait() == supervisor.EXIT_SHUTDOWN_FAILED
    assert note in "\n".join(log.lines)
    assert children_gone(sup)
