"""How the load generator hands pre-serialised transactions to the nodes: websocket or HTTP JSON-RPC.

Both transports take a transaction whose JSON-RPC ``broadcast_tx_sync``
request was written before the clock started (``PreparedTx.request``) and
report the node's CheckTx answer through a callback, exactly once per
transaction. The sender never waits for an answer: it hands the request over
and moves on (open loop); only a full socket buffer can hold it back, and
that shows up as the sender falling behind its schedule.

* ``WsTransport`` (the default): ``connections`` websockets per node to
  CometBFT's ``/websocket`` endpoint. CometBFT serves the requests of one
  websocket in order, one at a time, so several requests may be in flight on
  one connection (pipelined) with no HTTP overhead per request; several
  connections per node let the node's RPC serve them in parallel.
* ``HttpTransport``: a pool of ``connections`` keep-alive HTTP/1.1
  connections per node (httpx), one request in flight per connection.
  CometBFT's RPC server speaks HTTP/2 only over TLS, which loopback test
  networks do not use, so HTTP/2 is not an option.

docs/experiments.md records which of the two sustains more on the
reference machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import websockets

from lab.load.workload import PreparedTx

TRANSPORTS = ("ws", "http")
RPC_TIMEOUT_S = 30.0
WS_OPEN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CheckAnswer:
    """What came back for one ``broadcast_tx_sync``: a CheckTx code, or an error instead."""

    code: int | None = None
    log: str = ""
    error: str = ""
    """Kind of transport or RPC error (``mempool_full``, ``duplicate``, ``timeout``, ``transport``,
    ``rpc_error``) when the node gave no CheckTx answer."""


AnswerCallback = Callable[[CheckAnswer], None]
Reply = dict[str, Any] | BaseException
"""A JSON-RPC response object, or why none came."""


class RpcCallError(RuntimeError):
    """A JSON-RPC call (not a transaction) failed: the node's error, or no answer."""


class Transport(Protocol):
    name: str

    @property
    def backlogged_sends(self) -> int:
        """Requests written while earlier bytes were still unsent (the node read slower than we wrote)."""
        ...

    async def start(self) -> None: ...

    async def submit(self, node: int, lane: int, tx: PreparedTx, on_answer: AnswerCallback) -> None:
        """Hand the request to node ``node`` (lane picks its connection); ``on_answer`` runs once, later."""
        ...

    async def call(self, node: int, lane: int, method: str, params: dict[str, Any]) -> Any:
        """One JSON-RPC call on the same path as the transactions; its ``result``, or RpcCallError."""
        ...

    async def close(self) -> None: ...


def error_kind(text: str, exc: BaseException | None = None) -> str:
    """Classify a node's JSON-RPC error text or a transport exception."""
    lowered = text.lower()
    if "mempool is full" in lowered:
        return "mempool_full"
    if "already exists in cache" in lowered:
        return "duplicate"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if exc is not None:
        return "transport"
    return "rpc_error"


def answer_from_reply(reply: Reply) -> CheckAnswer:
    """The CheckAnswer in one JSON-RPC response object (or the transport error instead)."""
    if isinstance(reply, BaseException):
        return CheckAnswer(error=error_kind(str(reply), reply), log=str(reply)[:200])
    payload = reply
    if "error" in payload:
        error = payload["error"] or {}
        text = f"{error.get('message', '')} {error.get('data', '')}".strip()
        return CheckAnswer(error=error_kind(text), log=text[:200])
    result = payload.get("result") or {}
    return CheckAnswer(code=int(result.get("code") or 0), log=str(result.get("log") or "")[:200])


def result_of(reply: Reply) -> Any:
    if isinstance(reply, BaseException):
        raise RpcCallError(str(reply)) from reply
    if "error" in reply:
        error = reply["error"] or {}
        raise RpcCallError(f"{error.get('message', '')} {error.get('data', '')}".strip())
    return reply.get("result")


def websocket_url(rpc_url: str) -> str:
    base = rpc_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + "/websocket"
    return "ws://" + base.removeprefix("http://") + "/websocket"


class _WsLane:
    """One websocket to one node; replies are matched to requests by JSON-RPC id."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.pending: dict[int, Callable[[Reply], None]] = {}
        self.reader: asyncio.Task[None] | None = None
        self._opening: asyncio.Lock = asyncio.Lock()
        self._call_ids = itertools.count(-1, -1)
        """Ids of calls that are not transactions: negative, never a transaction's uid."""
        self.backlogged_sends = 0
        """Requests written while earlier bytes still waited in this process: the node read slower than we sent."""

    async def ensure_open(self) -> Any:
        if self.ws is not None:
            return self.ws
        async with self._opening:
            if self.ws is None:
                # Replies are small and read at once: a deep incoming queue never pauses reading in a burst.
                ws = await websockets.connect(self.url, max_size=None, compression=None, max_queue=4096,
                                              open_timeout=WS_OPEN_TIMEOUT_S, ping_interval=None)
                self.ws = ws
                self.reader = asyncio.create_task(self._read(ws))
        return self.ws

    async def _read(self, ws: Any) -> None:
        problem = "connection closed"
        try:
            async for message in ws:
                payload = json.loads(message)
                callback = self.pending.pop(payload.get("id"), None)
                if callback is not None:
                    callback(payload)
        except (OSError, websockets.ConnectionClosed, ValueError) as exc:
            problem = f"connection lost: {exc}"
        finally:
            if self.ws is ws:
                self.ws = None
            self._fail_pending(ConnectionError(problem))

    def _fail_pending(self, problem: BaseException) -> None:
        pending, self.pending = self.pending, {}
        for callback in pending.values():
            callback(problem)

    async def send(self, request_id: int, request: str, callback: Callable[[Reply], None]) -> None:
        try:
            ws = await self.ensure_open()
            self.pending[request_id] = callback
            if ws.transport.get_write_buffer_size():
                self.backlogged_sends += 1
            await ws.send(request)
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            self.pending.pop(request_id, callback)(exc)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        request_id = next(self._call_ids)
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        request = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        await self.send(request_id, request, reply.set_result)
        return result_of(await asyncio.wait_for(reply, RPC_TIMEOUT_S))

    async def close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            await ws.close()
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        self._fail_pending(ConnectionError("closed by the generator"))


class WsTransport:
    """``connections`` pipelined websockets per node."""

    name = "ws"

    def __init__(self, nodes: tuple[str, ...], connections: int) -> None:
        self.lanes = [[_WsLane(websocket_url(node)) for _ in range(connections)] for node in nodes]

    async def start(self) -> None:
        await asyncio.gather(*(lane.ensure_open() for lanes in self.lanes for lane in lanes))

    def _lane(self, node: int, lane: int) -> _WsLane:
        lanes = self.lanes[node]
        return lanes[lane % len(lanes)]

    async def submit(self, node: int, lane: int, tx: PreparedTx, on_answer: AnswerCallback) -> None:
        await self._lane(node, lane).send(tx.uid, tx.request, lambda reply: on_answer(answer_from_reply(reply)))

    async def call(self, node: int, lane: int, method: str, params: dict[str, Any]) -> Any:
        return await self._lane(node, lane).call(method, params)

    @property
    def backlogged_sends(self) -> int:
        return sum(lane.backlogged_sends for lanes in self.lanes for lane in lanes)

    async def close(self) -> None:
        await asyncio.gather(*(lane.close() for lanes in self.lanes for lane in lanes))


class HttpTransport:
    """A pool of ``connections`` keep-alive HTTP/1.1 connections per node, one request in flight on each."""

    name = "http"
    backlogged_sends = 0
    """Not observable through httpx's pool (requests queue for a free connection instead)."""

    def __init__(self, nodes: tuple[str, ...], connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.urls = nodes
        self.clients = [httpx.AsyncClient(timeout=RPC_TIMEOUT_S, limits=limits) for _ in nodes]
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def submit(self, node: int, lane: int, tx: PreparedTx, on_answer: AnswerCallback) -> None:
        task = asyncio.create_task(self._post(node, tx, on_answer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _post(self, node: int, tx: PreparedTx, on_answer: AnswerCallback) -> None:
        on_answer(answer_from_reply(await self._request(node, tx.request)))

    async def _request(self, node: int, body: str) -> Reply:
        try:
            response = await self.clients[node].post(self.urls[node], content=body.encode(),
                                                     headers={"content-type": "application/json"})
            reply: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return exc
        return reply

    async def call(self, node: int, lane: int, method: str, params: dict[str, Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": -1, "method": method, "params": params})
        return result_of(await self._request(node, body))

    async def close(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            await client.aclose()


def make_transport(name: str, nodes: tuple[str, ...], connections: int) -> Transport:
    if name == "ws":
        return WsTransport(nodes, connections)
    if name == "http":
        return HttpTransport(nodes, connections)
    raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {name!r}")
