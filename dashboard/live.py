"""What the dashboard keeps between blocks: recent blocks, slot caches, and the fan-out to open pages.

``SlotCache`` keeps per-slot answers that change only when a block's events
say so (a slot's trades, a slot's settlement), so the day views of the Prices
and Settlement pages do not re-read 96 slots per block. An entry is valid if
it was read at or after the last height whose events touched its slot, and at
or after the last resync (a reconnect that may have skipped events).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dashboard.follower import BlockInfo, Trade

HISTORY_BLOCKS = 300
RECENT_TRADES = 20
SUBSCRIBER_QUEUE = 64

T = TypeVar("T")


@dataclass
class BlockRecord:
    info: BlockInfo
    mempool: int | None = None
    """Transactions waiting in the primary node's mempool right after this block."""


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]

    def json(self) -> str:
        return json.dumps(self.data, separators=(",", ":"), sort_keys=True)


class Hub:
    """Server-sent events to every open page; a page too slow to keep up loses its oldest events."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._queues.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, event: Event) -> None:
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)


@dataclass
class _Entry(Generic[T]):
    value: T
    height: int


class SlotCache(Generic[T]):
    def __init__(self) -> None:
        self._entries: dict[int, _Entry[T]] = {}
        self._touched: dict[int, int] = {}
        self._valid_from = 0

    def touch(self, slot: int, height: int) -> None:
        """Block ``height`` changed ``slot``."""
        self._touched[slot] = max(height, self._touched.get(slot, 0))
        self._entries.pop(slot, None)

    def resync(self, height: int) -> None:
        """Events before ``height`` may have been missed: nothing read earlier is trusted."""
        self._valid_from = height
        self._entries.clear()
        self._touched.clear()

    def get(self, slot: int) -> tuple[bool, T | None]:
        entry = self._entries.get(slot)
        if entry is None:
            return False, None
        return True, entry.value

    def put(self, slot: int, value: T, height: int) -> None:
        if height >= max(self._valid_from, self._touched.get(slot, 0)):
            self._entries[slot] = _Entry(value, height)

    async def fetch(self, slot: int, read: Callable[[int], Awaitable[tuple[T, int]]]) -> T:
        hit, value = self.get(slot)
        if hit:
            return value  # type: ignore[return-value]  # a stored None is a real answer
        value, height = await read(slot)
        self.put(slot, value, height)
        return value


class LiveState:
    """Recent blocks, recent trades and the connection to the primary node."""

    def __init__(self) -> None:
        self.history: deque[BlockRecord] = deque(maxlen=HISTORY_BLOCKS)
        self.trades: deque[tuple[BlockInfo, Trade]] = deque(maxlen=RECENT_TRADES)
        self.connected = False
        self.error = ""
        self.hub = Hub()
        self.trade_cache: SlotCache[list[dict[str, Any]]] = SlotCache()
        self.settlement_cache: SlotCache[dict[str, Any] | None] = SlotCache()

    @property
    def height(self) -> int:
        return self.history[-1].info.height if self.history else 0

    def add(self, info: BlockInfo, resync: bool) -> BlockRecord:
        if resync:
            self.trade_cache.resync(info.height)
            self.settlement_cache.resync(info.height)
        for slot in info.trade_slots:
            self.trade_cache.touch(slot, info.height)
        for slot in info.settled_slots:
            self.settlement_cache.touch(slot, info.height)
        self.trades.extend((info, trade) for trade in info.trades)
        record = BlockRecord(info)
        self.history.append(record)
        return record

    def previous(self, record: BlockRecord) -> BlockRecord | None:
        """The block just before ``record`` in the history, if it is its parent."""
        index = len(self.history) - 1
        while index >= 0 and self.history[index] is not record:
            index -= 1
        if index <= 0:
            return None
        parent = self.history[index - 1]
        return parent if parent.info.height == record.info.height - 1 else None
