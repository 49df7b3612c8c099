"""Open-loop load generator: send signed transactions at a target rate, observe their commits.

Sending. Transaction ``i`` is due at ``start + i / rate``, whatever happened to
the earlier ones: the sender never waits for a commit, so slow blocks do not
slow the offered load (an open loop). Each due transaction goes to an idle load
account (round robin); an account is busy from its ``broadcast_tx_sync`` until
the node's CheckTx answer, because its next nonce depends on that answer (a
refused transaction does not spend its nonce). Each account is pinned to one
node, so its transactions reach that node's mempool in nonce order. When no
account is idle, or signing cannot keep up, a transaction leaves late: the
delay is recorded per transaction (``send_lag_s``) and summarised as "fell
behind"; the schedule itself never shifts.

Observing commits. One websocket subscription to ``tm.event='NewBlock'`` on the
first node. In CometBFT v0.38 that event carries the block (header time,
transactions) and the FinalizeBlock results (code and events per transaction),
so one message per block gives commit height, the time this client saw the
commit, the result code and the ids of placed orders, with no per-transaction
requests. A gap in heights (the node dropped a slow subscriber, or the
connection broke) is filled from the ``block`` and ``block_results`` RPCs;
those blocks are flagged ``recovered`` because their seen time is late.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from node.loadgen_accounts import LoadAccount
from node.loadgen_workload import BuiltTx, Workload

SUBSCRIBE_QUERY = "tm.event='NewBlock'"
RPC_TIMEOUT_S = 30.0
# A transaction that leaves later than this after its due time counts as "behind".
BEHIND_TOLERANCE_S = 0.05
MAX_ERRORS = 20


@dataclass
class TxRecord:
    """Everything observed about one transaction; times are seconds since the run's start."""

    seq: int
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

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("at least one node URL is needed")
        if self.rate <= 0 or self.duration_s <= 0:
            raise ValueError("rate and duration must be positive")

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


def websocket_url(rpc_url: str) -> str:
    base = rpc_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + "/websocket"
    return "ws://" + base.removeprefix("http://") + "/websocket"


def header_time(text: str) -> float:
    """RFC 3339 with nanoseconds (CometBFT) to unix seconds."""
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = float("0." + rest) if rest else 0.0
    return datetime.fromisoformat(head + "+00:00").timestamp() + fraction


def _events(raw_events: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"type": e.get("type", ""), **{a.get("key", ""): a.get("value", "") for a in e.get("attributes") or []}}
            for e in raw_events or []]


class _Run:
    """State shared by the sender, the submit tasks and the block watcher of one run."""

    def __init__(self, settings: LoadSettings, workload: Workload, accounts: list[LoadAccount]) -> None:
        self.settings = settings
        self.workload = workload
        self.accounts = accounts
        self.records: list[TxRecord] = []
        self.blocks: list[BlockRecord] = []
        self.errors: list[str] = []
        self.by_hash: dict[str, tuple[TxRecord, LoadAccount, BuiltTx]] = {}
        self.idle: deque[LoadAccount] = deque(accounts)
        self.idle_event = asyncio.Event()
        self.block_event = asyncio.Event()
        self.t0 = 0.0
        self.last_height = 0
        self.subscribed = asyncio.Event()
        self.starved = 0
        """Due transactions that found no idle account (every account awaited a CheckTx answer)."""

    def now(self) -> float:
        return time.monotonic() - self.t0

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
            raw = base64.b64decode(encoded)
            size += len(raw)
            entry = self.by_hash.get(hashlib.sha256(raw).hexdigest().upper())
            if entry is None:
                continue
            record, account, built = entry
            matched += 1
            result = tx_results[index] if index < len(tx_results) else {}
            record.commit_height, record.commit_seen_s = height, seen
            record.result_code = int(result.get("code") or 0)
            self.workload.on_committed(account, built, record.result_code, _events(result.get("events")))
        self.blocks.append(BlockRecord(height=height, time_unix=header_time(header["time"]), seen_s=seen,
                                       num_txs=len(txs), bytes=size, matched=matched, recovered=recovered))
        self.block_event.set()

    def outstanding(self) -> int:
        """Transactions CheckTx accepted that no block has shown yet.

        Transactions without a CheckTx answer (timeout, transport error) are not
        awaited: most never entered a mempool. They are still matched if a block
        holds them.
        """
        return sum(1 for r in self.records if r.commit_height is None and r.check_code == 0)


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
            async with websockets.connect(url, max_size=None, open_timeout=RPC_TIMEOUT_S) as ws:
                await ws.send(request)
                ack = json.loads(await ws.recv())
                if "error" in ack:
                    raise RuntimeError(f"subscribe refused: {ack['error']}")
                run.subscribed.set()
                await _follow(run, client, ws, stop)
        except (OSError, websockets.ConnectionClosed, RuntimeError, httpx.HTTPError) as exc:
            if stop.is_set():
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


async def _submit(run: _Run, client: httpx.AsyncClient, record: TxRecord, account: LoadAccount,
                  built: BuiltTx) -> None:
    record.submit_s = run.now()
    try:
        answer = await _rpc(client, record.node, "broadcast_tx_sync", tx=base64.b64encode(built.raw).decode())
        record.check_code = int(answer.get("code") or 0)
        record.check_log = str(answer.get("log") or "")[:200]
    except (httpx.HTTPError, RuntimeError, ValueError) as exc:
        record.error = _error_kind(exc)
        record.check_log = str(exc)[:200]
    record.check_s = run.now()
    run.workload.on_checked(account, built, record.check_code)
    run.idle.append(account)
    run.idle_event.set()


def _error_kind(exc: Exception) -> str:
    text = str(exc).lower()
    if "mempool is full" in text:
        return "mempool_full"
    if "already exists in cache" in text:
        return "duplicate"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.HTTPError):
        return "transport"
    return "rpc_error"


async def _next_idle(run: _Run) -> LoadAccount:
    if not run.idle:
        run.starved += 1
    while not run.idle:
        run.idle_event.clear()
        await run.idle_event.wait()
    return run.idle.popleft()


async def _send_all(run: _Run, clients: dict[str, httpx.AsyncClient]) -> None:
    settings = run.settings
    nodes = settings.nodes
    tasks: set[asyncio.Task[None]] = set()
    for seq in range(settings.planned):
        due = seq / settings.rate
        delay = due - run.now()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule's clock: waiting for the due time is the event
        account = await _next_idle(run)
        built = run.workload.build(account, seq)
        node = nodes[account.index % len(nodes)]
        record = TxRecord(seq=seq, kind=built.kind, account=account.index, nonce=built.nonce, node=node,
                          size=len(built.raw), tx_hash=built.tx_hash, scheduled_s=due)
        run.records.append(record)
        run.by_hash[built.tx_hash] = (record, account, built)
        task = asyncio.create_task(_submit(run, clients[node], record, account, built))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def _drain(run: _Run, timeout: float) -> bool:
    """Wait (event-driven, on each new block) until every accepted transaction is in a block."""
    deadline = time.monotonic() + timeout
    while run.outstanding():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        run.block_event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.block_event.wait(), remaining)
    return True


async def run_load_async(settings: LoadSettings, workload: Workload, accounts: list[LoadAccount],
                         progress: Callable[[str], None] | None = None) -> LoadResult:
    run = _Run(settings, workload, accounts)
    limits = httpx.Limits(max_connections=len(accounts) + 8, max_keepalive_connections=len(accounts) + 8)
    clients = {url: httpx.AsyncClient(timeout=RPC_TIMEOUT_S, limits=limits) for url in settings.nodes}
    watcher_client = httpx.AsyncClient(timeout=RPC_TIMEOUT_S)
    stop = asyncio.Event()
    run.t0 = time.monotonic()
    watcher = asyncio.create_task(_watch_blocks(run, watcher_client, stop))
    try:
        await asyncio.wait_for(run.subscribed.wait(), RPC_TIMEOUT_S)
        # Start the clock only once commits can be seen, so no early commit is missed.
        run.t0 = time.monotonic()
        started_unix = time.time()
        if progress:
            progress(f"sending {settings.planned} txs at {settings.rate:g} tx/s to {len(settings.nodes)} node(s)")
        await _send_all(run, clients)
        send_end = run.now()
        if progress:
            progress(f"sent; waiting up to {settings.drain_timeout_s:g}s for {run.outstanding()} commits")
        drained = await _drain(run, settings.drain_timeout_s)
        if not drained:
            run.errors.append(f"{run.outstanding()} accepted transactions were not seen committed within "
                              f"{settings.drain_timeout_s:g}s after sending ended")
    except TimeoutError:
        run.errors.append(f"no block subscription on {websocket_url(settings.nodes[0])} within {RPC_TIMEOUT_S:g}s")
        return LoadResult(settings, workload.name, time.time(), run.records, run.blocks, 0.0, False, run.errors)
    finally:
        stop.set()
        await watcher
        for client in (*clients.values(), watcher_client):
            await client.aclose()
    notes = {"account_starved": run.starved, "accounts": len(accounts)}
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
