"""Run the ABCI app, CometBFT and (when the home enables it) the libp2p host as one supervised unit.

Order: the app starts first, CometBFT only once the app listens, then the
libp2p host (``p2p listen --publish-feed`` of this node, if the home holds
``p2p.toml``). On SIGINT or SIGTERM the p2p host stops first, then CometBFT
(so it never calls a vanished app), then the app. If the app or CometBFT
dies, the others are stopped and the exit code says which:

    0   stopped by SIGINT/SIGTERM; every child ended cleanly
    10  the ABCI app died
    11  CometBFT died
    12  a child did not start
    13  stopped by SIGINT/SIGTERM, but a child failed while stopping
        (non-zero exit, or it ignored SIGTERM and had to be killed)
    14  the app reached its halt height (``[upgrade] halt_height``, for an
        upgrade at an agreed height), or was started at or past it

The p2p host only gossips (offers, the advisory market feed): its death must
not stop consensus. The supervisor logs it and restarts it after a back-off
(1 s, 2 s, 5 s, 10 s, 30 s, then every 60 s; back to 1 s once a run lasted
60 s). Its failure while stopping counts for 13 like the other children's
(ending by the supervisor's SIGTERM before its handler is installed is no failure:
it holds no state).

The dashboard (``python -m dashboard``, docs/dashboard.md) runs when
gridledger.toml has a ``[dashboard]`` block: started after CometBFT, stopped
first, read-only like the p2p host, so its death is logged and consensus goes
on (it is not restarted).

Before CometBFT starts, the events of the app's last 64 committed blocks are
re-indexed (``cometbft reindex-event``): CometBFT indexes a block's transactions
asynchronously after committing it, so an abrupt stop can lose the newest index
entries for good and ``/tx?hash=`` would no longer find committed transactions
(found by tests/test_faults_e2e.py; upstream tendermint#3211). Re-indexing is
idempotent and takes well under a second; if it fails, CometBFT starts anyway.

No orphans: the children run in their own session (a Ctrl-C in the terminal
reaches only the supervisor, which then stops them in order) and get
PR_SET_PDEATHSIG, so even a SIGKILLed supervisor takes them down. They are
started through ``node/parent_death_exec.py``, which asks for it in a fresh
single-threaded interpreter: the supervisor has threads (output forwarding,
child watchers), and Python code in ``preexec_fn`` between fork and exec of a
threaded process can deadlock.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from node import cometbft, parent_death_exec
from node.p2p import node_host

EXIT_OK = 0
EXIT_APP_DIED = 10
EXIT_COMETBFT_DIED = 11
EXIT_START_FAILED = 12
EXIT_SHUTDOWN_FAILED = 13
EXIT_HALTED = 14
APP_EXIT_HALTED = 3
"""node.app_main's exit code when started at or past its halt height."""
HALT_LINE = "halt height reached"
"""node.app_main prints this once it has committed its halt height."""
READY_LINE = "ABCI server ready"
# node.app_main ends its ready line with the app's last committed height.
_READY_HEIGHT = re.compile(r"at height (\d+)\s*$")
# Blocks whose CometBFT events are re-indexed at every start (see the module doc).
REINDEX_BLOCKS = 64
_REINDEX_TIMEOUT_S = 120.0
# Without a signal to wake on (signal handlers only run between bytecodes), the
# main loop re-checks at this interval; child exits and stop requests wake it at once.
_WAKE_CHECK_S = 1.0
# How long after CometBFT's exit the app may still be seen to end, when its
# death is what made CometBFT stop (process exit is not instantaneous).
_FOLLOW_S = 1.0
# Restart delays of a dead p2p host; a run this long counts as healthy and resets them.
P2P_RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
P2P_HEALTHY_RUN_S = 60.0


@dataclass
class NodeSpec:
    """Everything needed to run one node. ``None`` addresses keep the home's config.toml values."""

    home: Path
    abci_address: str
    rpc_laddr: str | None = None
    p2p_laddr: str | None = None
    app_metrics: str | None = None
    log_level: str | None = None
    """CometBFT's ``--log_level`` (debug | info | error | none, or per module); None: config.toml's."""
    app_log_level: str | None = None
    """The app's Python log level (DEBUG, INFO, WARNING, ERROR); None: INFO."""
    extra_args: list[str] = field(default_factory=list)
    p2p: bool = False
    """Run the libp2p host (the home holds p2p.toml)."""
    dashboard: bool = False
    """Serve the dashboard (the home's gridledger.toml has a [dashboard] block; docs/dashboard.md)."""
    snapshots: dict[str, int] = field(default_factory=dict)
    """State-sync snapshot settings of config/gridledger.toml [snapshots]: interval, keep, chunk_bytes."""
    retain_blocks: int | None = None
    """[pruning] retain_blocks of config/gridledger.toml; None: the app's default (abci_app/retention.py)."""
    halt_height: int | None = None
    """[upgrade] halt_height of config/gridledger.toml: the app stops once it has committed this block."""

    @classmethod
    def from_home(cls, home: Path, *, abci_address: str | None = None, rpc_laddr: str | None = None,
                  p2p_laddr: str | None = None, app_metrics: str | None = None) -> NodeSpec:
        """A spec from the home's config.toml (ABCI address) and config/gridledger.toml (app metrics)."""
        config = cometbft.read_config(home)
        settings = cometbft.read_node_settings(home)
        return cls(home=home, abci_address=abci_address or config.get("proxy_app", "tcp://127.0.0.1:26658"),
                   rpc_laddr=rpc_laddr, p2p_laddr=p2p_laddr,
                   app_metrics=app_metrics if app_metrics is not None else settings.get("app_metrics") or None,
                   p2p=node_host.enabled(home), dashboard="dashboard" in settings,
                   snapshots=dict(settings.get("snapshots", {})),
                   retain_blocks=settings.get("pruning", {}).get("retain_blocks"),
                   halt_height=settings.get("upgrade", {}).get("halt_height"))

    def rpc_url(self) -> str:
        """Where processes on this machine reach the node's RPC (a wildcard listener via loopback)."""
        return cometbft.rpc_url(self.home, self.rpc_laddr)

    def app_argv(self) -> list[str]:
        argv = [sys.executable, "-m", "node.app_main", "--db", str(self.home / "data" / "app"),
                "--address", self.abci_address]
        if self.app_metrics:
            argv += ["--metrics", self.app_metrics]
        if self.app_log_level:
            argv += ["--log-level", self.app_log_level]
        for name in ("interval", "keep", "chunk_bytes"):
            if name in self.snapshots:
                argv += [f"--snapshot-{name.replace('_', '-')}", str(self.snapshots[name])]
        if self.retain_blocks is not None:
            argv += ["--retain-blocks", str(self.retain_blocks)]
        if self.halt_height:
            argv += ["--halt-height", str(self.halt_height)]
        return argv

    def cometbft_argv(self) -> list[str]:
        argv = [str(cometbft.binary()), "start", "--home", str(self.home), "--proxy_app", self.abci_address]
        for flag, value in (("--rpc.laddr", self.rpc_laddr), ("--p2p.laddr", self.p2p_laddr),
                            ("--log_level", self.log_level)):
            if value is not None:
                argv += [flag, value]
        return [*argv, *self.extra_args]

    def dashboard_argv(self) -> list[str] | None:
        """The web dashboard of this node (it reads the rest of its options from the home)."""
        if not self.dashboard:
            return None
        return [sys.executable, "-m", "dashboard", "--home", str(self.home), "--node", self.rpc_url()]

    def p2p_argv(self) -> list[str] | None:
        """The libp2p host publishing this node's market feed; None when the home does not enable it."""
        return node_host.listen_argv(self.home, self.rpc_url()) if self.p2p else None

    def reindex_argv(self, start: int, end: int) -> list[str] | None:
        """Re-index CometBFT's events of blocks start..end; None when the home indexes nothing."""
        if cometbft.read_config(self.home).get("tx_index", {}).get("indexer", "kv") == "null":
            return None
        return [str(cometbft.binary()), "reindex-event", "--home", str(self.home), "--start-height", str(start),
                "--end-height", str(end)]


LOG_LEVELS = {"debug": ("debug", "DEBUG"), "info": ("info", "INFO"), "warn": ("error", "WARNING"),
              "error": ("error", "ERROR")}
"""One ``--log-level`` for a whole node: the CometBFT level and the app's Python level it stands for.
CometBFT has no warning level, so ``warn`` keeps its errors only."""


def log_levels(level: str) -> tuple[str, str]:
    """(CometBFT ``--log_level``, app ``--log-level``) for debug | info | warn | error."""
    try:
        return LOG_LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}") from None


def _exited(proc: subprocess.Popen[str]) -> bool:
    """True once the process has ended, even if its watcher thread has not recorded the code yet."""
    if proc.poll() is not None:
        return True
    try:
        return psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _ends_within(proc: subprocess.Popen[str], seconds: float) -> bool:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


class HaltHeightReached(ChildProcessError):
    """The app refused to start: its state is at or past the configured halt height."""


@dataclass(frozen=True)
class ChildExit:
    name: str
    returncode: int
    killed: bool
    """True if it ignored SIGTERM for the whole grace period and was SIGKILLed."""
    stateless: bool = False
    """Holds nothing to save (the p2p host): ending by our SIGTERM, e.g. while still starting, is clean too."""

    @property
    def clean(self) -> bool:
        ended_well = self.returncode == 0 or (self.stateless and self.returncode == -signal.SIGTERM)
        return ended_well and not self.killed


_STDOUT_LOCK = threading.Lock()


def write_line(line: str) -> None:
    """The default sink: one write of the complete line under a lock.

    ``print`` writes the text and the newline separately, so lines forwarded by
    the per-child threads used to merge (``[app] a[cometbft] b``, then an empty line).
    """
    with _STDOUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _forward(stream: IO[str], prefix: str, sink: Callable[[str], None],
             on_line: Callable[[str], None] | None) -> None:
    for line in stream:
        if on_line is not None:
            on_line(line)
        sink(f"{prefix} {line.rstrip()}")


class Supervisor:
    def __init__(self, spec: NodeSpec, sink: Callable[[str], None] | None = None, grace: float = 15.0) -> None:
        self.spec = spec
        self.sink = sink or write_line
        self.grace = grace
        """Seconds a child may take to stop after SIGTERM before it is killed."""
        self.app: subprocess.Popen[str] | None = None
        self.comet: subprocess.Popen[str] | None = None
        self.p2p: subprocess.Popen[str] | None = None
        """The running p2p host; None while it waits for a restart (or is not enabled)."""
        self.p2p_restarts = 0
        self.dashboard: subprocess.Popen[str] | None = None
        """The running dashboard; like the p2p host it holds no state, so its death never stops the node."""
        self._p2p_started = 0.0
        self._p2p_restart_at: float | None = None
        self._p2p_failures = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.app_height: int | None = None
        """The app's last committed height, from its ready line (None: it did not say)."""
        self.halted = threading.Event()
        """The app said it committed its halt height: the node stops with EXIT_HALTED."""

    def _spawn(self, argv: list[str], prefix: str, ready: threading.Event | None = None) -> subprocess.Popen[str]:
        # A child's output is forwarded, never interpreted: bytes that are not UTF-8 become U+FFFD
        # instead of ending the forwarding thread (and then blocking the child on a full pipe).
        # SIGTERM when the supervisor dies, even by SIGKILL (see the module doc).
        proc = subprocess.Popen(parent_death_exec.command(os.getpid(), argv), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8", errors="replace",
                                start_new_session=True)
        assert proc.stdout is not None

        def on_line(line: str) -> None:
            if line.startswith(HALT_LINE):
                self.halted.set()
                self._wake.set()
            if READY_LINE not in line:
                return
            assert ready is not None
            match = _READY_HEIGHT.search(line)
            if match is not None and not ready.is_set():
                self.app_height = int(match.group(1))
            ready.set()
            self._wake.set()

        threading.Thread(target=_forward, args=(proc.stdout, prefix, self.sink, on_line if ready else None),
                         daemon=True).start()
        threading.Thread(target=self._watch, args=(proc,), daemon=True).start()
        return proc

    def _watch(self, proc: subprocess.Popen[str]) -> None:
        proc.wait()
        self._wake.set()

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start the app, wait until it listens, then start CometBFT."""
        ready = threading.Event()
        self.app = self._spawn(self.spec.app_argv(), "[app]", ready)
        deadline = time.monotonic() + ready_timeout
        while not ready.is_set():
            if self.app.poll() is not None:
                if self.app.returncode == APP_EXIT_HALTED:
                    raise HaltHeightReached("the ABCI app is at its halt height: start the new version, or "
                                            "remove [upgrade] halt_height from config/gridledger.toml")
                raise ChildProcessError(f"ABCI app exited with {self.app.returncode} before listening")
            if self._stop.is_set():
                raise ChildProcessError("stop requested while the ABCI app was starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ABCI app did not start listening within {ready_timeout:g}s")
            self._wake.wait(_WAKE_CHECK_S)
            self._wake.clear()
        self._reindex()
        self.sink(f"[supervisor] app listens on {self.spec.abci_address}; starting CometBFT")
        self.comet = self._spawn(self.spec.cometbft_argv(), "[cometbft]")
        if self.spec.p2p_argv() is not None:
            self.sink("[supervisor] starting the p2p host")
            self._start_p2p()
        dashboard_argv = self.spec.dashboard_argv()
        if dashboard_argv is not None:
            self.sink("[supervisor] starting the dashboard")
            self.dashboard = self._spawn(dashboard_argv, "[dashboard]")

    def _reindex(self) -> None:
        """Re-index CometBFT's events of the app's newest blocks (see the module doc); never fatal."""
        if not self.app_height:
            return
        start, end = max(1, self.app_height - REINDEX_BLOCKS + 1), self.app_height
        argv = self.spec.reindex_argv(start, end)
        if argv is None:
            return
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, encoding="utf-8",
                                    errors="replace", timeout=_REINDEX_TIMEOUT_S, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.sink(f"[supervisor] re-indexing blocks {start}..{end} failed ({exc}); starting CometBFT anyway")
            return
        # reindex-event reports some failures on stdout with exit code 0.
        if result.returncode == 0 and "event re-index finished" in result.stdout:
            self.sink(f"[supervisor] re-indexed CometBFT's events of blocks {start}..{end}")
            return
        output = (result.stdout + result.stderr).strip().splitlines()
        reason = output[-1] if output else "no output"
        self.sink(f"[supervisor] re-indexing blocks {start}..{end} failed (exit {result.returncode}: {reason}); "
                  "starting CometBFT anyway")

    def _start_p2p(self) -> None:
        argv = self.spec.p2p_argv()
        assert argv is not None
        self._p2p_restart_at = None
        self._p2p_started = time.monotonic()
        self.p2p = self._spawn(argv, "[p2p]")

    def _tend_p2p(self) -> None:
        """Notice a dead p2p host and restart it once its back-off has passed."""
        if self.p2p is not None and _exited(self.p2p):
            ran = time.monotonic() - self._p2p_started
            self._p2p_failures = 1 if ran >= P2P_HEALTHY_RUN_S else self._p2p_failures + 1
            delay = P2P_RESTART_BACKOFF_S[min(self._p2p_failures, len(P2P_RESTART_BACKOFF_S)) - 1]
            self.sink(f"[supervisor] p2p host exited with {self.p2p.wait()} after {ran:.0f}s; consensus goes on, "
                      f"restarting it in {delay:g}s")
            self.p2p = None
            self._p2p_restart_at = time.monotonic() + delay
        if self.p2p is None and self._p2p_restart_at is not None and time.monotonic() >= self._p2p_restart_at:
            self.p2p_restarts += 1
            self.sink(f"[supervisor] restarting the p2p host (restart {self.p2p_restarts})")
            self._start_p2p()

    def _next_check(self) -> float:
        if self._p2p_restart_at is None:
            return _WAKE_CHECK_S
        return max(0.0, min(_WAKE_CHECK_S, self._p2p_restart_at - time.monotonic()))

    def wait(self) -> int:
        """Block until a stop request or the app's or CometBFT's death; stop all; return the exit code."""
        assert self.app is not None and self.comet is not None
        code = EXIT_OK
        while not self._stop.is_set():
            if _exited(self.app) or (_exited(self.comet) and _ends_within(self.app, _FOLLOW_S)):
                # A dead app makes CometBFT stop itself a moment later; a dead CometBFT
                # never takes the app down. So an app gone by then died first.
                self.sink(f"[supervisor] ABCI app exited with {self.app.wait()}; stopping CometBFT")
                code = EXIT_APP_DIED
                break
            if _exited(self.comet):
                self.sink(f"[supervisor] CometBFT exited with {self.comet.wait()}; stopping the app")
                code = EXIT_COMETBFT_DIED
                break
            if self.halted.is_set():
                self.sink("[supervisor] the app committed its halt height; stopping the node for the upgrade")
                code = EXIT_HALTED
                break
            self._tend_p2p()
            if self.dashboard is not None and _exited(self.dashboard):
                self.sink(f"[supervisor] dashboard exited with {self.dashboard.wait()}; consensus goes on")
                self.dashboard = None
            self._wake.wait(self._next_check())
            self._wake.clear()
        exits = self.shutdown()
        if code == EXIT_OK and not all(e.clean for e in exits):
            code = EXIT_SHUTDOWN_FAILED
        self.sink(f"[supervisor] exit code {code}")
        return code

    def request_stop(self, *_: object) -> None:
        """Signal-handler safe: only sets flags."""
        self._stop.set()
        self._wake.set()

    def shutdown(self) -> list[ChildExit]:
        """The p2p host, CometBFT, then the app; SIGKILL whatever ignores SIGTERM for ``self.grace`` seconds."""
        grace = self.grace
        exits: list[ChildExit] = []
        self._p2p_restart_at = None
        for name, proc in (("dashboard", self.dashboard), ("p2p host", self.p2p), ("CometBFT", self.comet),
                           ("ABCI app", self.app)):
            if proc is None:
                continue
            stopped_by_us = proc.poll() is None
            killed = False
            if stopped_by_us:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.sink(f"[supervisor] {name} ignored SIGTERM for {grace:g}s; killing it")
                    proc.kill()
                    proc.wait()
                    killed = True
                self.sink(f"[supervisor] {name} stopped (exit {proc.returncode})")
            exits.append(ChildExit(name, proc.returncode, killed, stateless=proc in (self.p2p, self.dashboard)))
        return exits


def run(spec: NodeSpec, sink: Callable[[str], None] | None = None) -> int:
    """Run a node in the foreground until SIGINT/SIGTERM or a child's death; ``sink`` takes its lines (stdout)."""
    supervisor = Supervisor(spec, sink=sink)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    try:
        supervisor.start()
    except (ChildProcessError, TimeoutError, FileNotFoundError, OSError) as exc:
        print(f"[supervisor] {exc}", file=sys.stderr, flush=True)
        supervisor.shutdown()
        return EXIT_HALTED if isinstance(exc, HaltHeightReached) else EXIT_START_FAILED
    return supervisor.wait()
