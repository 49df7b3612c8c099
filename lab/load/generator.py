"""Open-loop load generator: send pre-signed transactions at a target rate, observe their commits.

Before the clock starts. The workload signs and serialises every transaction
of the run: ``ceil(planned / accounts)`` (plus a fifth spare) per load account
with consecutive nonces, each with its base64 form and its whole JSON-RPC
request (``PreparedTx``). While the clock runs the sender only copies those
bytes to a socket; it never signs, encodes or hashes.

Sending. Transaction ``i`` is due at ``start + i / rate``, whatever happened to
the earlier ones: the sender never waits for a commit, so slow blocks do not
slow the offered load (an open loop). Each due transaction is the next one of
the account idle longest; an account is busy from its ``broadcast_tx_sync``
until the node's CheckTx answer, so its transactions reach its node in nonce
order. Accounts are pinned to nodes (``index mod nodes``) and to one of the
node's connections (``transport``: pipelined websockets or a pool of HTTP
connections, ``connections`` per node, see lab/load/transport.py). When
no account is idle, or the sockets cannot take more, a transaction leaves
late: the delay is recorded per transaction (``send_lag_s``) and summarised as
"fell behind"; the schedule itself never shifts.

Stale nonces. A refused transaction leaves a gap in its account's nonces,
which is legal. But when CheckTx refuses one as a stale nonce (code 12: the
chain already holds a higher nonce for the account, e.g. after a partition
healed) every later pre-signed nonce of the account may be stale too. The
sender then reads the account's next nonce from the account's own node
(``/next_nonce/<account>``, which counts that node's mempool), signs the
refused message and the account's unsent ones again from there, and puts the
refused message back at the head of the account's queue. That is the only
signing while the clock runs.

Observing commits. One websocket subscription to ``tm.event='NewBlock'`` on the
first node. In CometBFT v0.38 that event carries the block (header time,
transactions) and the FinalizeBlock results (code and events per transaction),
so one message per block gives commit height, the time this client saw the
commit, the result code and the ids of placed orders, with no per-transaction
requests. The block lists transactions in base64, the form each prepared
transaction already has, so matching them costs one dictionary look-up. A gap
in heights (the node dropped a slow subscriber, or the connection broke) is
filled from the ``block`` and ``block_results`` RPCs; those blocks are flagged
``recovered`` because their seen time is late.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import functools
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from abci_app.ledger.errors import StaleNonce
from lab.load import LoadSetupError
from lab.load.accounts import LoadAccount
from lab.load.transport import (
    TRANSPORTS,
    CheckAnswer,
    RpcCallError,
    Transport,
    make_transport,
    websocket_url,
)
from lab.load.workload import Plan, PreparedTx, UidCounter, Workload

SUBSCRIBE_QUERY = "tm.event='NewBlock'"
RPC_TIMEOUT_S = 30.0
# A transaction that leaves later than this after its due time counts as "behind".
BEHIND_TOLERANCE_S = 0.05
MAX_ERRORS = 20
STALE_NONCE_CODE = StaleNonce.code
# Pre-signed transactions per account beyond an even share: the idle-longest
# account sends next, so shares drift when some answers are slow.
SPARE_FRACTION = 0.2
DEFAULT_TRANSPORT = "ws"
DEFAULT_CONNECTIONS = 4


@dataclass
class TxRecord:
    """Everything observed about one transaction; times are seconds since the run's start."""

    seq: int
    """Position in the schedule: the transaction was due at ``seq / rate``."""
    kind: str
    account: int
    nonce: int
    node: str
    size: int
    tx_hash: str
    scheduled_s: float
    submit_s: float | None = None
    check_s: float | None = None
    check_code: int | None = None
    """CheckTx code; None when the node gave no CheckTx answer (see ``error``)."""
    error: str = ""
    """Transport or RPC error instead of a CheckTx answer (e.g. mempool full)."""
    check_log: str = ""
    commit_height: int | None = None
    commit_seen_s: float | None = None
    result_code: int | None = None
    retry_of: int | None = None
    """``seq`` of the stale-nonce refusal whose message this transaction sends again, re-signed."""

    @property
    def send_lag_s(self) -> float | None:
        return None if self.submit_s is None else self.submit_s - self.scheduled_s

    @property
    def latency_s(self) -> float | None:
        """Submit to the moment this client saw the block that contains it."""
        if self.submit_s is None or self.commit_seen_s is None:
            return None
        return self.commit_seen_s - self.submit_s


@dataclass
class BlockRecord:
    height: int
    time_unix: float
    """Block header time (CometBFT's BFT time)."""
    seen_s: float
    num_txs: int
    bytes: int
    matched: int
    """Transactions of this run in the block."""
    recovered: bool = False
    """Fetched by RPC after a gap in the subscription; ``seen_s`` is late."""


@dataclass(frozen=True)
class LoadSettings:
    nodes: tuple[str, ...]
    rate: float
    duration_s: float
    drain_timeout_s: float = 30.0
    label: str = ""
    transport: str = DEFAULT_TRANSPORT
    """``ws`` (pipelined websockets) or ``http`` (a pool of keep-alive connections)."""
    connections: int = DEFAULT_CONNECTIONS
    """Connections per node."""

    def __post_init__(self) -> None:
        if not self.nodes:
            raise LoadSetupError("at least one node URL is needed")
        if self.rate <= 0 or self.duration_s <= 0:
            raise LoadSetupError("rate and duration must be positive")
        if self.drain_timeout_s < 0:
            raise LoadSetupError("drain timeout must not be negative")
        if self.transport not in TRANSPORTS:
            raise LoadSetupError(f"transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}")
        if self.connections < 1:
            raise LoadSetupError("at least one connection per node is needed")

    @property
    def planned(self) -> int:
        return max(1, round(self.rate * self.duration_s))


@dataclass
class LoadResult:
    settings: LoadSettings
    workload: str
    started_unix: float
    records: list[TxRecord]
    blocks: list[BlockRecord]
    send_end_s: float
    drained: bool
    errors: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


def header_time(text: str) -> float:
    """RFC 3339 with nanoseconds (CometBFT) to unix seconds."""
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = float("0." + rest) if rest else 0.0
    return datetime.fromisoformat(head + "+00:00").timestamp() + fraction


def _b64_size(encoded: str) -> int:
    return len(encoded) * 3 // 4 - len(encoded) + len(encoded.rstrip("="))


def per_account_count(planned: int, accounts: int) -> int:
    """Transactions to pre-sign per account: an even share plus SPARE_FRACTION (at least one spare)."""
    share = math.ceil(planned / accounts)
    return share + max(1, math.ceil(share * SPARE_FRACTION))


class _Run:
    """State shared by the sender, the answer callbacks, the nonce recoveries and the block watcher of one run."""

    def __init__(self, settings: LoadSettings, workload: Workload, accounts: list[LoadAccount], plan: Plan,
                 uids: UidCounter) -> None:
        self.settings = settings
        self.workload = workload
        self.accounts = accounts
        self.plan = plan
        self.uids = uids
        self.records: list[TxRecord] = []
        self.blocks: list[BlockRecord] = []
        self.errors: list[str] = []
        self.by_b64: dict[str, tuple[TxRecord, LoadAccount, PreparedTx]] = {}
        self.idle: deque[LoadAccount] = deque(a for a in accounts if plan.get(a.index))
        self.idle_event = asyncio.Event()
        self.block_event = asyncio.Event()
        self.answers_done = asyncio.Event()
        self.t0 = 0.0
        self.last_height = 0
        self.subscribed = asyncio.Event()
        self.in_flight = 0
        self.awaiting_commit = 0
        """Transactions CheckTx accepted that no block has shown yet."""
        self.starved = 0
        """Due transactions that found no idle account (every account awaited a CheckTx answer)."""
        self.recoveries = 0
        self.resigned = 0
        self.recovery_failures = 0
        self.wait_idle_s = 0.0
        self.submit_s = 0.0
        self.late_wakeups = 0
        self.retry_of: dict[int, int] = {}
        """uid of a re-signed stale-nonce refusal -> seq of the refusal."""
        self.tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def node_of(self, account: LoadAccount) -> int:
        return account.index % len(self.settings.nodes)

    def lane_of(self, account: LoadAccount) -> int:
        return account.index // len(self.settings.nodes)

    def release(self, account: LoadAccount) -> None:
        """The account may send again (if it has anything left)."""
        if self.plan.get(account.index):
            self.idle.append(account)
            self.idle_event.set()

    # -- commits ------------------------------------------------------------------------
    def on_block(self, block: dict[str, Any], results: dict[str, Any] | None, seen: float, recovered: bool) -> None:
        header = block["header"]
        height = int(header["height"])
        if height <= self.last_height:
            return
        self.last_height = height
        txs = (block.get("data") or {}).get("txs") or []
        tx_results = (results or {}).get("tx_results") or (results or {}).get("txs_results") or []
        matched, size = 0, 0
        for index, encoded in enumerate(txs):
            size += _b64_size(encoded)
            entry = self.by_b64.get(encoded)
            if entry is None:
                continue
            record, account, tx = entry
            matched += 1
            result = tx_results[index] if index < len(tx_results) else {}
            if record.commit_height is None and record.check_code == 0:
                self.awaiting_commit -= 1
            record.commit_height, record.commit_seen_s = height, seen
            record.result_code = int(result.get("code") or 0)
            self.workload.on_committed(account, tx, record.result_code, result.get("events") or [])
        self.blocks.append(BlockRecord(height=height, time_unix=header_time(header["time"]), seen_s=seen,
                                       num_txs=len(txs), bytes=size, matched=matched, recovered=recovered))
        self.block_event.set()

    # -- CheckTx answers ------------------------------------------------------------------
    def on_answer(self, transport: Transport, record: TxRecord, account: LoadAccount, tx: PreparedTx,
                  answer: CheckAnswer) -> None:
        record.check_s = self.now()
        record.check_code, record.error, record.check_log = answer.code, answer.error, answer.log
        self.in_flight -= 1
        if self.in_flight == 0:
            self.answers_done.set()
        if answer.code == 0 and record.commit_height is None:
            self.awaiting_commit += 1
        if answer.code == STALE_NONCE_CODE and tx.msg is not None:  # kvstore bytes carry no nonce
            self._spawn(self._recover(transport, record, account, tx))
            return
        self.release(account)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _recover(self, transport: Transport, record: TxRecord, account: LoadAccount,
                       refused: PreparedTx) -> None:
        """Re-read the account's next nonce from its node; sign the refused and the unsent messages again."""
        node = self.node_of(account)
        try:
            next_nonce = await next_nonce_of(transport, node, self.lane_of(account), account.account_id)
        except (RpcCallError, TimeoutError, ValueError, KeyError) as exc:
            self.recovery_failures += 1
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(f"account {account.index}: stale nonce {refused.nonce}, and reading its next "
                                   f"nonce from {self.settings.nodes[node]} failed: {exc}")
            self.release(account)
            return
        queue = self.plan.get(account.index, deque())
        fresh = self.workload.resign(account, [refused, *queue], next_nonce, self.uids)
        self.plan[account.index] = deque(fresh)
        self.retry_of[fresh[0].uid] = record.seq
        self.recoveries += 1
        self.resigned += len(fresh)
        self.release(account)


async def next_nonce_of(transport: Transport, node: int, lane: int, account_id: str) -> int:
    """The node-local ``/next_nonce/<account>`` answer (docs/queries.md), asked on the account's own connection."""
    result = await transport.call(node, lane, "abci_query", {"path": f"/next_nonce/{account_id}", "data": "",
                                                             "height": "0", "prove": False})
    response = result["response"]
    if int(response.get("code") or 0) != 0:
        raise RpcCallError(f"code {response['code']}: {response.get('log', '')}")
    return int(json.loads(base64.b64decode(response["value"]))["next_nonce"])


async def _rpc(client: httpx.AsyncClient, url: str, method: str, **params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = await client.post(url, json=body)
    payload = response.json()
    if "error" in payload:
        error = payload["error"]
        raise RuntimeError(f"{error.get('message', '')} {error.get('data', '')}".strip())
    return payload["result"]


async def _fill_gap(run: _Run, client: httpx.AsyncClient, upto: int) -> None:
    """Fetch blocks the subscription skipped (heights last+1 .. upto-1) over RPC."""
    url = run.settings.nodes[0]
    for height in range(run.last_height + 1, upto):
        block = await _rpc(client, url, "block", height=str(height))
        results = await _rpc(client, url, "block_results", height=str(height))
        run.on_block(block["block"], results, run.now(), recovered=True)


async def _watch_blocks(run: _Run, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    """Follow NewBlock events until ``stop``; reconnect (and fill the gap) when the socket breaks."""
    url = websocket_url(run.settings.nodes[0])
    request = json.dumps({"jsonrpc": "2.0", "method": "subscribe", "id": "loadgen",
                          "params": {"query": SUBSCRIBE_QUERY}})
    while not stop.is_set():
        try:
            async with websockets.connect(url, max_size=None, compression=None,
                                          open_timeout=RPC_TIMEOUT_S) as ws:
                await ws.send(request)
                ack = json.loads(await ws.recv())
                if "error" in ack:
                    raise RuntimeError(f"subscribe refused: {ack['error']}")
                run.subscribed.set()
                await _follow(run, client, ws, stop)
        except (OSError, websockets.WebSocketException, RuntimeError, httpx.HTTPError) as exc:
            if stop.is_set():
                return
            if not run.subscribed.is_set():
                # Never subscribed: the node is not there; the run ends with this error.
                run.errors.append(f"cannot subscribe to NewBlock events on {url}: {exc}")
                return
            if len(run.errors) < MAX_ERRORS:
                run.errors.append(f"block subscription interrupted at height {run.last_height}: {exc}; reconnecting")
            await asyncio.sleep(0.2)  # back off before reconnecting; nothing to await instead


async def _follow(run: _Run, client: httpx.AsyncClient, ws: Any, stop: asyncio.Event) -> None:
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            receive = asyncio.ensure_future(ws.recv())
            done, _ = await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                return
            message = json.loads(receive.result())
            if "error" in message:
                raise RuntimeError(f"subscription ended by the node: {message['error']}")
            value = ((message.get("result") or {}).get("data") or {}).get("value")
            if not value or "block" not in value:
                continue
            seen = run.now()
            height = int(value["block"]["header"]["height"])
            if run.last_height and height > run.last_height + 1:
                await _fill_gap(run, client, height)
            run.on_block(value["block"], value.get("result_finalize_block"), seen, recovered=False)
    finally:
        stopped.cancel()


async def _next_idle(run: _Run) -> LoadAccount:
    if not run.idle:
        run.starved += 1
    while not run.idle:
        run.idle_event.clear()
        await run.idle_event.wait()
    return run.idle.popleft()


async def _send_all(run: _Run, transport: Transport) -> None:
    """Hand every due transaction to the transport; sends in a batch whatever fell due while asleep.

    Where the time goes when the sender falls behind is recorded: waiting for an
    idle account (slow CheckTx answers), time inside the transport (writing,
    and waiting while the socket's buffer is full; ``backlogged_sends`` counts
    requests written behind unsent bytes: the nodes read slower than we sent),
    or waking up late (the generator's own event loop, or the OS giving it no
    CPU).
    """
    settings = run.settings
    seq, planned = 0, settings.planned
    while seq < planned:
        due = seq / settings.rate
        delay = due - run.now()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule's clock: waiting for the due time is the event
            if run.now() - due > BEHIND_TOLERANCE_S:
                run.late_wakeups += 1
            continue
        waited = time.monotonic()
        account = await _next_idle(run)
        run.wait_idle_s += time.monotonic() - waited
        tx = run.plan[account.index].popleft()
        node = run.node_of(account)
        record = TxRecord(seq=seq, kind=tx.kind, account=account.index, nonce=tx.nonce,
                          node=settings.nodes[node], size=len(tx.raw), tx_hash=tx.tx_hash, scheduled_s=due,
                          retry_of=run.retry_of.pop(tx.uid, None))
        run.records.append(record)
        run.by_b64[tx.b64] = (record, account, tx)
        run.in_flight += 1
        run.answers_done.clear()
        record.submit_s = run.now()
        on_answer = functools.partial(run.on_answer, transport, record, account, tx)
        waited = time.monotonic()
        await transport.submit(node, run.lane_of(account), tx, on_answer)
        run.submit_s += time.monotonic() - waited
        seq += 1


async def _await_answers(run: _Run, timeout: float) -> None:
    """Until every submitted transaction has its CheckTx answer (or error), and no recovery is running."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.answers_done.wait(), timeout)
    if run.tasks:
        await asyncio.wait(set(run.tasks), timeout=timeout)


async def _drain(run: _Run, timeout: float) -> bool:
    """Wait (event-driven, on each new block) until every accepted transaction is in a block."""
    deadline = time.monotonic() + timeout
    while run.awaiting_commit > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        run.block_event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.block_event.wait(), remaining)
    return True


class _NotStarted(Exception):
    """The block subscription never started: nothing was sent."""


def prepare_run(settings: LoadSettings, workload: Workload, accounts: list[LoadAccount]) -> tuple[Plan, UidCounter]:
    """Sign and serialise every transaction of a run (the clock has not started)."""
    uids = UidCounter()
    until = time.time() + settings.duration_s + settings.drain_timeout_s
    return workload.prepare(accounts, per_account_count(settings.planned, len(accounts)), uids, until), uids


async def run_load_async(settings: LoadSettings, workload: Workload, accounts: list[LoadAccount],
                         progress: Callable[[str], None] | None = None) -> LoadResult:
    prepare_start = time.perf_counter()
    plan, uids = prepare_run(settings, workload, accounts)
    prepare_s = time.perf_counter() - prepare_start
    prepared = sum(len(queue) for queue in plan.values())
    run = _Run(settings, workload, accounts, plan, uids)
    transport = make_transport(settings.transport, settings.nodes, settings.connections)
    watcher_client = httpx.AsyncClient(timeout=RPC_TIMEOUT_S)
    stop = asyncio.Event()
    run.t0 = time.monotonic()
    watcher = asyncio.create_task(_watch_blocks(run, watcher_client, stop))
    started_unix, send_end, drained, cpu_s = time.time(), 0.0, False, 0.0
    try:
        subscribed = asyncio.ensure_future(run.subscribed.wait())
        await asyncio.wait({subscribed, watcher}, timeout=RPC_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if not run.subscribed.is_set():
            subscribed.cancel()
            raise _NotStarted()
        await asyncio.wait_for(transport.start(), RPC_TIMEOUT_S)
        # Start the clock only once commits can be seen, so no early commit is missed.
        run.t0 = time.monotonic()
        started_unix = time.time()
        cpu_start = time.process_time()
        if progress:
            progress(f"sending {settings.planned} txs at {settings.rate:g} tx/s to {len(settings.nodes)} node(s) "
                     f"over {settings.connections} {settings.transport} connection(s) each "
                     f"(pre-signed in {prepare_s:.1f}s)")
        await _send_all(run, transport)
        send_end = run.now()
        cpu_s = time.process_time() - cpu_start
        await _await_answers(run, RPC_TIMEOUT_S)
        if progress:
            progress(f"sent; waiting up to {settings.drain_timeout_s:g}s for {run.awaiting_commit} commits")
        drained = await _drain(run, settings.drain_timeout_s)
    except _NotStarted:
        if not run.errors:
            run.errors.append(f"no block subscription on {settings.nodes[0]} within {RPC_TIMEOUT_S:g}s")
    except TimeoutError:
        run.errors.append(f"no RPC connection to every node within {RPC_TIMEOUT_S:g}s")
    except (OSError, websockets.WebSocketException) as exc:
        run.errors.append(f"cannot open the {settings.transport} connections to the nodes: {exc}")
    finally:
        stop.set()
        await watcher
        await transport.close()
        await watcher_client.aclose()
    notes = {"seed": getattr(workload, "seed", None), "account_starved": run.starved, "accounts": len(accounts),
             "transport": settings.transport, "connections_per_node": settings.connections,
             "prepared": prepared, "prepare_s": round(prepare_s, 3), "generator_cpu_s": round(cpu_s, 3),
             "generator_cpu_share": round(cpu_s / send_end, 3) if send_end > 0 else None,
             "wait_idle_account_s": round(run.wait_idle_s, 3), "submit_s": round(run.submit_s, 3),
             "backlogged_sends": transport.backlogged_sends, "late_wakeups": run.late_wakeups,
             "nonce_recoveries": run.recoveries, "resigned": run.resigned,
             "nonce_recovery_failures": run.recovery_failures, "undrained": max(0, run.awaiting_commit)}
    return LoadResult(settings=settings, workload=workload.name, started_unix=started_unix, records=run.records,
                      blocks=run.blocks, send_end_s=send_end, drained=drained, errors=run.errors, notes=notes)


def run_load(settings: LoadSettings, workload: Workload, accounts: list[LoadAccount],
             progress: Callable[[str], None] | None = None) -> LoadResult:
    """Run one open-loop load (blocking). Account nonces advance in place, so a later run continues."""
    return asyncio.run(run_load_async(settings, workload, accounts, progress))


# -- per-transaction CSV -----------------------------------------------------------------
CSV_COLUMNS = [f.name for f in fields(TxRecord)] + ["send_lag_s", "latency_s"]


def write_csv(records: list[TxRecord], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for record in records:
            row = [getattr(record, name) for name in CSV_COLUMNS]
            writer.writerow(["" if value is None else (f"{value:.6f}" if isinstance(value, float) else value)
                             for value in row])


def write_blocks_csv(blocks: list[BlockRecord], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        names = [f.name for f in fields(BlockRecord)]
        writer.writerow(names)
        for block in blocks:
            writer.writerow([getattr(block, name) for name in names])
