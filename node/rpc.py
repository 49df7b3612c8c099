"""A small client for CometBFT's JSON-RPC (the parts gridledger uses)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import httpx


class RpcError(Exception):
    """The node answered with a JSON-RPC error."""


class NodeUnreachable(Exception):
    """No answer from the node (connection refused, timeout)."""

    def __init__(self, message: str, url: str = "", during: str = "") -> None:
        super().__init__(message)
        self.url = url
        """The node's RPC URL, when known."""
        self.during = during
        """What the caller was doing, e.g. "waiting for the commit" (may be empty)."""


def normalize_url(url: str) -> str:
    """A node address as people write it, as an HTTP URL: ``tcp://H:P`` (config.toml's form) and a bare
    ``H:P`` become ``http://H:P``; ``http(s)://`` stays. Anything else is an RpcError naming the forms."""
    text = url.strip().rstrip("/")
    if text.startswith(("http://", "https://")):
        return text
    if text.startswith("tcp://"):
        return "http://" + text.removeprefix("tcp://")
    host, sep, port = text.rpartition(":")
    if sep and host and "/" not in text and port.isdigit():
        return "http://" + text
    raise RpcError(f"node address {url!r}: write http://HOST:PORT, tcp://HOST:PORT or HOST:PORT")


def request_body(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC 2.0 request of ``method``."""
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def result_of(method: str, response: httpx.Response) -> Any:
    """The ``result`` of a JSON-RPC answer; ``RpcError`` for an error answer or one that is not JSON."""
    try:
        payload = response.json()
    except json.JSONDecodeError as exc:
        raise RpcError(f"{method}: HTTP {response.status_code}, not JSON") from exc
    if "error" in payload:
        error = payload["error"]
        raise RpcError(f"{method}: {error.get('message')} {error.get('data', '')}".strip())
    return payload["result"]


class CometRpc:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = normalize_url(url)
        self._client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, **params: Any) -> Any:
        try:
            response = self._client.post(self.url, json=request_body(method, params))
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"{self.url}: {exc}", url=self.url) from exc
        return result_of(method, response)

    # -- typed helpers ----------------------------------------------------------------
    def status(self) -> Any:
        return self.call("status")

    def height(self) -> int:
        return int(self.status()["sync_info"]["latest_block_height"])

    def broadcast_tx_sync(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_sync", tx=base64.b64encode(tx).decode())

    def abci_query(self, path: str, data: bytes = b"", height: int = 0) -> Any:
        return self.call("abci_query", path=path, data=data.hex(), height=str(height), prove=False)["response"]

    def query_json(self, path: str) -> Any:
        response = self.abci_query(path)
        if int(response.get("code", 0)) != 0:
            raise RpcError(f"query {path}: code {response['code']}: {response.get('log', '')}")
        return json.loads(base64.b64decode(response["value"]))

    def tx(self, tx_hash: str) -> Any:
        return self.call("tx", hash=base64.b64encode(bytes.fromhex(tx_hash)).decode(), prove=False)

    def tx_search(self, query: str, per_page: int = 100) -> Any:
        return self.call("tx_search", query=query, prove=False, page="1", per_page=str(per_page), order_by="asc")

    def wait_tx(self, tx_hash: str, timeout: float = 30.0) -> Any:
        """Poll until the transaction is committed (or the deadline passes)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.tx(tx_hash)
            except RpcError as exc:
                if "not found" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def wait_height(self, height: int, timeout: float = 30.0) -> int:
        """Poll until the node has committed ``height``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                current = self.height()
                if current >= height:
                    return current
            except NodeUnreachable:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"height {height} not reached in {timeout}s")
            time.sleep(0.1)


def tx_hash(tx: bytes) -> str:
    """CometBFT's transaction hash: upper-case hex SHA-256 of the bytes."""
    return hashlib.sha256(tx).hexdigest().upper()
