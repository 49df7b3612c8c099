"""Market feed: after each committed block, a signed snapshot per zone of best prices and new trades.

A validator node runs ``publish_feed`` next to its p2p host. For every new
height it reads the market through the node's ABCI queries (``MarketSource``)
and publishes, on ``gridledger/<chain>/feed/<zone>`` for each zone it serves,
one ``SignedFeed``: per open slot the zone's best bid and ask levels, the best
ask reachable by a buyer of the zone with its effective price (grid fee
included) and the best bid, plus the block's trades touching the zone. The
snapshot is signed with the host's p2p identity key (its public key is in the
snapshot; its peer id is derived from it), never with an account key.

Data contract (docs/queries.md of the market; ``RpcMarketSource`` reads it):
``/slots``, ``/book/<slot>/<zone>``, ``/best/<slot>/<buyer zone>`` and the
``trade`` events of the block (``block_results``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import trio

from abci_app.ledger.crypto import SigningKey
from node.p2p.limits import Limits
from node.p2p.messages import FeedBody, FeedTrade, Level, Quote, SignedFeed, SlotView, sign_feed
from node.rpc import CometRpc

log = logging.getLogger("gridledger.p2p.feed")


@dataclass(frozen=True)
class Block:
    height: int
    time: int
    trades: tuple[FeedTrade, ...]


class MarketSource(Protocol):
    """What the publisher reads; the real one is ``RpcMarketSource``, tests use a fake."""

    def block(self, height: int) -> Block: ...

    def slots(self) -> list[int]: ...

    def book(self, slot: int, zone: str) -> Mapping[str, Any]: ...

    def best(self, slot: int, zone: str) -> Mapping[str, Any]: ...


# -- building a snapshot ---------------------------------------------------------------
def build_snapshot(source: MarketSource, block: Block, zone: str, chain_id: str, key: SigningKey,
                   limits: Limits) -> SignedFeed:
    views = []
    for slot in sorted(source.slots())[: limits.max_slots_per_feed]:
        book, best = source.book(slot, zone), source.best(slot, zone)
        views.append(SlotView(
            slot=slot,
            bids=_levels(book.get("bids", ()), limits.max_levels_per_side),
            asks=_levels(book.get("asks", ()), limits.max_levels_per_side),
            best_ask=_quote(best.get("best_ask", best.get("ask")), zone),
            best_bid=_quote(best.get("best_bid", best.get("bid")), zone),
        ))
    trades = tuple(t for t in block.trades if zone in (t.buyer_zone, t.seller_zone))[: limits.max_trades_per_feed]
    body = FeedBody(chain_id=chain_id, height=block.height, time=block.time, zone=zone, publisher=key.pubkey,
                    slots=tuple(views), trades=trades)
    return sign_feed(body, key)


def _levels(levels: Iterable[Mapping[str, Any]], limit: int) -> tuple[Level, ...]:
    return tuple(Level(price=int(level["price"]), quantity_wh=int(level["quantity_wh"]),
                       orders=int(level.get("orders", 1))) for level in list(levels)[:limit])


def _quote(order: Mapping[str, Any] | None, zone: str) -> tuple[Quote, ...]:
    if not order:
        return ()
    price = int(order["price"])
    return (Quote(price=price, effective_price=int(order.get("effective_price", price)),
                  quantity_wh=int(order["quantity_wh"]), zone=str(order.get("zone", zone))),)


def trades_from_events(events: Iterable[Mapping[str, Any]]) -> tuple[FeedTrade, ...]:
    """``trade`` events (CometBFT JSON: type + attributes key/value) as feed trades."""
    trades = []
    for event in events:
        if event.get("type") != "trade":
            continue
        attrs = {a["key"]: a["value"] for a in event.get("attributes", [])}
        trades.append(FeedTrade(
            trade_id=str(attrs["id"]), slot=int(attrs["slot"]), buyer=attrs["buyer"], seller=attrs["seller"],
            buyer_zone=attrs["buyer_zone"], seller_zone=attrs["seller_zone"],
            quantity_wh=int(attrs["quantity_wh"]), price=int(attrs["price"]), fee=int(attrs.get("fee", 0)),
        ))
    return tuple(trades)


# -- publishing loop ---------------------------------------------------------------------
class FeedHost(Protocol):
    """The part of ``P2PHost`` the publisher needs."""

    identity: SigningKey

    async def publish_feed(self, feed: SignedFeed) -> None: ...


async def publish_feed(host: FeedHost, source: MarketSource, heights: AsyncIterator[int],
                       zones: Sequence[str], chain_id: str, limits: Limits | None = None,
                       max_catch_up: int = 10) -> None:
    """For each new committed height, publish one snapshot per zone (until ``heights`` ends).

    Heights skipped by the stream (a slow node, a reconnect) are caught up to
    ``max_catch_up`` blocks back, so their trades are not lost; the book part
    always reflects the newest state.
    """
    limits = limits or Limits()
    last = 0
    async for height in heights:
        if height <= last:
            continue
        start = max(last + 1, height - max_catch_up + 1) if last else height
        for h in range(start, height + 1):
            try:
                feeds = await trio.to_thread.run_sync(_snapshots, source, h, zones, chain_id, host.identity, limits)
            except Exception as exc:  # a query failing must not stop the feed for the next block
                log.warning("feed: height %d skipped: %s", h, exc)
                continue
            for feed in feeds:
                await host.publish_feed(feed)
        last = height


def _snapshots(source: MarketSource, height: int, zones: Sequence[str], chain_id: str, key: SigningKey,
               limits: Limits) -> list[SignedFeed]:
    block = source.block(height)
    return [build_snapshot(source, block, zone, chain_id, key, limits) for zone in zones]


# -- the real source: CometBFT RPC ------------------------------------------------------
class RpcMarketSource:
    def __init__(self, rpc: CometRpc) -> None:
        self.rpc = rpc

    def block(self, height: int) -> Block:
        header = self.rpc.call("header", height=str(height))["header"]
        results = self.rpc.call("block_results", height=str(height))
        events: list[Mapping[str, Any]] = list(results.get("finalize_block_events") or [])
        for tx_result in results.get("txs_results") or []:
            if int(tx_result.get("code", 0)) == 0:
                events.extend(tx_result.get("events") or [])
        return Block(height=height, time=parse_rfc3339(header["time"]), trades=trades_from_events(events))

    def slots(self) -> list[int]:
        answer = self.rpc.query_json("/slots")
        items = answer.get("slots", []) if isinstance(answer, dict) else answer
        return [int(item["slot"]) if isinstance(item, dict) else int(item) for item in items]

    def book(self, slot: int, zone: str) -> Mapping[str, Any]:
        answer: Mapping[str, Any] = self.rpc.query_json(f"/book/{slot}/{zone}")
        return answer

    def best(self, slot: int, zone: str) -> Mapping[str, Any]:
        answer: Mapping[str, Any] = self.rpc.query_json(f"/best/{slot}/{zone}")
        return answer


def parse_rfc3339(text: str) -> int:
    """Whole unix seconds of CometBFT's header time (nanosecond precision, Z suffix)."""
    main = text.rstrip("Z").split(".")[0]
    return int(datetime.fromisoformat(main + "+00:00").timestamp())


async def comet_new_heights(rpc_url: str) -> AsyncIterator[int]:
    """Heights of new blocks from CometBFT's websocket ``NewBlock`` events (no polling).

    The blocking websocket client runs in a worker thread and hands each height
    to trio; leaving the iterator closes the socket, which ends the thread.
    """
    from websockets.sync.client import connect

    ws_url = rpc_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/websocket"
    send, receive = trio.open_memory_channel[int](16)
    token = trio.lowlevel.current_trio_token()
    sockets = contextlib.ExitStack()
    socket = await trio.to_thread.run_sync(
        lambda: sockets.enter_context(connect(ws_url, open_timeout=10, max_size=16 * 1024 * 1024)))
    socket.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                            "params": {"query": "tm.event='NewBlock'"}}))

    def reader() -> None:
        try:
            for raw in socket:
                height = _new_block_height(raw)
                if height is not None:
                    trio.from_thread.run(send.send, height, trio_token=token)
        except Exception as exc:  # socket closed (normal at exit) or node gone
            log.debug("feed: websocket reader ends: %s", exc)
        finally:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(send.close, trio_token=token)

    thread = threading.Thread(target=reader, name="comet-newblock", daemon=True)
    thread.start()
    try:
        async with receive:
            async for height in receive:
                yield height
    finally:
        sockets.close()


def _new_block_height(raw: str | bytes) -> int | None:
    message = json.loads(raw)
    data = (message.get("result") or {}).get("data") or {}
    if data.get("type") != "tendermint/event/NewBlock":
        return None
    return int(data["value"]["block"]["header"]["height"])
