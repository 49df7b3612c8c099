"""A thin ABCI 2.0 socket server for the CometBFT v0.38 line.

CometBFT opens four connections (consensus, mempool, query, snapshot) and
sends length-delimited ``Request`` messages on each; the server answers every
request in order on the connection it came from. The server only decodes,
dispatches to an application object and encodes: no ledger logic lives here.

Access to the application is serialised by one lock, so the four connections
are served concurrently while the state machine sees one call at a time.
A connection that sends malformed bytes is logged and closed; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from abci_app.framing import MAX_FRAME_BYTES, FrameError, frame, read_frame
from abci_app.pb.tendermint.abci import types_pb2 as abci

log = logging.getLogger("gridledger.abci")


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


class AbciServer:
    """Serve one application on a TCP or Unix socket address.

    ``address`` is ``tcp://HOST:PORT`` or ``unix://PATH`` (CometBFT's
    ``proxy_app`` syntax).
    """

    def __init__(self, app: Application, address: str, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.app = app
        self.address = address
        self.max_frame_bytes = max_frame_bytes
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
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername") or "local socket"
        log.debug("ABCI connection from %s", peer)
        try:
            await self._serve_requests(reader, writer)
        except (FrameError, DecodeError, ValueError) as exc:
            log.error("closing ABCI connection from %s: malformed request: %s", peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.warning("ABCI connection from %s broke: %s", peer, exc)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            payload = await read_frame(reader, self.max_frame_bytes)
            if payload is None:
                return
            request = abci.Request()
            request.ParseFromString(payload)
            response = self.respond(request)
            writer.write(frame(response.SerializeToString()))
            # CometBFT's socket client buffers requests and sends Flush when it
            # waits for answers; drain then, and whenever our buffer grows.
            if request.WhichOneof("value") == "flush" or writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()

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
            except Exception as exc:  # an application bug, reported to CometBFT as ABCI says
                log.exception("application failed on %s", kind)
                response.exception.error = f"{kind}: {type(exc).__name__}: {exc}"
                return response
            getattr(response, kind).CopyFrom(result)
        return response


def parse_tcp_address(address: str) -> tuple[str, int]:
    """Split ``tcp://HOST:PORT`` (the scheme is optional)."""
    rest = address[len("tcp://") :] if address.startswith("tcp://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not a tcp address: {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)
