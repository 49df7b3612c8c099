"""Fault suite: a real 4-validator network under steady mixed load, each node in its own network namespace.

Faults, one episode at a time, at seeded random moments:

* ``kill -9`` of a node's ABCI app (half of them aimed at Commit: the app's main
  thread is watched through /proc and killed while it is writing or syncing
  LevelDB's write-ahead log, which only Commit does) and of a node's CometBFT;
  the supervisor then stops the node's other process and the test restarts it;
* one validator paused (SIGSTOP/SIGCONT of its process tree): the other three
  keep committing; two validators paused: the chain halts, then resumes;
* one validator cut off by a partition: the other three keep committing; a 2/2
  split: the chain halts; both heal.

After every episode: every node reaches a common height and has the same app
hash there, and every transaction that the load driver saw committed is found
by ``/tx?hash=`` on every node. The test prints a table (fault, count,
divergences, lost transactions, longest stall) and how long it took.

The load is the test's own: signed transfers and limit orders of the roster's
participants, sent with ``broadcast_tx_sync`` to random live nodes, and a
follower that reads every block to learn which transactions committed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.market.msgs import PlaceOrder
from abci_app.ledger.msg import Msg
from abci_app.ledger.tx import encode_tx
from lab import testnet as tn
from node import cometbft, parent_death_exec
from node.client.keystore import Keystore
from tests import netns

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

ROSTER = cometbft.REPO_ROOT / "config" / "testnet-4.toml"
SEED = int(os.environ.get("GRIDLEDGER_FAULT_SEED", "1515"))
LOAD_TX_PER_S = 12.0
APP_KILLS = 8  # half of them aimed at Commit
COMETBFT_KILLS = 4
RPC_TIMEOUT_S = 3.0
SETTLE_TIMEOUT_S = 120.0
PAUSE_S = 6.0
PARTITION_S = 10.0
# While one validator is out, the other three must commit at least this many heights (within
# PROGRESS_TIMEOUT_S); while the chain must halt, it may finish at most one block already in flight.
MAJORITY_GAIN = 3
PROGRESS_TIMEOUT_S = 30.0
# Linux x86-64 syscall numbers of the calls that write or sync a file.
WRITE_SYSCALLS = {1: "write", 18: "pwrite64", 20: "writev", 74: "fsync", 75: "fdatasync"}
REPLAY = re.compile(r"ABCI Replay Blocks.*appHeight=(\d+) storeHeight=(\d+) stateHeight=(\d+)")


def rpc_call(client: httpx.Client, url: str, method: str, **params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = client.post(url, json=body).json()
    if "error" in reply:
        raise LookupError(f"{method}: {reply['error']}")
    return reply["result"]


def tx_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest().upper()


# --- the network -----------------------------------------------------------------------------------------------


@dataclass
class Node:
    index: int
    info: tn.NodeInfo
    home: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.info.rpc_url

    def child(self, marker: str) -> psutil.Process | None:
        """The supervisor's child whose command line contains ``marker`` (``node.app_main``, ``cometbft``)."""
        if self.proc is None:
            return None
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.proc.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if any(marker in part for part in child.cmdline()[:3]):
                        return child
        return None

    def tree(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        return []


class Cluster:
    """Four supervised nodes, each started with `ip netns exec` in its own namespace."""

    def __init__(self, lab: netns.Lab, testnet: tn.Testnet) -> None:
        self.lab = lab
        self.nodes = [Node(i, info, testnet.home(info), testnet.home(info) / "node.log")
                      for i, info in enumerate(testnet.nodes)]
        self.down: set[int] = set()
        """Nodes the load and the follower leave alone right now (killed, paused)."""
        self.lock = threading.Lock()

    def start(self, index: int) -> None:
        node = self.nodes[index]
        argv = [*self.lab.exec_prefix(index), sys.executable, "-m", "cli.main", "node", "start",
                "--home", str(node.home)]
        with node.log.open("ab") as log:
            # Dies with the test process even if that is SIGKILLed (the supervisor takes its children along).
            node.proc = subprocess.Popen(parent_death_exec.command(os.getpid(), argv), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=cometbft.REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def live(self) -> list[Node]:
        with self.lock:
            return [n for n in self.nodes if n.index not in self.down]

    def set_down(self, index: int, down: bool) -> None:
        with self.lock:
            (self.down.add if down else self.down.discard)(index)

    def stop_all(self) -> None:
        """SIGCONT (a paused node cannot stop), SIGTERM the supervisors, SIGKILL whatever outlives 30 s."""
        trees = [p for node in self.nodes for p in node.tree()]
        for proc in trees:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGCONT)
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(trees, timeout=30)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=10)
        for node in self.nodes:
            if node.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(10)


# --- load and commit tracking ----------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the test knows about committed blocks and transactions."""

    committed: dict[str, int] = field(default_factory=dict)
    """tx hash -> height of the block that holds it."""
    seen_at: dict[int, float] = field(default_factory=dict)
    """height -> monotonic time the follower first saw it."""
    height: int = 0
    accepted: int = 0
    """Transactions CheckTx accepted."""
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time without a new block within [start, end]."""
        with self.lock:
            times = sorted(t for t in self.seen_at.values() if start <= t <= end)
        marks = [start, *times, end]
        return max(b - a for a, b in itertools.pairwise(marks))


class Load:
    """A steady stream of signed transfers and orders, and a follower reading every committed block."""

    def __init__(self, cluster: Cluster, keys: dict[str, SigningKey], chain_id: str, seed: int) -> None:
        self.cluster = cluster
        self.keys = keys
        self.chain_id = chain_id
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.nonces: dict[str, int] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._follow, daemon=True)]

    def start(self) -> None:
        client = httpx.Client(timeout=RPC_TIMEOUT_S)
        for name, key in self.keys.items():
            account = rpc_call(client, self.cluster.nodes[0].url, "abci_query", path=f"/account/{key.account}")
            self.nonces[name] = json.loads(base64.b64decode(account["response"]["value"]))["nonce"]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _message(self, name: str) -> Msg:
        others = [n for n in self.keys if n != name]
        if self.rng.random() < 0.6:
            return Transfer(recipient=self.keys[self.rng.choice(others)].account, amount=self.rng.randrange(1, 1000),
                            memo="fault-suite")
        slot = (int(time.time()) // 900 + self.rng.randrange(2, 40)) * 900
        ask = name in ("alice", "carol")
        return PlaceOrder(side="ask" if ask else "bid", quantity_wh=100 * self.rng.randrange(1, 4),
                          price=100 * self.rng.randrange(2000, 3000), slot=slot, valid_until=slot - 300,
                          tif="limit", client_order_id="", origin="solar" if ask else "", accept_origins=())

    def _send(self) -> None:
        client = httpx.Client(timeout=RPC_TIMEOUT_S)
        names = sorted(self.keys)
        turn = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            next_at += 1.0 / LOAD_TX_PER_S
            self.stop.wait(max(0.0, next_at - time.monotonic()))
            live = self.cluster.live()
            if not live:
                continue
            name = names[turn % len(names)]
            turn += 1
            nonce = self.nonces[name] + 1
            self.nonces[name] = nonce  # gaps are fine: a nonce only has to grow
            raw = encode_tx(self.chain_id, self._message(name), self.keys[name], nonce)
            node = self.rng.choice(live)
            try:
                result = rpc_call(client, node.url, "broadcast_tx_sync", tx=base64.b64encode(raw).decode())
            except (httpx.HTTPError, LookupError, ValueError) as exc:
                with self.ledger.lock:
                    self.ledger.refused[f"rpc: {type(exc).__name__}"] += 1
                continue
            with self.ledger.lock:
                if int(result["code"]) == 0:
                    self.ledger.accepted += 1
                else:
                    self.ledger.refused[f"code {result['code']}"] += 1

    def _follow(self) -> None:
        client = httpx.Client(timeout=RPC_TIMEOUT_S)
        while not self.stop.is_set():
            progressed = False
            for node in self.cluster.live():
                try:
                    top = int(rpc_call(client, node.url, "status")["sync_info"]["latest_block_height"])
                    while self.ledger.height < top and not self.stop.is_set():
                        height = self.ledger.height + 1
                        block = rpc_call(client, node.url, "block", height=str(height))["block"]
                        now = time.monotonic()
                        with self.ledger.lock:
                            for tx in block["data"]["txs"] or []:
                                self.ledger.committed[tx_hash(base64.b64decode(tx))] = height
                            self.ledger.seen_at[height] = now
                            self.ledger.height = height
                        progressed = True
                except (httpx.HTTPError, LookupError, ValueError, KeyError):
                    continue
                break
            if not progressed:
                self.stop.wait(0.05)


# --- checks ----------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    count: int = 0
    divergences: int = 0
    lost: int = 0
    longest_stall: float = 0.0
    late: int = 0
    """Transactions a node found only on a second look (its indexer was still catching up)."""
    notes: list[str] = field(default_factory=list)
    """Failures."""
    notes_info: list[str] = field(default_factory=list)
    """Observations that are no failure."""


class Checker:
    def __init__(self, cluster: Cluster, ledger: Ledger) -> None:
        self.cluster = cluster
        self.ledger = ledger
        self.client = httpx.Client(timeout=10)
        self.verified: set[str] = set()

    def height(self, node: Node) -> int:
        try:
            return int(rpc_call(self.client, node.url, "status")["sync_info"]["latest_block_height"])
        except (httpx.HTTPError, LookupError, ValueError):
            return -1

    def heights(self) -> list[int]:
        return [self.height(node) for node in self.cluster.nodes]

    def wait_all_reach(self, target: int, timeout: float = SETTLE_TIMEOUT_S) -> list[int]:
        """Poll (a height has no event to wait on) until every node has committed ``target``."""
        deadline = time.monotonic() + timeout
        while True:
            heights = self.heights()
            if min(heights) >= target or time.monotonic() > deadline:
                return heights
            time.sleep(0.2)

    def app_hashes(self, height: int) -> dict[int, str | None]:
        hashes: dict[int, str | None] = {}
        for node in self.cluster.nodes:
            try:
                header = rpc_call(self.client, node.url, "block", height=str(height))["block"]["header"]
                hashes[node.index] = header["app_hash"]
            except (httpx.HTTPError, LookupError, ValueError, KeyError):
                hashes[node.index] = None
        return hashes

    def missing(self, hashes: list[str]) -> dict[str, list[int]]:
        """Transactions that some node's `/tx?hash=` does not find, and on which nodes (JSON-RPC batches,
        at most CometBFT's 10 requests each)."""
        lost: dict[str, list[int]] = defaultdict(list)
        for node in self.cluster.nodes:
            for start in range(0, len(hashes), 10):
                chunk = hashes[start : start + 10]
                body = [{"jsonrpc": "2.0", "id": i, "method": "tx",
                         "params": {"hash": base64.b64encode(bytes.fromhex(h)).decode(), "prove": False}}
                        for i, h in enumerate(chunk)]
                replies = self.client.post(node.url, json=body).json()
                if isinstance(replies, dict):  # CometBFT answers a batch of one with a bare object
                    replies = [replies]
                found = {int(r["id"]) for r in replies if "result" in r}
                for i, h in enumerate(chunk):
                    if i not in found:
                        lost[h].append(node.index)
        return dict(lost)

    def describe(self, digest: str, nodes: list[int]) -> str:
        """Where a missing transaction is: its height, and whether each node's block there holds it."""
        with self.ledger.lock:
            height = self.ledger.committed[digest]
        holds = {}
        for index in nodes:
            try:
                block = rpc_call(self.client, self.cluster.nodes[index].url, "block", height=str(height))["block"]
                holds[index] = digest in {tx_hash(base64.b64decode(tx)) for tx in block["data"]["txs"] or []}
            except (httpx.HTTPError, LookupError, ValueError, KeyError):
                holds[index] = None
        return f"{digest[:12]} at height {height}, not found by /tx on nodes {nodes}, in their block: {holds}"

    def settle(self, tally: Tally, started: float, everything: bool = False) -> None:
        """After an episode: common height, equal app hashes, every committed tx on every node; into ``tally``."""
        target = max(self.heights()) + 2
        heights = self.wait_all_reach(target)
        tally.longest_stall = max(tally.longest_stall, self.ledger.longest_gap(started, time.monotonic()))
        if min(heights) < target:
            tally.divergences += sum(h < target for h in heights)
            tally.notes.append(f"nodes did not reach height {target}: {heights}")
            return
        hashes = self.app_hashes(target)
        if len(set(hashes.values())) != 1 or None in hashes.values():
            tally.divergences += len(hashes) - Counter(hashes.values()).most_common(1)[0][1]
            tally.notes.append(f"app hashes at height {target} differ: {hashes}")
        with self.ledger.lock:
            committed = [h for h, at in self.ledger.committed.items() if at <= target]
        fresh = [h for h in committed if h not in self.verified]
        older = sorted(set(committed) - set(fresh))
        sample = older if everything else random.Random(target).sample(older, min(200, len(older)))
        lost = self.missing(fresh + sample)
        # CometBFT indexes a block's transactions after committing it, asynchronously: a node that has
        # just caught up may not find its newest ones yet. Lost means still not found after a while.
        deadline = time.monotonic() + 30
        first_look = lost
        while lost and time.monotonic() < deadline:
            time.sleep(0.5)
            lost = self.missing(sorted(lost))
        if len(first_look) > len(lost):
            with self.ledger.lock:
                where = sorted({(self.ledger.committed[h], n) for h, nodes in first_look.items() for n in nodes})
            tally.late += len(first_look) - len(lost)
            tally.notes_info.append(f"not indexed yet at height {target}: (height, node) {where[:8]}")
        tally.lost += len(lost)
        if lost:
            tally.notes.append(f"{len(lost)} committed transactions missing: " + "; ".join(
                self.describe(h, nodes) for h, nodes in sorted(lost.items())[:5]))
        self.verified.update(h for h in fresh if h not in lost)


# --- faults ----------------------------------------------------------------------------------------------------


def main_thread_write(app: psutil.Process) -> str | None:
    """The LevelDB log write or sync the app's main thread is in right now (None: something else)."""
    try:
        fields = Path(f"/proc/{app.pid}/task/{app.pid}/syscall").read_text().split()
        if not fields or not fields[0].isdigit() or int(fields[0]) not in WRITE_SYSCALLS:
            return None
        path = os.readlink(f"/proc/{app.pid}/fd/{int(fields[1], 16)}")
    except OSError:
        return None
    if "/data/app/" in path and path.endswith(".log"):
        return f"{WRITE_SYSCALLS[int(fields[0])]}({Path(path).name})"
    return None


def aim_at_commit(app: psutil.Process, timeout: float) -> str | None:
    """Watch the app's main thread until it writes or syncs LevelDB's log (only Commit does); SIGKILL it then.

    Returns what it was doing, or None if the deadline passed (then it is killed anyway).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        caught = main_thread_write(app)
        if caught:
            app.kill()
            return caught
    state = main_thread_write(app)
    app.kill()
    return state


class Campaign:
    def __init__(self, cluster: Cluster, load: Load, checker: Checker, seed: int) -> None:
        self.cluster = cluster
        self.load = load
        self.checker = checker
        self.rng = random.Random(seed)
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self.in_commit = 0
        self.handshakes: Counter[tuple[int, int]] = Counter()
        """(app height - block store height, state height - block store height) at each restart's handshake."""

    def _restart(self, index: int, expected_exit: int, tally: Tally) -> None:
        node = self.cluster.nodes[index]
        assert node.proc is not None
        code = node.proc.wait(60)
        if code != expected_exit:
            tally.notes.append(f"node{index} supervisor exited with {code}, expected {expected_exit}")
        offset = node.log.stat().st_size
        self.cluster.start(index)
        deadline = time.monotonic() + 60
        while self.checker.height(node) < 0:
            assert time.monotonic() < deadline, f"node{index} did not come back:\n{node.log.read_text()[-3000:]}"
            time.sleep(0.2)
        self.cluster.set_down(index, False)
        with node.log.open("rb") as log:
            log.seek(offset)
            replay = REPLAY.search(log.read().decode("utf-8", "replace"))
        if replay is None:
            tally.notes.append(f"node{index}: no ABCI handshake in its log after the restart")
            return
        app_height, store_height, state_height = (int(replay.group(i)) for i in (1, 2, 3))
        self.handshakes[(app_height - store_height, state_height - store_height)] += 1

    def kill_app(self, aimed: bool) -> None:
        tally = self.tallies["kill -9 app"]
        index = self.rng.randrange(len(self.cluster.nodes))
        node = self.cluster.nodes[index]
        app = node.child("node.app_main")
        assert app is not None, f"node{index} has no app process:\n{node.log.read_text()[-4000:]}"
        started = time.monotonic()
        self.load.stop.wait(self.rng.uniform(0.2, 2.0))
        self.cluster.set_down(index, True)
        if aimed:
            caught = aim_at_commit(app, timeout=5.0)
        else:
            caught = main_thread_write(app)
            app.kill()
        if caught:
            self.in_commit += 1
        tally.count += 1
        self._restart(index, expected_exit=10, tally=tally)
        self.checker.settle(tally, started)

    def kill_cometbft(self) -> None:
        tally = self.tallies["kill -9 CometBFT"]
        index = self.rng.randrange(len(self.cluster.nodes))
        node = self.cluster.nodes[index]
        comet = node.child("cometbft")
        assert comet is not None, f"node{index} has no CometBFT process:\n{node.log.read_text()[-4000:]}"
        started = time.monotonic()
        self.load.stop.wait(self.rng.uniform(0.2, 2.0))
        self.cluster.set_down(index, True)
        comet.kill()
        tally.count += 1
        self._restart(index, expected_exit=11, tally=tally)
        self.checker.settle(tally, started)

    def _advance_while(self, seconds: float, watched: list[int], need: int | None = None) -> int:
        """How many heights the nodes in ``watched`` gain (the most any of them gains) while the fault lasts:
        ``seconds``, or with ``need``, until they gained that many (at most PROGRESS_TIMEOUT_S): on a busy
        machine the three remaining validators, all of whose votes are needed, may be slow but not stuck."""
        before = [self.checker.height(self.cluster.nodes[i]) for i in watched]
        start = time.monotonic()
        while True:
            time.sleep(0.5)  # heights are polled: the RPC has no event to wait on here
            after = [self.checker.height(self.cluster.nodes[i]) for i in watched]
            gained = max(b - a for a, b in zip(before, after, strict=True))
            elapsed = time.monotonic() - start
            if elapsed >= seconds and (need is None or gained >= need or elapsed >= PROGRESS_TIMEOUT_S):
                return gained

    def pause(self, count: int) -> None:
        name = "pause 1 validator" if count == 1 else "pause 2 validators"
        tally = self.tallies[name]
        chosen = self.rng.sample(range(len(self.cluster.nodes)), count)
        others = [i for i in range(len(self.cluster.nodes)) if i not in chosen]
        started = time.monotonic()
        stopped: list[psutil.Process] = []
        for index in chosen:
            self.cluster.set_down(index, True)
            for proc in self.cluster.nodes[index].tree():
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGSTOP)
                    stopped.append(proc)
        try:
            time.sleep(1.0)  # let a block already in flight finish
            gained = self._advance_while(PAUSE_S, others, need=None if count == 2 else MAJORITY_GAIN)
        finally:
            for proc in stopped:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGCONT)
            for index in chosen:
                self.cluster.set_down(index, False)
        tally.count += 1
        self._expect_progress(tally, gained, halts=count == 2)
        self.checker.settle(tally, started)

    def partition(self, groups: list[list[int]]) -> None:
        name = "partition 1|3" if min(len(g) for g in groups) == 1 else "partition 2|2"
        tally = self.tallies[name]
        majority = max(groups, key=len)
        started = time.monotonic()
        self.cluster.lab.partition(groups)
        try:
            time.sleep(1.0)
            gained = self._advance_while(PARTITION_S, majority, need=None if len(majority) == 2 else MAJORITY_GAIN)
        finally:
            self.cluster.lab.heal()
        tally.count += 1
        self._expect_progress(tally, gained, halts=len(majority) == 2)
        self.checker.settle(tally, started)

    @staticmethod
    def _expect_progress(tally: Tally, gained: int, halts: bool) -> None:
        if halts and gained > 1:
            tally.notes.append(f"the chain was expected to halt but gained {gained} heights")
        if not halts and gained < MAJORITY_GAIN:
            tally.notes.append(f"the majority was expected to keep committing but gained {gained} heights")

    def table(self, duration: float) -> str:
        rows = [("fault", "count", "divergences", "lost txs", "longest stall")]
        for name, tally in self.tallies.items():
            rows.append((name, str(tally.count), str(tally.divergences), str(tally.lost),
                         f"{tally.longest_stall:.1f} s"))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        ledger = self.load.ledger
        lines += [
            f"app kills observed inside Commit (main thread writing/syncing LevelDB's log): "
            f"{self.in_commit} of {self.tallies['kill -9 app'].count}",
            "restart handshakes (app height, CometBFT state height, relative to its block store): "
            + ", ".join(f"app {a:+d} state {s:+d}: {n}" for (a, s), n in sorted(self.handshakes.items())),
            "found only on a second look (a node's tx indexer still catching up after its restart): "
            + (", ".join(f"{name}: {t.late}" for name, t in self.tallies.items() if t.late) or "none"),
            f"load: {ledger.accepted} transactions accepted by CheckTx, {len(ledger.committed)} committed in "
            f"{ledger.height} blocks; refused: {dict(ledger.refused)}",
            f"duration: {duration:.0f} s (seed {SEED})",
        ]
        lines += [f"{name}: {note}" for name, tally in self.tallies.items() for note in tally.notes_info]
        return "\n".join(lines)


# --- the test --------------------------------------------------------------------------------------------------


@pytest.fixture
def lab() -> Iterator[netns.Lab]:
    try:
        netns.probe()
    except netns.NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    created = netns.Lab.create(4)
    try:
        yield created
    finally:
        problems = created.destroy()
        assert not problems, f"teardown left: {problems}"


def participant_keys(testnet: tn.Testnet) -> dict[str, SigningKey]:
    keyring = Keystore(testnet.keyring)
    return {name: keyring.load(name, tn.TESTNET_PASSPHRASE) for name in ("alice", "bob", "carol", "dave")}


def test_faults_keep_every_node_in_agreement(tmp_path: Path, tools_bin: Path, lab: netns.Lab,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    began = time.monotonic()
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")
    timing = cometbft.Timing(timeout_commit="100ms", timeout_propose="1s")
    hosts = tuple(lab.address(i) for i in range(4))
    testnet = tn.init_testnet(tn.load_roster(ROSTER), tn.InitOptions(out=tmp_path / "net", base_port=26650,
                                                                      timing=timing, hosts=hosts))
    cluster = Cluster(lab, testnet)
    load: Load | None = None
    try:
        for index in range(4):
            cluster.start(index)
        checker = Checker(cluster, Ledger())
        assert min(checker.wait_all_reach(2, timeout=90)) >= 2, "the network did not start"
        load = Load(cluster, participant_keys(testnet), testnet.chain_id, SEED)
        checker.ledger = load.ledger
        load.start()
        campaign = Campaign(cluster, load, checker, SEED)
        warmup = campaign.tallies["warm-up (no fault)"]
        warmup.count = 1
        started = time.monotonic()
        load.stop.wait(5)
        checker.settle(warmup, started)

        episodes: list[tuple[str, Callable[[], None]]] = []
        episodes += [("kill -9 app (aimed at Commit)", lambda: campaign.kill_app(aimed=True))] * (APP_KILLS // 2)
        episodes += [("kill -9 app", lambda: campaign.kill_app(aimed=False))] * (APP_KILLS - APP_KILLS // 2)
        episodes += [("kill -9 CometBFT", campaign.kill_cometbft)] * COMETBFT_KILLS
        episodes += [("pause 1", lambda: campaign.pause(1))] * 2 + [("pause 2", lambda: campaign.pause(2))]
        isolated = campaign.rng.randrange(4)
        episodes += [("isolate one", lambda: campaign.partition([[isolated], [i for i in range(4) if i != isolated]])),
                     ("split 2|2", lambda: campaign.partition([[0, 1], [2, 3]]))]
        campaign.rng.shuffle(episodes)
        for number, (label, episode) in enumerate(episodes, 1):
            episode()
            print(f"episode {number}/{len(episodes)} ({label}) done at {time.monotonic() - began:.0f} s, "
                  f"height {load.ledger.height}", flush=True)

        final = campaign.tallies["final check (all txs)"]
        final.count = 1
        load.close()
        checker.settle(final, time.monotonic(), everything=True)
        logs = "".join(node.log.read_text(errors="replace") for node in cluster.nodes)
        reindex_failures = [line for line in logs.splitlines() if "re-indexing blocks" in line]
        with capsys.disabled():  # the table belongs in the CI log, passed or not
            print("\n" + campaign.table(time.monotonic() - began))
            print(f"supervisor re-indexed CometBFT's newest blocks at {logs.count('re-indexed CometBFT')} restarts")
        assert not reindex_failures, reindex_failures
        notes = {name: tally.notes for name, tally in campaign.tallies.items() if tally.notes}
        assert not notes, notes
        assert all(t.divergences == 0 and t.lost == 0 for t in campaign.tallies.values())
        assert len(load.ledger.committed) > 100, "the load barely committed anything"
    finally:
        if load is not None:
            load.close()
        cluster.stop_all()
