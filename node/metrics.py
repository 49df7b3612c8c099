"""Prometheus metrics of the ABCI app, gathered around the application object.

``InstrumentedApp`` wraps a ``LedgerApplication`` without changing it: it
times every ABCI call and reads what the ledger already reports (result codes
and events of ``FinalizeBlock``), so no metric code runs inside the
deterministic state machine and the app hash cannot depend on it.

Exported (``python -m node.app_main --metrics HOST:PORT``, path ``/metrics``):

    gridledger_blocks_total                       blocks finalized
    gridledger_block_height                       height of the last finalized block
    gridledger_block_timestamp_seconds            header time of that block (unix seconds)
    gridledger_retain_height                      lowest block CometBFT keeps (Commit's retain_height; 0: all)
    gridledger_block_txs                          histogram: transactions per block
    gridledger_txs_total{type,code}               block transactions by message type and result code
    gridledger_check_txs_total{type,code}         CheckTx answers (mempool admission) by type and code
    gridledger_orders_placed_total                ``order.placed`` events
    gridledger_trades_total                       ``trade`` events (continuous or call auction)
    gridledger_traded_energy_wh_total             energy of those trades (their ``quantity_wh``)
    gridledger_slots_settled_total                ``settlement.slot`` events
    gridledger_settlement_pending_slots           slots with trades and no ``settlement.slot`` yet
    gridledger_settlement_oldest_pending_slot_timestamp_seconds   start of the oldest of them (0: none)
    gridledger_abci_call_seconds{method}          histogram: ABCI call latency
    gridledger_build_info{version,app_version,cometbft_version}   always 1: what this process runs
    process_*                                     CPU seconds, resident memory, open fds, start time
    python_info{implementation,version,...}       the interpreter

Counters export only ``*_total`` (histograms ``_bucket``/``_sum``/``_count``):
the ``*_created`` timestamps prometheus_client adds by default are turned
off, since ``process_start_time_seconds`` already says when counting began.

Counters start at zero when the app process starts (a node catching up after
a restart counts the blocks it replays). The settlement gauge is 0 until the
market and settlement modules emit ``trade`` and ``settlement.slot`` events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from abci_app import version
from abci_app.app import APP_PROTOCOL_VERSION
from abci_app.ledger import codec
from abci_app.ledger.router import MESSAGE_TYPES
from abci_app.pb.tendermint.abci import types_pb2 as abci

# Every ABCI call the server dispatches (abci_app/server.py _APP_CALLS).
ABCI_METHODS = (
    "info", "init_chain", "query", "check_tx", "prepare_proposal", "process_proposal", "finalize_block",
    "extend_vote", "verify_vote_extension", "commit", "list_snapshots", "offer_snapshot", "load_snapshot_chunk",
    "apply_snapshot_chunk",
)
# Label for transactions that do not decode to a known message type: labels
# stay a small fixed set whatever bytes clients send.
UNDECODABLE = "undecodable"
# ABCI calls take from microseconds (Info) to seconds (a big FinalizeBlock).
LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TXS_PER_BLOCK_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


def build_labels() -> dict[str, str]:
    """What this process runs: gridledger's version, its ABCI app protocol version, the pinned CometBFT."""
    from node.cometbft import pinned_version

    return {"version": version(), "app_version": str(APP_PROTOCOL_VERSION), "cometbft_version": pinned_version()}


class AppMetrics:
    """The app's metric families, in their own registry (one per process, or per test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # Process-wide switch, read when a scrape collects: no ``*_created`` series from any counter.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # (untyped upstream)
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info("gridledger_build", "What this process runs (value always 1).", registry=r).info(build_labels())
        self.blocks = Counter("gridledger_blocks", "Blocks finalized.", registry=r)
        self.height = Gauge("gridledger_block_height", "Height of the last finalized block.", registry=r)
        self.block_time = Gauge("gridledger_block_timestamp_seconds",
                                "Header time of the last finalized block, unix seconds.", registry=r)
        self.retain_height = Gauge("gridledger_retain_height",
                                   "Lowest block height CometBFT keeps (Commit's retain_height; 0: every block).",
                                   registry=r)
        self.block_txs = Histogram("gridledger_block_txs", "Transactions per finalized block.",
                                   buckets=TXS_PER_BLOCK_BUCKETS, registry=r)
        self.txs = Counter("gridledger_txs", "Block transactions by message type and result code.",
                           ["type", "code"], registry=r)
        self.check_txs = Counter("gridledger_check_txs", "CheckTx answers by message type and result code.",
                                 ["type", "code"], registry=r)
        self.orders_placed = Counter("gridledger_orders_placed", "Orders placed (order.placed events).", registry=r)
        self.trades = Counter("gridledger_trades", "Trades (trade events).", registry=r)
        self.traded_energy = Counter("gridledger_traded_energy_wh", "Energy traded, in Wh.", registry=r)
        self.slots_settled = Counter("gridledger_slots_settled", "Slots settled (settlement.slot events).",
                                     registry=r)
        self.settlement_pending = Gauge("gridledger_settlement_pending_slots",
                                        "Delivery slots with trades that are not settled yet.", registry=r)
        self.settlement_oldest_pending = Gauge(
            "gridledger_settlement_oldest_pending_slot_timestamp_seconds",
            "Start of the oldest delivery slot with trades that is not settled yet (0: none).", registry=r)
        self.latency = Histogram("gridledger_abci_call_seconds", "Time the app spends in each ABCI call.",
                                 ["method"], buckets=LATENCY_BUCKETS, registry=r)
        self._pending_slots: set[int] = set()

    # -- what the wrapper reports ----------------------------------------------------------
    def observe_block(self, req: abci.RequestFinalizeBlock, resp: abci.ResponseFinalizeBlock) -> None:
        self.blocks.inc()
        if req.height:
            self.height.set(req.height)
            self.block_time.set(req.time.seconds)
        self.block_txs.observe(len(req.txs))
        for raw, result in zip(req.txs, resp.tx_results, strict=False):
            self.txs.labels(tx_type(raw), str(result.code)).inc()
            self._observe_events(result.events)
        self._observe_events(resp.events)
        self.settlement_pending.set(len(self._pending_slots))
        self.settlement_oldest_pending.set(min(self._pending_slots, default=0))

    def observe_commit(self, resp: abci.ResponseCommit) -> None:
        self.retain_height.set(resp.retain_height)

    def observe_check(self, req: abci.RequestCheckTx, resp: abci.ResponseCheckTx) -> None:
        self.check_txs.labels(tx_type(req.tx), str(resp.code)).inc()

    def _observe_events(self, events: Iterable[abci.Event]) -> None:
        for event in events:
            if event.type == "order.placed":
                self.orders_placed.inc()
            elif event.type == "trade":
                self.trades.inc()
                quantity = _attribute(event, "quantity_wh")
                if quantity is not None and quantity.isdigit():
                    self.traded_energy.inc(int(quantity))
                slot = _attribute(event, "slot")
                if slot is not None and slot.isdigit():
                    self._pending_slots.add(int(slot))
            elif event.type == "settlement.slot":
                self.slots_settled.inc()
                slot = _attribute(event, "slot")
                if slot is not None and slot.isdigit():
                    self._pending_slots.discard(int(slot))


def tx_type(raw: bytes) -> str:
    """The message type named in a transaction envelope, without verifying anything."""
    try:
        envelope = codec.decode(raw)
    except Exception:  # any garbage a client sent
        return UNDECODABLE
    if isinstance(envelope, list) and len(envelope) > 2 and envelope[2] in MESSAGE_TYPES:
        return str(envelope[2])
    return UNDECODABLE


def _attribute(event: abci.Event, key: str) -> str | None:
    for attribute in event.attributes:
        if attribute.key == key:
            return str(attribute.value)
    return None


class InstrumentedApp:
    """Forwards every ABCI call to ``app``, timing it and reading its answer.

    Works for any object with the ABCI methods (the ``Application`` protocol of
    abci_app/server.py); the server sees the same call signatures.
    """

    def __init__(self, app: Any, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics
        for method in ABCI_METHODS:
            if method not in ("finalize_block", "check_tx", "commit"):
                setattr(self, method, self._timed(method))
        self._finalize_block = self._timed("finalize_block")
        self._check_tx = self._timed("check_tx")
        self._commit = self._timed("commit")

    def _timed(self, method: str) -> Callable[[Any], Any]:
        target = getattr(self.app, method)
        histogram = self.metrics.latency.labels(method)

        def call(req: Any) -> Any:
            start = time.perf_counter()
            try:
                return target(req)
            finally:
                histogram.observe(time.perf_counter() - start)

        return call

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        resp: abci.ResponseFinalizeBlock = self._finalize_block(req)
        self.metrics.observe_block(req, resp)
        return resp

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        resp: abci.ResponseCheckTx = self._check_tx(req)
        self.metrics.observe_check(req, resp)
        return resp

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        resp: abci.ResponseCommit = self._commit(req)
        self.metrics.observe_commit(resp)
        return resp

    def close(self) -> None:
        self.app.close()


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``:PORT`` (all interfaces) as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics address {address!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve(metrics: AppMetrics, address: str) -> Callable[[], None]:
    """Expose ``/metrics`` on ``address`` from a background thread; returns a function that stops it."""
    host, port = parse_address(address)
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
