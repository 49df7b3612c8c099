"""`testnet up` / `down`: each node a detached `gridledger node start`, found again by its pid file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from lab.testnet.model import NodeInfo, Testnet, TestnetError
from node.p2p import node_host
from node.rpc import CometRpc, NodeUnreachable, RpcError

# --- processes -------------------------------------------------------------------------


def pid_file(testnet: Testnet, node: NodeInfo) -> Path:
    return testnet.home(node) / "node.pid"


def log_file(testnet: Testnet, node: NodeInfo) -> Path:
    return testnet.home(node) / "node.log"


def _is_our_supervisor(proc: psutil.Process, home: Path) -> bool:
    """Guards against a recycled pid: the process must be `node start` of this very home."""
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "node" in cmdline and "start" in cmdline and str(home) in cmdline


def running_supervisor(testnet: Testnet, node: NodeInfo) -> psutil.Process | None:
    """The live supervisor of a node, if its pid file names one."""
    path = pid_file(testnet, node)
    try:
        record = json.loads(path.read_text())
        proc = psutil.Process(int(record["pid"]))
        if abs(proc.create_time() - float(record["started"])) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (FileNotFoundError, ValueError, KeyError, psutil.NoSuchProcess):
        return None
    return proc if _is_our_supervisor(proc, testnet.home(node)) else None


def start_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)]


def start_node(testnet: Testnet, node: NodeInfo) -> psutil.Process:
    """Start `gridledger node start` detached (own session), output appended to node.log."""
    home = testnet.home(node)
    with open(log_file(testnet, node), "ab") as log:
        proc = subprocess.Popen(start_command(home), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    handle = psutil.Process(proc.pid)
    pid_file(testnet, node).write_text(json.dumps({"pid": proc.pid, "started": handle.create_time()}) + "\n")
    return handle


def p2p_status(testnet: Testnet, node: NodeInfo, timeout: float = 2.0) -> dict[str, Any] | None:
    """The running libp2p host's status from its control socket; None if none answers."""
    # Imported here: the control module loads trio and py-libp2p, which no other testnet command needs.
    from node.p2p.control import ControlClient, ControlError, socket_path

    try:
        return ControlClient(socket_path(testnet.home(node)), timeout=timeout).request("status")
    except (ControlError, OSError, ValueError):
        return None


def wait_p2p(testnet: Testnet, node: NodeInfo, proc: psutil.Process, deadline: float) -> str | None:
    """Poll until the node's p2p host answers on its control socket (no event to wait on)."""
    while p2p_status(testnet, node) is None:
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            return "exited while starting (see its node.log)"
        if time.monotonic() > deadline:
            return "p2p host not answering yet (see its node.log)"
        time.sleep(0.2)
    return None


def wait_rpc(node: NodeInfo, proc: psutil.Process, deadline: float) -> str | None:
    """Poll until the node's RPC answers; the problem text if it died or the deadline passed."""
    rpc = CometRpc(node.rpc_url, timeout=2.0)
    try:
        while True:
            try:
                rpc.status()
                return None
            except (NodeUnreachable, RpcError):
                pass
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return "exited while starting (see its node.log)"
            if time.monotonic() > deadline:
                return "RPC not answering yet (see its node.log)"
            time.sleep(0.2)
    finally:
        rpc.close()


def up(testnet: Testnet, nodes: Sequence[NodeInfo], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Start the nodes not yet running and wait for their RPC; one result record per node."""
    if testnet.docker:
        raise TestnetError(f"{testnet.directory} was made with --docker: start it with `docker compose up`")
    started: list[tuple[NodeInfo, psutil.Process]] = []
    results: dict[str, dict[str, Any]] = {}
    for node in nodes:
        running = running_supervisor(testnet, node)
        if running is not None:
            results[node.name] = {"node": node.name, "moniker": node.moniker, "pid": running.pid,
                                  "rpc": node.rpc_url, "state": "already running"}
            continue
        started.append((node, start_node(testnet, node)))
    deadline = time.monotonic() + timeout
    for node, proc in started:
        problem = wait_rpc(node, proc, deadline)
        if problem is None and node_host.enabled(testnet.home(node)):
            problem = wait_p2p(testnet, node, proc, deadline)
        results[node.name] = {"node": node.name, "moniker": node.moniker, "pid": proc.pid, "rpc": node.rpc_url,
                              "state": problem or "started"}
    return [results[node.name] for node in nodes]


def process_tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [proc]


def down(testnet: Testnet, nodes: Sequence[NodeInfo], grace: float = 30.0) -> list[dict[str, Any]]:
    """SIGTERM each supervisor (it stops CometBFT, then the app); SIGKILL whatever outlives ``grace``."""
    targets: list[tuple[NodeInfo, list[psutil.Process]]] = []
    results: dict[str, dict[str, Any]] = {}
    for node in nodes:
        proc = running_supervisor(testnet, node)
        if proc is None:
            results[node.name] = {"node": node.name, "moniker": node.moniker, "state": "not running"}
            pid_file(testnet, node).unlink(missing_ok=True)
            continue
        tree = process_tree(proc)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
        targets.append((node, tree))
    everything = [p for _, tree in targets for p in tree]
    _, alive = psutil.wait_procs(everything, timeout=grace)
    for straggler in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            straggler.kill()
    psutil.wait_procs(alive, timeout=10)
    killed = {p.pid for p in alive}
    for node, tree in targets:
        forced = any(p.pid in killed for p in tree)
        results[node.name] = {"node": node.name, "moniker": node.moniker, "pid": tree[0].pid,
                              "state": "killed after the grace period" if forced else "stopped"}
        pid_file(testnet, node).unlink(missing_ok=True)
    return [results[node.name] for node in nodes]
