"""What a client needs from a node: chain facts, ledger queries, nonces, broadcasting, waiting for commits.

Failures are typed, so callers decide what they mean: ``NodeUnreachable`` (no
answer from the node), ``RpcError`` (CometBFT refused a call), ``QueryFailed``
(the ledger refused a query, with its code), ``CommitTimeout`` (a transaction
was not seen committed in time). A transaction the chain refuses is not an
exception here: ``submit`` returns its ``TxResult`` (``rejected``), and
``TxResult.raise_if_rejected`` turns it into ``TxRejected``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from abci_app.ledger import errors
from node.rpc import CometRpc, NodeUnreachable, RpcError, tx_hash

DEFAULT_NODE = "http://127.0.0.1:26657"


class QueryFailed(Exception):
    """The ledger answered a query with a non-zero code."""

    def __init__(self, path: str, code: int, log: str) -> None:
        super().__init__(f"query {path}: {log} (code {code})")
        self.path = path
        self.code = code
        self.log = log


class CommitTimeout(Exception):
    """A transaction CheckTx accepted was not seen in a committed block in time."""

    def __init__(self, digest: str, timeout: float, reason: str) -> None:
        super().__init__(f"transaction {digest} not committed within {timeout:g}s ({reason})")
        self.digest = digest


class TxRejected(Exception):
    """The chain refused a transaction: at CheckTx, or with a non-zero code in its block."""


@dataclass(frozen=True)
class ChainInfo:
    chain_id: str
    currency: str
    currency_exponent: int


@dataclass(frozen=True)
class TxResult:
    """What the node said about one broadcast transaction (and its block result, if awaited)."""

    hash: str
    check_code: int
    check_log: str
    height: int | None = None
    """Set once the transaction was seen committed."""
    code: int | None = None
    log: str = ""
    events: tuple[dict[str, Any], ...] = field(default=())

    @property
    def rejected(self) -> bool:
        return self.check_code != 0 or (self.code is not None and self.code != 0)

    def record(self) -> dict[str, Any]:
        """The fields a user sees: the CheckTx answer, and the block result when there is one."""
        out: dict[str, Any] = {"hash": self.hash, "check_code": self.check_code, "check_log": self.check_log,
                               "code": self.check_code, "log": self.check_log}
        if self.height is not None:
            out.update(height=self.height, code=self.code, log=self.log, events=list(self.events))
        return out

    def raise_if_rejected(self) -> None:
        if self.check_code != 0:
            raise TxRejected(f"transaction {self.hash} refused at CheckTx: code {self.check_code}: {self.check_log}")
        if self.code is not None and self.code != 0:
            raise TxRejected(f"transaction {self.hash} failed in block {self.height}: code {self.code}: {self.log}")


class NodeClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.rpc = CometRpc(url, timeout=timeout)
        self.url = self.rpc.url

    def call(self, method: str, **params: Any) -> Any:
        """A CometBFT RPC call's result (NodeUnreachable, RpcError)."""
        return self.rpc.call(method, **params)

    def query(self, path: str) -> Any:
        """A gridledger query path's JSON answer (QueryFailed for a non-zero code)."""
        return self._answer(path, self.rpc.abci_query(path))

    def query_or_none(self, path: str) -> Any | None:
        """Like ``query``, but None where the node has nothing stored under the path (code 101)."""
        response = self.rpc.abci_query(path)
        if int(response.get("code", 0)) == errors.NotFound.code:
            return None
        return self._answer(path, response)

    @staticmethod
    def _answer(path: str, response: Any) -> Any:
        code = int(response.get("code", 0))
        if code != 0:
            raise QueryFailed(path, code, str(response.get("log", "")))
        return json.loads(base64.b64decode(response["value"]))

    def chain_info(self) -> ChainInfo:
        chain, params = self.query("/chain"), self.query("/params")
        return ChainInfo(chain["chain_id"], params["currency"], params["currency_exponent"])

    def next_nonce(self, account_id: str) -> int:
        nonce: int = self.query(f"/next_nonce/{account_id}")["next_nonce"]
        return nonce

    def node_status(self) -> dict[str, Any]:
        """Height, app hash, sync state, peers and validator role of the node, and the validator set's size."""
        status = self.call("status")
        net_info = self.call("net_info")
        validators = self.call("validators", per_page="100")
        sync, info, me = status["sync_info"], status["node_info"], status["validator_info"]
        power = int(me.get("voting_power", 0))
        return {
            "moniker": info.get("moniker", ""),
            "node_id": info.get("id", ""),
            "network": info.get("network", ""),
            "height": int(sync["latest_block_height"]),
            "block_time": sync.get("latest_block_time", ""),
            "app_hash": sync.get("latest_app_hash", ""),
            "catching_up": bool(sync.get("catching_up", False)),
            "peers": int(net_info.get("n_peers", 0)),
            "peer_monikers": sorted(p["node_info"].get("moniker", "") for p in net_info.get("peers", [])),
            "validator": power > 0,
            "voting_power": power,
            "validator_address": me.get("address", ""),
            "validators": int(validators.get("total", len(validators.get("validators", [])))),
            "total_power": sum(int(v["voting_power"]) for v in validators.get("validators", [])),
        }

    def broadcast(self, tx: bytes) -> Any:
        """CheckTx's answer to ``tx`` (``broadcast_tx_sync``)."""
        return self.rpc.broadcast_tx_sync(tx)

    def wait(self, digest: str, timeout: float) -> Any:
        """The committed transaction (``/tx``) once a block holds it; CommitTimeout after ``timeout`` seconds."""
        try:
            return self.rpc.wait_tx(digest, timeout)
        except NodeUnreachable as exc:
            raise NodeUnreachable(str(exc), url=self.url, during="waiting for the commit") from exc
        except RpcError as exc:
            raise CommitTimeout(digest, timeout, str(exc)) from exc

    def submit_many(self, raws: list[bytes], wait: bool = False, timeout: float = 30.0) -> list[TxResult]:
        """Broadcast every transaction in order, then (with ``wait``) wait for each one CheckTx accepted."""
        checked = [self.submit(raw, wait=False) for raw in raws]
        if not wait:
            return checked
        return [result if result.check_code != 0 else self._committed(result, timeout) for result in checked]

    def _committed(self, result: TxResult, timeout: float) -> TxResult:
        committed = self.wait(result.hash, timeout)
        tx_result = committed["tx_result"]
        return TxResult(result.hash, result.check_code, result.check_log, height=int(committed["height"]),
                        code=int(tx_result.get("code", 0)), log=str(tx_result.get("log", "")),
                        events=tuple(events_of(tx_result)))

    def submit(self, raw: bytes, wait: bool = False, timeout: float = 30.0) -> TxResult:
        """Broadcast ``raw``; with ``wait``, also wait for its block result (unless CheckTx refused it)."""
        digest = tx_hash(raw)
        try:
            checked = self.broadcast(raw)
        except RpcError as exc:
            # CometBFT refuses a transaction its mempool cache holds: the same bytes were sent before.
            if "already exists in cache" not in str(exc):
                raise
            checked = {"code": 0, "log": f"already submitted (hash {digest})"}
        result = TxResult(digest, int(checked.get("code", 0)), str(checked.get("log", "")))
        if result.check_code != 0 or not wait:
            return result
        return self._committed(result, timeout)


# --- committed transactions and blocks, for people -------------------------------------------------


def events_of(tx_result: dict[str, Any]) -> list[dict[str, Any]]:
    """A result's events as flat records: ``{"type": "trade", "buyer": ..., ...}``."""
    return [{"type": e["type"], **{a["key"]: a["value"] for a in e.get("attributes", [])}}
            for e in tx_result.get("events", [])]


def decoded_tx(raw: bytes, chain_id: str) -> dict[str, Any]:
    """What a transaction says (type, signer, nonce, body); ``{"decode_error": ...}`` if it is not ours."""
    from abci_app.ledger.errors import LedgerError
    from abci_app.ledger.tx import decode_tx
    from abci_app.ledger.wire import plain

    try:
        tx = decode_tx(raw, chain_id, max_bytes=len(raw))
    except LedgerError as exc:
        return {"decode_error": str(exc)}
    return {"type": tx.msg.TYPE, "signer": tx.account, "nonce": tx.nonce, "body": plain(tx.msg)}


def committed_tx(client: NodeClient, digest: str) -> dict[str, Any]:
    """A committed transaction by hash: height, code, log, decoded body, events (RpcError if unknown)."""
    if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise RpcError(f"tx hash {digest!r}: write the 64 hex digits `tx` commands print")
    found = client.call("tx", hash=base64.b64encode(bytes.fromhex(digest)).decode(), prove=False)
    result = found["tx_result"]
    chain_id = client.call("status")["node_info"]["network"]
    return {"hash": digest.upper(), "height": int(found["height"]), "index": int(found.get("index", 0)),
            "code": int(result.get("code", 0)), "log": str(result.get("log", "")),
            **decoded_tx(base64.b64decode(found["tx"]), chain_id), "events": events_of(result)}


def block_summary(client: NodeClient, height: int | None = None) -> dict[str, Any]:
    """A block's header facts and its transactions' hashes, types and result codes."""
    block = client.call("block", **({"height": str(height)} if height is not None else {}))["block"]
    header = block["header"]
    raws = [base64.b64decode(tx) for tx in block["data"].get("txs") or []]
    results = client.call("block_results", height=header["height"]).get("txs_results") or []
    txs = []
    for raw, result in zip(raws, results or [{}] * len(raws), strict=False):
        decoded = decoded_tx(raw, header["chain_id"])
        txs.append({"hash": tx_hash(raw), "type": decoded.get("type", "?"), "signer": decoded.get("signer", ""),
                    "code": int(result.get("code", 0))})
    return {"height": int(header["height"]), "time": header["time"], "chain_id": header["chain_id"],
            "proposer_address": header["proposer_address"], "app_hash": header["app_hash"],
            "last_block_id": block.get("last_commit", {}).get("block_id", {}).get("hash", ""),
            "num_txs": len(raws), "txs": txs}


def search_txs(client: NodeClient, query: str, limit: int = 100) -> list[dict[str, Any]]:
    """Committed transactions whose events match a CometBFT query (``trade.buyer='…' AND tx.height>5``)."""
    found = client.call("tx_search", query=query, prove=False, page="1", per_page=str(min(limit, 100)),
                        order_by="asc")
    rows = []
    for item in found.get("txs", []):
        result = item["tx_result"]
        rows.append({"hash": item["hash"], "height": int(item["height"]), "code": int(result.get("code", 0)),
                     "events": events_of(result)})
    return rows
