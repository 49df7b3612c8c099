"""`gridledger node start` as a real process tree (app, CometBFT, libp2p host): no orphans whatever dies,
exit codes say who died, a dead p2p host is restarted while consensus goes on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from cli.main import app
from lab.ports import free_base_port
from node import supervisor
from node.rpc import CometRpc

pytestmark = pytest.mark.e2e


class RunningNode:
    """One `node start` process with its log in a file."""

    def __init__(self, home: Path, rpc_url: str) -> None:
        self.log = home / "supervisor.log"
        self.log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)],
                                         stdout=log, stderr=subprocess.STDOUT)
        self.rpc = CometRpc(rpc_url, timeout=3)
        try:
            self.rpc.wait_height(1, timeout=60)
        except Exception:
            self.cleanup()
            raise AssertionError(f"node did not start:\n{self.output()[-3000:]}") from None
        self.children = psutil.Process(self.proc.pid).children(recursive=True)

    def output(self) -> str:
        return self.log.read_bytes()[self.log_start:].decode()

    def wait_output(self, text: str, occurrences: int = 1, timeout: float = 60) -> None:
        """Poll the log file (a file has no event to wait on) until ``text`` appears ``occurrences`` times."""
        deadline = time.monotonic() + timeout
        while self.output().count(text) < occurrences:
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()[-3000:]}"
            time.sleep(0.2)

    def child(self, marker: str) -> psutil.Process:
        return next(c for c in self.children if any(marker in part for part in c.cmdline()))

    def assert_no_orphans(self) -> None:
        _, alive = psutil.wait_procs(self.children, timeout=30)
        assert not alive, f"still running: {[p.cmdline() for p in alive]}"

    def cleanup(self) -> None:
        try:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for proc in [*tree, *getattr(self, "children", [])]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.proc.wait(30)
        self.rpc.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("supervised")
    port = free_base_port(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        patch.setenv("GRIDLEDGER_PASSPHRASE", "x")
        result = CliRunner().invoke(app, [
            "node", "init", "--home", str(base / "node"), "--moniker", "dso-solo", "--role", "dso", "--zones", "z1",
            "--keyring-dir", str(base / "keys"), "--base-port", str(port), "--p2p-host", "127.0.0.1",
            "--timeout-commit", "200ms", "--output", "json"])
    assert result.exit_code == 0, result.output
    return base / "node", f"http://127.0.0.1:{json.loads(result.stdout)['ports']['rpc']}"


@pytest.fixture
def node(home: tuple[Path, str]) -> Iterator[RunningNode]:
    running = RunningNode(*home)
    try:
        yield running
    finally:
        running.cleanup()


def test_sigkilled_supervisor_leaves_no_orphans(node: RunningNode) -> None:
    assert len(node.children) == 3
    assert node.child("p2p")  # node init enabled the libp2p host
    os.kill(node.proc.pid, signal.SIGKILL)
    node.proc.wait(10)
    node.assert_no_orphans()


def test_dead_app_stops_cometbft_with_exit_10(node: RunningNode) -> None:
    node.child("node.app_main").kill()
    assert node.proc.wait(60) == supervisor.EXIT_APP_DIED, node.output()[-3000:]
    node.assert_no_orphans()


def test_dead_cometbft_stops_app_with_exit_11(node: RunningNode) -> None:
    node.child("cometbft").kill()
    assert node.proc.wait(60) == supervisor.EXIT_COMETBFT_DIED, node.output()[-3000:]
    node.assert_no_orphans()


def test_sigterm_stops_cometbft_then_app_with_exit_0(node: RunningNode) -> None:
    status = CliRunner().invoke(app, ["node", "status", "--node", node.rpc.url, "--output", "json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    assert report["validator"] is True and report["voting_power"] == 10 and report["height"] >= 1
    assert report["moniker"] == "dso-solo" and report["catching_up"] is False and report["validators"] == 1

    node.wait_output("[p2p]   publishing the market feed")
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(60) == supervisor.EXIT_OK
    node.assert_no_orphans()
    lines = node.output().splitlines()
    p2p = next(i for i, line in enumerate(lines) if "[supervisor] p2p host stopped (exit 0)" in line)
    comet = next(i for i, line in enumerate(lines) if "[supervisor] CometBFT stopped (exit 0)" in line)
    app_stop = next(i for i, line in enumerate(lines) if "[supervisor] ABCI app stopped (exit 0)" in line)
    assert p2p < comet < app_stop


def test_dead_p2p_host_is_restarted_and_the_chain_goes_on(node: RunningNode) -> None:
    node.wait_output("publishing the market feed")
    before = node.rpc.height()
    first = node.child("p2p")
    first.kill()
    node.wait_output("restarting the p2p host (restart 1)")
    node.wait_output("publishing the market feed", occurrences=2)  # the new host serves the feed again
    node.rpc.wait_height(before + 2, timeout=60)
    assert node.proc.poll() is None
    restarted = [c for c in psutil.Process(node.proc.pid).children() if "p2p" in c.cmdline()]
    assert len(restarted) == 1 and restarted[0].pid != first.pid
    node.children.append(restarted[0])
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(60) == supervisor.EXIT_OK
    node.assert_no_orphans()
