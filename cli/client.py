"""What the CLI needs from a node: chain facts, nonces, broadcasting, waiting.

Every failure to reach the node ends the command with exit code 3; a query the
node refuses ends it with exit code 2.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from abci_app.ledger import errors
from cli.output import NODE_UNREACHABLE, fail
from node.rpc import CometRpc, NodeUnreachable, RpcError

DEFAULT_NODE = "http://127.0.0.1:26657"
T = TypeVar("T")


@dataclass(frozen=True)
class ChainInfo:
    chain_id: str
    currency: str
    currency_exponent: int


class NodeClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.rpc = CometRpc(url, timeout=timeout)

    def _unreachable(self, detail: str = "") -> NoReturn:
        fail(f"node {self.url} is unreachable{detail} (is it running? use --node URL)", NODE_UNREACHABLE)

    def _run(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except NodeUnreachable:
            self._unreachable()
        except RpcError as exc:
            fail(str(exc))

    def call(self, method: str, **params: Any) -> Any:
        return self._run(lambda: self.rpc.call(method, **params))

    def query(self, path: str) -> Any:
        """A gridledger query path's JSON answer."""
        return self._answer(path, self._run(lambda: self.rpc.abci_query(path)))

    def query_or_none(self, path: str) -> Any | None:
        """Like ``query``, but None where the node has nothing stored under the path (code 101)."""
        response = self._run(lambda: self.rpc.abci_query(path))
        if int(response.get("code", 0)) == errors.NotFound.code:
            return None
        return self._answer(path, response)

    @staticmethod
    def _answer(path: str, response: Any) -> Any:
        code = int(response.get("code", 0))
        if code != 0:
            fail(f"query {path}: {response.get('log', '')} (code {code})")
        return json.loads(base64.b64decode(response["value"]))

    def chain_info(self) -> ChainInfo:
        chain, params = self.query("/chain"), self.query("/params")
        return ChainInfo(chain["chain_id"], params["currency"], params["currency_exponent"])

    def next_nonce(self, account_id: str) -> int:
        nonce: int = self.query(f"/next_nonce/{account_id}")["next_nonce"]
        return nonce

    def broadcast(self, tx: bytes) -> Any:
        return self._run(lambda: self.rpc.broadcast_tx_sync(tx))

    def wait(self, tx_hash: str, timeout: float) -> Any:
        try:
            return self.rpc.wait_tx(tx_hash, timeout)
        except NodeUnreachable:
            self._unreachable(" while waiting for the commit")
        except RpcError as exc:
            fail(f"transaction {tx_hash} not committed within {timeout:g}s ({exc})", NODE_UNREACHABLE)
