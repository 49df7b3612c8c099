"""Local control socket: how short-lived CLI commands reach a running p2p host.

``gridledger p2p listen`` serves a Unix domain socket (``<home>/control.sock``,
mode 0600, so only the owner can use it). Each request is one JSON object on
one line; each answer is one JSON line with ``"ok": true`` or ``"ok": false``
and ``"error"``. ``watch`` answers with a stream of lines until the client
hangs up. Private keys never cross this socket: the CLI signs offers itself
and hands the listener only the signed bytes to gossip.

    {"op": "status"}                      host, chain, peers, drop counters
    {"op": "offers"}                      live verified offers + counters
    {"op": "offer", "offer_id": HEX}      one cached offer (signed bytes, base64)
    {"op": "publish", "offer": BASE64}    gossip a signed offer
    {"op": "watch", "offers": BOOL}       stream of feed snapshots (and offers)
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

from node.p2p import messages
from node.p2p.host import P2PHost
from node.p2p.inbox import Admitted
from node.p2p.messages import MessageError, SignedOffer

log = logging.getLogger("gridledger.p2p.control")

SOCKET_NAME = "control.sock"
MAX_REQUEST_BYTES = 64 * 1024
# AF_UNIX paths are limited to 108 bytes on Linux (including the final NUL).
MAX_SOCKET_PATH = 107


class ControlError(Exception):
    """The host is not reachable or refused the request."""


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ControlError(f"control socket path {path} is longer than {MAX_SOCKET_PATH} bytes; use a shorter --home")


# -- server (inside the listener, on trio) ------------------------------------------------
async def serve(host: P2PHost, path: Path, extra_status: Mapping[str, Any] | None = None,
                task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the control socket until cancelled."""
    check_socket_path(path)
    if path.exists() or path.is_symlink():
        path.unlink()  # a stale socket of an earlier run
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(16)
    listener = trio.SocketListener(sock)
    handler = _Handler(host, dict(extra_status or {}))
    task_status.started()
    try:
        await trio.serve_listeners(handler.handle, [listener])
    finally:
        path.unlink(missing_ok=True)


class _Handler:
    def __init__(self, host: P2PHost, extra_status: dict[str, Any]) -> None:
        self.host = host
        self.extra_status = extra_status

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                request = await _read_line(stream)
                op = request.get("op")
                if op == "watch":
                    await self._watch(stream, bool(request.get("offers", False)))
                    return
                answer = await self._answer(op, request)
            except ControlError as exc:
                answer = {"ok": False, "error": str(exc)}
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            try:
                await stream.send_all(_line(answer))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    async def _answer(self, op: Any, request: Mapping[str, Any]) -> dict[str, Any]:
        host = self.host
        if op == "status":
            return {"ok": True, **host.status(), **self.extra_status}
        if op == "offers":
            now = host.inbox.now()
            return {"ok": True, "now": now, "offers": [offer_entry(o) for o in host.inbox.offers.live(now)],
                    **host.inbox.stats()}
        if op == "offer":
            oid = _hex(request.get("offer_id"))
            offer = host.inbox.offers.get(oid)
            if offer is None:
                raise ControlError(f"offer {oid.hex()} is not in this host's cache (unknown, taken down or expired)")
            return {"ok": True, **offer_entry(offer)}
        if op == "publish":
            offer = _offer_from(request.get("offer"))
            try:
                await host.publish_offer(offer)
            except MessageError as exc:
                raise ControlError(f"offer refused: {exc}") from exc
            return {"ok": True, "offer_id": offer.offer_id.hex(), "topic": host.offer_topic(offer.body.zone)}
        raise ControlError(f"unknown op {op!r}")

    async def _watch(self, stream: trio.SocketStream, with_offers: bool) -> None:
        try:
            channel = self.host.watch()
        except RuntimeError as exc:
            await stream.send_all(_line({"ok": False, "error": str(exc)}))
            return
        await stream.send_all(_line({"ok": True, "watching": self.host.topic_names()}))
        # Start with the newest snapshot of each zone, so a watcher sees the market at once.
        for feed in list(self.host.inbox.latest_feed.values()):
            await stream.send_all(_line(event_entry(Admitted(feed=feed))))
        async with channel:
            async for item in channel:
                if item.offer is not None and not with_offers:
                    continue
                try:
                    await stream.send_all(_line(event_entry(item)))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return


def offer_entry(offer: SignedOffer) -> dict[str, Any]:
    return {**messages.offer_json(offer), "offer_b64": base64.b64encode(offer.encode()).decode()}


def event_entry(item: Admitted) -> dict[str, Any]:
    if item.offer is not None:
        return {"kind": "offer", **messages.offer_json(item.offer)}
    assert item.feed is not None
    return {"kind": "feed", **messages.plain(item.feed.body), "signature": item.feed.signature.hex()}


def _hex(value: Any) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError as exc:
        raise ControlError(f"{value!r} is not hex") from exc


def _offer_from(value: Any) -> SignedOffer:
    try:
        data = base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise ControlError("offer must be base64") from exc
    try:
        return messages.decode_as(SignedOffer, data)
    except MessageError as exc:
        raise ControlError(str(exc)) from exc


async def _read_line(stream: trio.SocketStream) -> dict[str, Any]:
    buffer = b""
    while b"\n" not in buffer:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > MAX_REQUEST_BYTES:
            raise ControlError("request too large")
    try:
        request = json.loads(buffer.split(b"\n", 1)[0] or b"{}")
    except json.JSONDecodeError as exc:
        raise ControlError(f"request is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise ControlError("request must be a JSON object")
    return request


def _line(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode() + b"\n"


# -- client (in the CLI, blocking) ------------------------------------------------------
class ControlClient:
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        check_socket_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise ControlError(f"no p2p host listening on {self.path} ({exc.strerror or exc}); "
                               "start one with `gridledger p2p listen`") from exc
        return sock

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        with self._connect() as sock:
            sock.sendall(_line({"op": op, **fields}))
            answer = _first_answer(_lines(sock))
        return answer

    def stream(self, op: str, idle_timeout: float | None = None, **fields: Any) -> Iterator[dict[str, Any]]:
        """Lines of a streaming op; ``idle_timeout`` None waits forever between lines."""
        with self._connect() as sock:
            sock.sendall(_line({"op": op, **fields}))
            lines = _lines(sock, after_first=lambda: sock.settimeout(idle_timeout))
            _first_answer(lines)
            yield from lines


def _first_answer(lines: Iterator[dict[str, Any]]) -> dict[str, Any]:
    answer = next(lines, None)
    if answer is None:
        raise ControlError("the p2p host closed the connection without an answer")
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "request failed")))
    return answer


def _lines(sock: socket.socket, after_first: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
    buffer = b""
    first = True
    while True:
        while b"\n" not in buffer:
            try:
                chunk = sock.recv(65536)
            except TimeoutError as exc:
                raise ControlError("the p2p host did not answer in time") from exc
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield json.loads(line)
        if first and after_first is not None:
            after_first()
        first = False
