"""The supervisor's ordering and exit codes, with small stand-in processes for the app, CometBFT and the p2p host."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import psutil
import pytest

from node import supervisor
from node.supervisor import NodeSpec, Supervisor

# A stand-in app: announces readiness like node.app_main, then waits for SIGTERM.
# ON_TERM decides how it reacts: exit 0 (clean), exit 3 (fails while stopping), ignore.
# The app and CometBFT stand-ins note their stopping in a shared file (the last argument) before
# they exit: unlike their output, copied by one thread per child, its order is the order they stopped in.
APP = """
import signal, sys, time
on_term = sys.argv[1]
def handler(*_):
    if on_term == "ignore":
        return
    with open(sys.argv[2], "a") as stops:
        stops.write("app\\n")
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
    if len(sys.argv) > 1:  # the file where the stand-ins note their stopping, when given
        with open(sys.argv[1], "a") as stops:
            stops.write("consensus\\n")
    print("consensus stopping", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, handler)
print("consensus running", flush=True)
while True:
    signal.pause()
"""

# A stand-in p2p host: counts its starts in a file, so a restarted one says which run it is.
P2P = """
import pathlib, signal, sys
runs = pathlib.Path(sys.argv[1])
run = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(run))
def handler(*_):
    print("p2p stopping", flush=True)
    sys.exit(0 if sys.argv[2] == "clean" else 5)
signal.signal(signal.SIGTERM, handler)
print(f"p2p running (run {run})", flush=True)
while True:
    signal.pause()
"""


class FakeSpec(NodeSpec):
    def __init__(self, home: Path, on_term: str = "clean", p2p_on_term: str | None = None) -> None:
        super().__init__(home=home, abci_address="tcp://127.0.0.1:1", p2p=p2p_on_term is not None)
        self.on_term = on_term
        self.p2p_on_term = p2p_on_term
        self.stops = home / "stops"

    def app_argv(self) -> list[str]:
        return [sys.executable, "-c", APP, self.on_term, str(self.stops)]

    def cometbft_argv(self) -> list[str]:
        return [sys.executable, "-c", CONSENSUS, str(self.stops)]

    def p2p_argv(self) -> list[str] | None:
        if self.p2p_on_term is None:
            return None
        return [sys.executable, "-c", P2P, str(self.home / "p2p-runs"), self.p2p_on_term]


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
    children = [p for p in (sup.app, sup.comet, sup.p2p) if p is not None]
    return not any(psutil.pid_exists(p.pid) and p.poll() is None for p in children)


def with_p2p(tmp_path: Path, p2p_on_term: str = "clean", on_term: str = "clean",
             grace: float = 15.0) -> tuple[Supervisor, Recorder, threading.Thread, list[int]]:
    """A supervisor with a p2p host, its wait() running in a thread whose exit code lands in the list."""
    log = Recorder()
    sup = Supervisor(FakeSpec(tmp_path, on_term, p2p_on_term), sink=log, grace=grace)
    sup.start(ready_timeout=20)
    log.wait_for("p2p running (run 1)")
    log.wait_for("consensus running")  # its SIGTERM handler is in place: a stop now is a clean one
    codes: list[int] = []
    waiter = threading.Thread(target=lambda: codes.append(sup.wait()))
    waiter.start()
    return sup, log, waiter, codes


def stopped(sup: Supervisor, waiter: threading.Thread, codes: list[int]) -> int:
    sup.request_stop()
    waiter.join(60)
    assert not waiter.is_alive()
    return codes[0]


def test_basic_stop_request_stops_consensus_then_app(tmp_path: Path) -> None:
    sup, log = started(tmp_path)
    sup.request_stop()
    assert sup.wait() == supervisor.EXIT_OK
    assert log.index("CometBFT stopped (exit 0)") < log.index("ABCI app stopped (exit 0)")
    # The children's lines are copied by one thread each, maybe after wait() returned and in any
    # order; the order they stopped in is the one they noted in the shared file.
    log.wait_for("consensus stopping")
    log.wait_for("app stopping")
    assert (tmp_path / "stops").read_text().split() == ["consensus", "app"]
    assert any(line.startswith("[app] ") for line in log.lines)
    assert any(line.startswith("[cometbft] ") for line in log.lines)
    assert children_gone(sup)


def test_basic_app_death_stops_consensus_with_10(tmp_path: Path) -> None:
    sup, log = started(tmp_path)
    assert sup.app is not None
    sup.app.kill()
    assert sup.wait() == supervisor.EXIT_APP_DIED
    log.wait_for("consensus stopping")
    assert children_gone(sup)


def test_basic_consensus_death_stops_app_with_11(tmp_path: Path) -> None:
    sup, log = started(tmp_path)
    assert sup.comet is not None
    sup.comet.kill()
    assert sup.wait() == supervisor.EXIT_COMETBFT_DIED
    log.wait_for("app stopping")
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


def test_basic_p2p_host_starts_last_and_stops_first(tmp_path: Path) -> None:
    sup, log, waiter, codes = with_p2p(tmp_path)
    # Spawn order (the children's own output may interleave): app ready, CometBFT, then the p2p host.
    assert log.index("starting CometBFT") < log.index("[supervisor] starting the p2p host")
    assert sup.comet is not None and sup.p2p is not None
    assert psutil.Process(sup.comet.pid).create_time() <= psutil.Process(sup.p2p.pid).create_time()
    assert any(line.startswith("[p2p] ") for line in log.lines)
    assert stopped(sup, waiter, codes) == supervisor.EXIT_OK
    assert log.index("p2p host stopped (exit 0)") < log.index("CometBFT stopped (exit 0)")
    assert log.index("CometBFT stopped (exit 0)") < log.index("ABCI app stopped (exit 0)")
    log.wait_for("p2p stopping")  # it got SIGTERM and ended on its own
    assert children_gone(sup)


def test_basic_dead_p2p_host_is_restarted_and_consensus_goes_on(tmp_path: Path) -> None:
    sup, log, waiter, codes = with_p2p(tmp_path)
    assert sup.p2p is not None and sup.comet is not None
    first, comet = sup.p2p, sup.comet
    first.kill()
    log.wait_for("consensus goes on, restarting it in 1s")
    log.wait_for("p2p running (run 2)")
    assert first.poll() is not None and sup.p2p is not first and sup.p2p_restarts == 1
    assert comet.poll() is None and not codes  # CometBFT and the app never noticed
    assert stopped(sup, waiter, codes) == supervisor.EXIT_OK
    assert children_gone(sup)


def test_basic_app_death_with_p2p_host_stops_everything_with_10(tmp_path: Path) -> None:
    sup, log, waiter, codes = with_p2p(tmp_path)
    assert sup.app is not None
    sup.app.kill()
    waiter.join(60)
    assert codes == [supervisor.EXIT_APP_DIED]
    log.wait_for("p2p stopping")
    assert children_gone(sup)


def test_invalid_p2p_host_failing_while_stopping_gives_13(tmp_path: Path) -> None:
    sup, log, waiter, codes = with_p2p(tmp_path, p2p_on_term="fail")
    assert stopped(sup, waiter, codes) == supervisor.EXIT_SHUTDOWN_FAILED
    assert "p2p host stopped (exit 5)" in "\n".join(log.lines)
    assert children_gone(sup)


def test_basic_p2p_argv_only_for_a_home_with_p2p_toml(tmp_path: Path) -> None:
    spec = NodeSpec(home=tmp_path, abci_address="tcp://127.0.0.1:1", rpc_laddr="tcp://0.0.0.0:26657")
    assert spec.p2p_argv() is None
    argv = NodeSpec(home=tmp_path, abci_address="tcp://127.0.0.1:1", rpc_laddr="tcp://0.0.0.0:26657",
                    p2p=True).p2p_argv()
    assert argv is not None
    assert argv[argv.index("--home") + 1] == str(tmp_path) and "--publish-feed" in argv
    assert argv[argv.index("--node") + 1] == "http://127.0.0.1:26657"  # a wildcard listener via loopback


def test_basic_p2p_host_ended_by_our_sigterm_is_a_clean_stop() -> None:
    """A p2p host stopped while still importing (no handler yet) dies of SIGTERM: no failure, it holds no state."""
    assert supervisor.ChildExit("p2p host", -signal.SIGTERM, killed=False, stateless=True).clean
    assert not supervisor.ChildExit("CometBFT", -signal.SIGTERM, killed=False).clean
    assert not supervisor.ChildExit("p2p host", 1, killed=False, stateless=True).clean


def test_basic_children_arm_their_death_signal_without_preexec_fn(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor has threads: Python code between fork and exec (preexec_fn) could deadlock its children."""
    calls: list[tuple[list[str], dict[str, object]]] = []
    popen = supervisor.subprocess.Popen

    def recording(argv: list[str], **kwargs: object) -> object:
        calls.append((argv, kwargs))
        return popen(argv, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(supervisor.subprocess, "Popen", recording)
    sup = Supervisor(NodeSpec(home=tmp_path, abci_address="tcp://127.0.0.1:1"), sink=lambda _line: None)
    # The child reports its death signal setting (PR_GET_PDEATHSIG = 2) through its exit code.
    child = [sys.executable, "-c", "import ctypes, signal, sys; s = ctypes.c_int(); "
             "ctypes.CDLL(None).prctl(2, ctypes.byref(s), 0, 0, 0); sys.exit(s.value)"]
    assert sup._spawn(child, "[child]").wait(30) == signal.SIGTERM
    (argv, kwargs), = calls
    assert "preexec_fn" not in kwargs and argv[-len(child):] == child and "parent_death_exec" in argv[3]
