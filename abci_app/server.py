"""A thin ABCI 2.0 socket server for the CometBFT v0.38 line.

CometBFT opens four connections (consensus, mempool, query, snapshot) and
sends length-delimited ``Request`` messages on each; the server answers every
request in order on the connection it came from. The server only decodes,
dispatches to an application object and encodes: no ledger logic lives here.

Access to the application is serialised by one lock, so the four connections
are served concurrently while the state machine sees one call at a time.

CometBFT stops itself when any of its four connections breaks or answers with
an ABCI ``Exception`` (its socket client treats both as fatal), so one bad
request must never cost a connection:

* a frame that is well delimited but not a ``Request`` strict protobuf
  accepts gets an answer and the connection goes on: a ``Query`` whose path
  is not UTF-8 (CometBFT's RPC lets anyone send one) gets a ``ResponseQuery``
  with code 100 (``BadQuery``); anything else gets an ``Exception`` response;
* an exception raised by the application in ``Query`` or ``CheckTx`` (which
  only read state) becomes a code 1 answer of that call, in ``ProcessProposal``
  a rejection and in ``PrepareProposal`` an empty proposal, not an ``Exception``;
* only a stream that cannot be resynchronised (an over-long length prefix, a
  frame above the size limit, a stream ending inside a frame, a frame that
  does not arrive within ``frame_timeout`` seconds) is closed.

Resources are capped: at most ``max_connections`` connections are served (the
next is closed at once), and the payloads of large frames held in memory at
one time, over all connections, are bounded by ``max_buffered_bytes``: a large
frame reserves its declared length before its body is read and waits for room
(its socket is not read meanwhile, so TCP pushes back on the sender).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from abci_app.framing import (
    MAX_FRAME_BYTES,
    FrameError,
    FrameReader,
    Undecodable,
    decode_request,
    frame,
)
from abci_app.ledger.errors import BadQuery, LedgerError
from abci_app.pb.tendermint.abci import types_pb2 as abci

log = logging.getLogger("gridledger.abci")

# CometBFT needs four connections; the rest leaves room for abci-cli and monitoring.
MAX_CONNECTIONS = 16
# Room for two frames of the largest size at once (a FinalizeBlock and a ProcessProposal).
MAX_BUFFERED_BYTES = 2 * MAX_FRAME_BYTES
# Frames up to this size skip the reservation: queries and transactions are never
# queued behind large frames, and at most MAX_CONNECTIONS of them are held at once.
SMALL_FRAME_BYTES = 64 * 1024
# CometBFT writes a whole frame at once (its client flushes within 20 ms);
# a frame still incomplete after this long comes from a stalled or hostile peer.
FRAME_TIMEOUT_S = 30.0
# Flush our responses once this many bytes wait, even without a Flush request.
_WRITE_FLUSH_BYTES = 1 << 20


class Application(Protocol):
    """The calls an ABCI application answers (ABCI++ of CometBFT v0.38)."""

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo: ...
    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain: ...
    def query(self, req: abci.RequestQuery) -> abci.ResponseQuery: ...
    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx: ...
    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal: ...
    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal: ...
    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock: ...
    def extend_vote(self, req: abci.RequestExtendVote) -> abci.ResponseExtendVote: ...
    def verify_vote_extension(
        self, req: abci.RequestVerifyVoteExtension
    ) -> abci.ResponseVerifyVoteExtension: ...
    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit: ...
    def list_snapshots(self, req: abci.RequestListSnapshots) -> abci.ResponseListSnapshots: ...
    def offer_snapshot(self, req: abci.RequestOfferSnapshot) -> abci.ResponseOfferSnapshot: ...
    def load_snapshot_chunk(self, req: abci.RequestLoadSnapshotChunk) -> abci.ResponseLoadSnapshotChunk: ...
    def apply_snapshot_chunk(
        self, req: abci.RequestApplySnapshotChunk
    ) -> abci.ResponseApplySnapshotChunk: ...


# Request oneof field -> Response oneof field. The names coincide in v0.38.
_APP_CALLS = (
    "info",
    "init_chain",
    "query",
    "check_tx",
    "prepare_proposal",
    "process_proposal",
    "finalize_block",
    "extend_vote",
    "verify_vote_extension",
    "commit",
    "list_snapshots",
    "offer_snapshot",
    "load_snapshot_chunk",
    "apply_snapshot_chunk",
)


class ByteBudget:
    """Bytes that frame payloads may hold at once, over all connections; first come, first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @contextlib.asynccontextmanager
    async def reserve(self, size: int) -> AsyncIterator[None]:
        """Hold ``size`` bytes of the budget for the duration of the block; wait for room first."""
        if size > self.limit:
            raise FrameError(f"frame of {size} bytes exceeds the buffer budget of {self.limit}")
        if size == 0:
            yield
            return
        if self._waiters or self.used + size > self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (size, waiter)
            self._waiters.append(entry)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release(size)  # granted just as we were cancelled
                else:
                    with contextlib.suppress(ValueError):  # _grant may have dropped it already
                        self._waiters.remove(entry)
                    self._grant()
                raise
        else:
            self.used += size
        try:
            yield
        finally:
            self._release(size)

    def _release(self, size: int) -> None:
        self.used -= size
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            size, waiter = self._waiters.popleft()
            if waiter.done():  # cancelled: its task is being torn down
                continue
            self.used += size
            waiter.set_result(None)


class AbciServer:
    """Serve one application on a TCP or Unix socket address.

    ``address`` is ``tcp://HOST:PORT`` or ``unix://PATH`` (CometBFT's
    ``proxy_app`` syntax).
    """

    def __init__(self, app: Application, address: str, max_frame_bytes: int = MAX_FRAME_BYTES,
                 max_connections: int = MAX_CONNECTIONS, max_buffered_bytes: int = MAX_BUFFERED_BYTES,
                 frame_timeout: float = FRAME_TIMEOUT_S) -> None:
        if max_buffered_bytes < max_frame_bytes:
            raise ValueError("max_buffered_bytes must hold at least one frame of max_frame_bytes")
        self.app = app
        self.address = address
        self.max_frame_bytes = max_frame_bytes
        self.max_connections = max_connections
        self.frame_timeout = frame_timeout
        self.budget = ByteBudget(max_buffered_bytes)
        self.refused_connections = 0
        self._lock = threading.Lock()
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Callable[[Any], Any]] = {
            name: getattr(app, name) for name in _APP_CALLS
        }

    async def start(self) -> None:
        if self.address.startswith("unix://"):
            self._server = await asyncio.start_unix_server(self._serve, path=self.address[len("unix://") :])
        else:
            host, port = parse_tcp_address(self.address)
            self._server = await asyncio.start_server(self._serve, host=host, port=port)
        log.info("ABCI server listening on %s", self.bound_address)

    @property
    def bound_address(self) -> str:
        """The address actually bound (resolves port 0 to the chosen port)."""
        sockets = getattr(self._server, "sockets", None)
        if not sockets:
            return self.address
        sockname = sockets[0].getsockname()
        if isinstance(sockname, tuple):
            return f"tcp://{sockname[0]}:{sockname[1]}"
        return f"unix://{sockname}"

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or "local socket"
        if len(self._connections) >= self.max_connections:
            self.refused_connections += 1
            log.warning("refusing ABCI connection from %s: %d connections open (the limit)",
                        peer, len(self._connections))
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        log.debug("ABCI connection from %s", peer)
        try:
            await self._serve_requests(reader, writer)
        except FrameError as exc:
            log.error("closing ABCI connection from %s: malformed frame: %s", peer, exc)
            with contextlib.suppress(ConnectionError, OSError):
                response = abci.Response(exception=abci.ResponseException(error=f"malformed frame: {exc}"))
                writer.write(frame(response.SerializeToString()))
        except TimeoutError:
            log.error("closing ABCI connection from %s: a frame did not arrive within %gs", peer, self.frame_timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.warning("ABCI connection from %s broke: %s", peer, exc)
        except asyncio.CancelledError:
            # stop() cancels the connections; ending normally spares asyncio's connection callback
            # (Python 3.11) a traceback about the cancelled task.
            log.debug("ABCI connection from %s closed by stop()", peer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(reader)
        out = bytearray()
        """Answers not yet written: they go out together when no request is waiting (or on Flush)."""
        try:
            while True:
                if not frames.buffered:
                    if out:
                        out = await self._write(writer, out, drain=False)
                    if not await frames.fill():  # a connection may idle between frames as long as it likes
                        return
                # The usual case under load: the whole frame is here already; no waiting, no timer.
                payload = frames.next_frame(self.max_frame_bytes)
                if payload is not None and len(payload) <= SMALL_FRAME_BYTES:
                    response, kind = self.answer(payload)
                    out += frame(response.SerializeToString())
                elif payload is not None:
                    async with self.budget.reserve(len(payload)):
                        response, kind = self.answer(payload)
                        out += frame(response.SerializeToString())
                else:
                    response, kind = await self._answer_partial(frames)
                    out += frame(response.SerializeToString())
                # CometBFT's socket client sends Flush when it waits for answers: answer then, and
                # whenever the answers pile up.
                if kind == "flush" or len(out) > _WRITE_FLUSH_BYTES:
                    out = await self._write(writer, out, drain=True)
        finally:
            if out:  # answers owed before an error or a stop still go out, in order
                writer.write(out)

    async def _answer_partial(self, frames: FrameReader) -> tuple[abci.Response, str | None]:
        """Read a frame that has only partly arrived (each part within the frame timeout) and answer it;
        a large frame waits for room in the buffered-bytes budget first."""
        async with asyncio.timeout(self.frame_timeout):
            length = await frames.length()
        if length > self.max_frame_bytes:
            raise FrameError(f"frame of {length} bytes exceeds the limit of {self.max_frame_bytes}")
        async with self.budget.reserve(length if length > SMALL_FRAME_BYTES else 0):
            async with asyncio.timeout(self.frame_timeout):
                payload = await frames.body(length)
            return self.answer(payload)

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, out: bytearray, *, drain: bool) -> bytearray:
        writer.write(out)
        if drain or writer.transport.get_write_buffer_size() > _WRITE_FLUSH_BYTES:
            await writer.drain()
        return bytearray()

    def answer(self, payload: bytes) -> tuple[abci.Response, str | None]:
        """The response to one frame payload and the request's kind (``None`` if unknown); never raises."""
        request = decode_request(payload)
        if isinstance(request, Undecodable):
            log.warning("undecodable ABCI request: %s", request.reason)
            return answer_undecodable(request), request.kind
        kind = request.WhichOneof("value")
        if kind is None:
            log.warning("ABCI request carries no known message")
            error = "request carries no known message"
            return abci.Response(exception=abci.ResponseException(error=error)), None
        return self.respond(request), kind

    def respond(self, request: abci.Request) -> abci.Response:
        """Answer one decoded request (transport-independent, used by tests too)."""
        kind = request.WhichOneof("value")
        response = abci.Response()
        if kind is None:
            raise ValueError("request carries no known message")
        if kind == "echo":
            response.echo.message = request.echo.message
        elif kind == "flush":
            response.flush.SetInParent()
        else:
            handler = self._handlers[kind]
            try:
                with self._lock:
                    result = handler(getattr(request, kind))
            except Exception as exc:  # an application bug
                log.exception("application failed on %s", kind)
                return _answer_failure(kind, exc)
            getattr(response, kind).CopyFrom(result)
        return response


def _answer_failure(kind: str, exc: Exception) -> abci.Response:
    """What CometBFT gets when the application raised (the traceback is logged).

    Query and CheckTx only read state, so an error answer of the same call is
    safe and keeps CometBFT running. A proposal the application cannot judge
    is rejected, and one it cannot build is empty: both only cost a round,
    never safety, whereas an ``Exception`` would stop CometBFT, and a block
    crafted to make ProcessProposal raise would stop every validator. Every
    other call (FinalizeBlock, Commit, Info, InitChain, ...) is answered with
    an ABCI ``Exception``, which stops CometBFT: no answer can be invented
    there, and stopping is better than diverging.
    """
    reason = f"internal error: {type(exc).__name__}"
    if kind == "process_proposal":
        return abci.Response(process_proposal=abci.ResponseProcessProposal(
            status=abci.ResponseProcessProposal.REJECT))
    if kind == "prepare_proposal":
        return abci.Response(prepare_proposal=abci.ResponsePrepareProposal(txs=[]))
    if kind == "query":
        return abci.Response(query=abci.ResponseQuery(code=LedgerError.code, codespace=LedgerError.codespace,
                                                      log=reason))
    if kind == "check_tx":
        return abci.Response(check_tx=abci.ResponseCheckTx(code=LedgerError.code, codespace=LedgerError.codespace,
                                                           log=reason))
    return abci.Response(exception=abci.ResponseException(error=f"{kind}: {type(exc).__name__}: {exc}"))


def answer_undecodable(request: Undecodable) -> abci.Response:
    """The response to a frame that strict protobuf refuses; the connection goes on."""
    if request.kind == "query":
        # Anyone can send this through CometBFT's RPC (``abci_query?path=0x<bytes>``).
        path = bytes(request.lenient.path)
        log_line = f"query path is not valid UTF-8: {path[:64].hex()}{'...' if len(path) > 64 else ''}"
        return abci.Response(query=abci.ResponseQuery(code=BadQuery.code, codespace=BadQuery.codespace,
                                                      log=log_line, height=request.lenient.height))
    if request.kind == "echo":
        message = bytes(request.lenient.message).decode("utf-8", errors="replace")
        return abci.Response(echo=abci.ResponseEcho(message=message))
    return abci.Response(exception=abci.ResponseException(error=f"undecodable request: {request.reason}"))


def parse_tcp_address(address: str) -> tuple[str, int]:
    """Split ``tcp://HOST:PORT`` (the scheme is optional)."""
    rest = address[len("tcp://") :] if address.startswith("tcp://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not a tcp address: {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)
