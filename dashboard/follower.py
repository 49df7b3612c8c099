"""Follow committed blocks through CometBFT's ``tm.event='NewBlock'`` websocket subscription.

In CometBFT v0.38 a NewBlock event carries the whole block (header, txs, the
previous block's commit signatures) and its FinalizeBlock results (every
transaction's code and events, the block events). One message per block
therefore tells the dashboard everything that changed: which slots traded,
which settled, who signed. It is sent after the app's Commit, so queries made
on receiving it already see the new state.

The subscription can break (node restart, CometBFT dropping a slow
subscriber). The follower then reconnects with back-off and fetches the
heights it missed with the ``block`` and ``block_results`` RPCs (those blocks
carry no "seen" time); after a gap longer than ``MAX_CATCH_UP`` it reports a
resync so every cache built from events is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from dashboard.chain import Node, NodeUnreachable, RpcError

log = logging.getLogger("gridledger.dashboard.follower")

SUBSCRIBE = {"jsonrpc": "2.0", "id": "dashboard", "method": "subscribe",
             "params": {"query": "tm.event='NewBlock'"}}
MAX_CATCH_UP = 30
"""Missed blocks fetched one by one after a reconnect; more than that is a resync."""
HISTORY_ON_START = 30
"""Blocks read at start so the Network page's charts are not empty."""
RECONNECT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# block_id_flag of a commit signature (CometBFT types.BlockIDFlag).
FLAG_NAMES = {1: "absent", 2: "signed", 3: "nil"}


@dataclass(frozen=True)
class Trade:
    """A ``trade`` event (docs/events.md): what the live trade list and caches need."""

    id: int
    slot: int
    buyer: str
    seller: str
    buyer_zone: str
    seller_zone: str
    quantity_wh: int
    price: int
    fee_per_kwh: int
    mechanism: str


@dataclass(frozen=True)
class BlockInfo:
    height: int
    time_ns: int
    """Header time (BFT time), unix nanoseconds."""
    seen_ns: int | None
    """When this dashboard received the NewBlock event; None for a block fetched after a gap."""
    txs: int
    failed_txs: int
    proposer: str
    app_hash: str
    trades: tuple[Trade, ...]
    settled_slots: tuple[int, ...]
    """Slots with a ``settlement.participant`` or ``settlement.slot`` event in this block."""
    block_events: int
    """FinalizeBlock's own events (expiries, call auctions, settlements)."""
    signatures: tuple[tuple[str, str], ...]
    """(validator address, signed|absent|nil) of the previous height's commit."""

    @property
    def changed_market(self) -> bool:
        """Whether the book, trades or settlements may differ from the previous height."""
        return self.txs > 0 or self.block_events > 0

    @property
    def trade_slots(self) -> tuple[int, ...]:
        return tuple(sorted({trade.slot for trade in self.trades}))

    @property
    def latency_ns(self) -> int | None:
        """From the header time to this dashboard seeing the commit (None when not seen live)."""
        return None if self.seen_ns is None else self.seen_ns - self.time_ns


def parse_rfc3339_ns(text: str) -> int:
    """Unix nanoseconds of CometBFT's RFC 3339 time (``2026-01-01T00:00:00.123456789Z``)."""
    from datetime import UTC, datetime

    main, _, rest = text.rstrip("Z").partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())[:9].ljust(9, "0")
    seconds = int(datetime.fromisoformat(main).replace(tzinfo=UTC).timestamp())
    return seconds * 1_000_000_000 + int(digits)


def _attributes(event: Mapping[str, Any]) -> dict[str, str]:
    return {str(a.get("key", "")): str(a.get("value", "")) for a in event.get("attributes") or []}


def _trade(attrs: Mapping[str, str]) -> Trade:
    return Trade(id=int(attrs["id"]), slot=int(attrs["slot"]), buyer=attrs["buyer"], seller=attrs["seller"],
                 buyer_zone=attrs["buyer_zone"], seller_zone=attrs["seller_zone"],
                 quantity_wh=int(attrs["quantity_wh"]), price=int(attrs["price"]),
                 fee_per_kwh=int(attrs.get("fee_per_kwh") or 0), mechanism=attrs.get("mechanism", ""))


def _flag(value: Any) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return FLAG_NAMES.get(int(value), "unknown")
    text = str(value).lower()  # the protobuf enum name, should a node spell it out
    return next((name for name in FLAG_NAMES.values() if name in text or (name == "signed" and "commit" in text)),
                "unknown")


def block_info(block: Mapping[str, Any], results: Mapping[str, Any] | None, seen_ns: int | None) -> BlockInfo:
    """A BlockInfo from a block and its FinalizeBlock results (NewBlock or ``block_results`` spelling)."""
    header = block["header"]
    results = results or {}
    tx_results: list[Mapping[str, Any]] = list(results.get("tx_results") or results.get("txs_results") or [])
    block_events: list[Mapping[str, Any]] = list(results.get("events") or results.get("finalize_block_events")
                                                 or [])
    events: list[Mapping[str, Any]] = list(block_events)
    failed = 0
    for result in tx_results:
        if int(result.get("code") or 0) == 0:
            events.extend(result.get("events") or [])
        else:
            failed += 1
    trades, settled = _market_events(events)
    signatures = tuple((str(sig.get("validator_address") or ""), _flag(sig.get("block_id_flag")))
                       for sig in (block.get("last_commit") or {}).get("signatures") or [])
    return BlockInfo(
        height=int(header["height"]), time_ns=parse_rfc3339_ns(header["time"]), seen_ns=seen_ns,
        txs=len((block.get("data") or {}).get("txs") or []), failed_txs=failed,
        proposer=str(header.get("proposer_address") or ""), app_hash=str(header.get("app_hash") or ""),
        trades=trades, settled_slots=settled, block_events=len(block_events), signatures=signatures)


def _market_events(events: Iterable[Mapping[str, Any]]) -> tuple[tuple[Trade, ...], tuple[int, ...]]:
    trades: list[Trade] = []
    settled: set[int] = set()
    for event in events:
        kind = event.get("type")
        try:
            if kind == "trade":
                trades.append(_trade(_attributes(event)))
            elif kind in ("settlement.participant", "settlement.slot"):
                settled.add(int(_attributes(event)["slot"]))
        except (KeyError, ValueError) as exc:  # an event of another shape must not stop the feed
            log.warning("ignoring a malformed %s event: %s", kind, exc)
    return tuple(trades), tuple(sorted(settled))


BlockHandler = Callable[[BlockInfo, bool], Awaitable[None]]
"""Called per block, in height order; the flag is True when earlier blocks may have been missed (resync)."""
StatusHandler = Callable[[bool, str], Awaitable[None]]
"""Called when the subscription comes up (True) or goes down (False, with the reason)."""


class Follower:
    def __init__(self, node: Node, on_block: BlockHandler, on_status: StatusHandler) -> None:
        self.node = node
        self.on_block = on_block
        self.on_status = on_status
        self.last_height = 0
        self.connected = False

    async def run(self) -> None:
        """Follow blocks until cancelled, reconnecting with back-off."""
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except (OSError, WebSocketException, NodeUnreachable, RpcError, TimeoutError, ValueError,
                    KeyError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if self.connected:
                    log.warning("block subscription to %s lost: %s; reconnecting", self.node.websocket_url, reason)
                elif failures == 0:
                    log.warning("cannot subscribe to blocks at %s: %s; retrying", self.node.websocket_url, reason)
                self.connected = False
                await self.on_status(False, reason)
                delay = RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)]
                failures += 1
                await asyncio.sleep(delay)  # back-off before reconnecting: there is no event to wait for

    async def _session(self) -> None:
        async with connect(self.node.websocket_url, max_size=MAX_MESSAGE_BYTES, open_timeout=10,
                           ping_interval=20, ping_timeout=20) as socket:
            await socket.send(json.dumps(SUBSCRIBE))
            ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if "error" in ack:
                raise RpcError(f"subscribe refused: {ack['error']}")
            self.connected = True
            await self.on_status(True, "")
            await self._catch_up(int((await self.node.status())["sync_info"]["latest_block_height"]) + 1)
            async for raw in socket:
                message = json.loads(raw)
                if "error" in message:
                    raise RpcError(f"subscription ended by the node: {message['error']}")
                value = ((message.get("result") or {}).get("data") or {}).get("value")
                if not value or "block" not in value:
                    continue
                seen = time.time_ns()
                height = int(value["block"]["header"]["height"])
                if height <= self.last_height:
                    continue
                await self._catch_up(height)
                await self._deliver(block_info(value["block"], value.get("result_finalize_block"), seen))

    async def _catch_up(self, upto: int) -> None:
        """Fetch heights after the last one delivered and before ``upto`` (the next live one)."""
        first, resync = self.last_height + 1, False
        if self.last_height == 0:
            first = max(1, upto - HISTORY_ON_START)
        elif upto - first > MAX_CATCH_UP:
            first, resync = upto - MAX_CATCH_UP, True
        for height in range(first, upto):
            try:
                block, results = await self.node.block(height)
            except RpcError as exc:  # pruned or not yet indexed: skip it, and drop what its events would update
                log.warning("block %d not available: %s", height, exc)
                resync = True
                continue
            await self._deliver(block_info(block, results, None), resync)
            resync = False

    async def _deliver(self, info: BlockInfo, resync: bool = False) -> None:
        self.last_height = info.height
        await self.on_block(info, resync)
