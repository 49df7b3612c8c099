"""Async reads of one node: CometBFT JSON-RPC and the app's JSON queries, cached per height.

``abci_query`` answers only from the last committed height (docs/queries.md),
so an answer stays true until the next commit: ``QueryCache`` keeps every
answer of the newest height and forgets them when a newer block arrives, so
any number of open pages cost one query per path and block.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx

from node.rpc import NodeUnreachable, RpcError, request_body, result_of

# docs/queries.md, "Errors".
BAD_QUERY = 100
NOT_FOUND = 101

__all__ = ["BAD_QUERY", "NOT_FOUND", "Answer", "Node", "NodeUnreachable", "QueryFailed", "RpcError"]


class QueryFailed(Exception):
    """The app refused a query path (``code`` 100: bad path or argument, 101: nothing stored there)."""

    def __init__(self, path: str, code: int, log: str, height: int = 0) -> None:
        super().__init__(f"query {path}: {log} (code {code})")
        self.path = path
        self.code = code
        self.log = log
        self.height = height
        """The committed height the refusal is from."""


@dataclass(frozen=True)
class Answer:
    """A query's decoded JSON value and the committed height it is from."""

    value: Any
    height: int


class Node:
    """One node's RPC, asynchronously (httpx), with the app's query answers cached per height."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout)
        self._height = 0
        self._answers: dict[str, Answer | QueryFailed] = {}

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def websocket_url(self) -> str:
        base = self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/websocket"

    async def call(self, method: str, **params: Any) -> Any:
        """One JSON-RPC call; ``NodeUnreachable`` without an answer, ``RpcError`` for an error answer."""
        try:
            response = await self._client.post(self.url, json=request_body(method, params))
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"{self.url}: {type(exc).__name__}: {exc}", url=self.url) from exc
        return result_of(method, response)

    # -- the app's queries ---------------------------------------------------------------
    @property
    def height(self) -> int:
        """The newest committed height seen (from blocks or answers)."""
        return self._height

    def advance(self, height: int) -> None:
        """A block of ``height`` committed: answers of older heights are stale."""
        if height > self._height:
            self._height = height
            self._answers.clear()

    async def query(self, path: str) -> Answer:
        """The app's JSON answer to ``path`` at the last committed height; ``QueryFailed`` if refused."""
        cached = self._answers.get(path)
        if cached is None:
            cached = await self._fetch(path)
        if isinstance(cached, QueryFailed):
            raise cached
        return cached

    async def query_value(self, path: str) -> Any:
        return (await self.query(path)).value

    async def query_or_none(self, path: str) -> Any | None:
        """Like ``query_value``, but None where nothing is stored under the path (code 101)."""
        try:
            return await self.query_value(path)
        except QueryFailed as exc:
            if exc.code == NOT_FOUND:
                return None
            raise

    async def _fetch(self, path: str) -> Answer | QueryFailed:
        response = (await self.call("abci_query", path=path, data="", height="0", prove=False))["response"]
        height = int(response.get("height") or 0)
        code = int(response.get("code") or 0)  # CometBFT omits zero values
        result: Answer | QueryFailed
        if code != 0:
            result = QueryFailed(path, code, str(response.get("log", "")), height)
        else:
            result = Answer(json.loads(base64.b64decode(response["value"])), height)
        self.advance(height)
        if height == self._height:
            self._answers[path] = result
        return result

    # -- CometBFT ----------------------------------------------------------------------------
    async def status(self) -> Any:
        return await self.call("status")

    async def validators(self, height: int | None = None) -> list[dict[str, Any]]:
        """The whole validator set (every page of it) at ``height`` (latest when None)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, Any] = {"page": str(page), "per_page": "100"}
            if height is not None:
                params["height"] = str(height)
            result = await self.call("validators", **params)
            found.extend(result.get("validators") or [])
            if len(found) >= int(result.get("total") or 0) or not result.get("validators"):
                return found
            page += 1

    async def block(self, height: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Block ``height`` and its FinalizeBlock results (for heights the subscription missed)."""
        block = (await self.call("block", height=str(height)))["block"]
        results = await self.call("block_results", height=str(height))
        return block, results

    async def header_app_hash(self, height: int) -> str:
        """The app hash in the header of ``height``: the state after block ``height - 1``."""
        header = (await self.call("header", height=str(height)))["header"]
        return str(header["app_hash"])

    async def mempool_size(self) -> int:
        return int((await self.call("num_unconfirmed_txs"))["n_txs"])

    async def genesis_app_state(self) -> Any:
        return (await self.call("genesis"))["genesis"].get("app_state") or {}
