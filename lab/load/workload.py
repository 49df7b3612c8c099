"""What the load generator sends: the message mix, pre-signed and pre-serialised transactions.

A workload turns "the next ``count`` transactions of each load account" into
signed bytes **before the clock starts** (``prepare``), each with its base64
form and its whole JSON-RPC ``broadcast_tx_sync`` request, so the sender only
copies bytes to a socket while the clock runs. It learns from committed
results (the ids of its own orders, which later cancels name). Two workloads
share one interface, so the same sender drives both chains of a comparison:

* ``LedgerWorkload``: gridledger transactions in an ``orders:cancels:transfers``
  mix, signed by the load accounts with consecutive nonces (gaps are legal:
  a nonce only has to exceed the account's last one);
* ``KvWorkload`` (for CometBFT's built-in kvstore): unique ``key=value`` bytes
  padded to the size of the ledger transactions.

The only signing while the clock runs is ``resign``: after CheckTx refused an
account's transaction as a stale nonce (code 12), the sender reads the
account's next nonce from its node and the account's unsent transactions are
signed again from there.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.msg import Msg
from abci_app.ledger.router import MESSAGE_TYPES
from abci_app.ledger.tx import encode_tx
from lab.load import LoadSetupError
from lab.load.accounts import LoadAccount, OpenOrder, load_accounts, sync_accounts
from node.rpc import CometRpc, NodeUnreachable, RpcError

KINDS = ("order", "cancel", "transfer")
ORDER_TYPE, CANCEL_TYPE = "place_order", "cancel_order"
# Bids and asks never cross (bid price < ask price), so orders rest in the
# book and stay cancellable: the load measures ordering, not settlement.
BID_PRICE, ASK_PRICE = 80_000, 120_000  # money units per kWh (0.08 / 0.12 EUR)
ORDER_QUANTITY_WH = 1_000
# Keep the order's slot safely beyond gate closure for the whole run.
SLOT_MARGIN_S = 600
MARKET_DEFAULTS = {"slot_length_s": 900, "gate_closure_lead_s": 300, "max_slot_ahead_s": 2 * 86_400,
                   "max_open_orders": 200}
# Cancel instead of ordering when an account comes this close to max_open_orders.
OPEN_ORDER_HEADROOM = 20


class MixError(LoadSetupError):
    """The mix text is not ``orders:cancels:transfers`` with non-negative weights."""


@dataclass(frozen=True)
class Mix:
    """Relative weights of orders, cancels and transfers."""

    orders: int
    cancels: int
    transfers: int

    @classmethod
    def parse(cls, text: str) -> Mix:
        parts = text.split(":")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise MixError(f"mix {text!r} must be orders:cancels:transfers, e.g. 6:2:2 or 0:0:1")
        mix = cls(*(int(p) for p in parts))
        if mix.orders + mix.cancels + mix.transfers == 0:
            raise MixError("mix needs at least one non-zero weight")
        if mix.cancels and not mix.orders:
            raise MixError("cancels need orders to cancel: give orders a weight too")
        return mix

    @property
    def weights(self) -> tuple[int, int, int]:
        return self.orders, self.cancels, self.transfers

    @property
    def needs_market(self) -> bool:
        return self.orders + self.cancels > 0

    def __str__(self) -> str:
        return f"{self.orders}:{self.cancels}:{self.transfers}"


def rpc_request(uid: int, b64: str) -> str:
    """The JSON-RPC ``broadcast_tx_sync`` request for one transaction (its id is ``uid``)."""
    return f'{{"jsonrpc":"2.0","id":{uid},"method":"broadcast_tx_sync","params":{{"tx":"{b64}"}}}}'


@dataclass(frozen=True)
class PreparedTx:
    """One transaction ready to send: signed bytes, their base64 form and the whole request."""

    uid: int
    """Unique among the transactions of one run: the JSON-RPC id."""
    kind: str
    account: int
    """Index of the sending load account."""
    nonce: int
    raw: bytes
    b64: str
    """Standard base64 of ``raw``, as CometBFT lists the block's transactions in NewBlock events."""
    tx_hash: str
    request: str
    msg: Msg | None = None
    """The signed message, kept for re-signing after a stale nonce; None for kvstore bytes."""
    valid_until: int = 0
    """For orders: the order's expiry (what ``on_committed`` remembers for later cancels)."""


def prepared(uid: int, kind: str, account: int, nonce: int, raw: bytes, msg: Msg | None = None,
             valid_until: int = 0) -> PreparedTx:
    b64 = base64.b64encode(raw).decode()
    return PreparedTx(uid=uid, kind=kind, account=account, nonce=nonce, raw=raw, b64=b64, tx_hash=tx_hash(raw),
                      request=rpc_request(uid, b64), msg=msg, valid_until=valid_until)


def tx_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest().upper()


class UidCounter:
    """Hands out the JSON-RPC ids of one run's transactions (unique, increasing)."""

    def __init__(self, start: int = 1) -> None:
        self.next = start

    def take(self) -> int:
        uid, self.next = self.next, self.next + 1
        return uid


Plan = dict[int, deque[PreparedTx]]
"""Each account's transactions, in the order (and nonce order) they must be sent."""


class Workload(Protocol):
    name: str

    def prepare(self, accounts: list[LoadAccount], count: int, uids: UidCounter, until: float) -> Plan:
        """``count`` transactions for every account, signed and serialised; ``until``: the run's end (unix s)."""
        ...

    def resign(self, account: LoadAccount, txs: list[PreparedTx], next_nonce: int,
               uids: UidCounter) -> list[PreparedTx]:
        """The same messages, signed again with nonces from ``next_nonce`` on."""
        ...

    def on_committed(self, account: LoadAccount, tx: PreparedTx, code: int,
                     events: list[dict[str, Any]]) -> None:
        """``events``: the transaction's FinalizeBlock events as CometBFT's JSON has them (type, attributes)."""
        ...


def flat_events(raw_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{"type": t, "attributes": [{"key": k, "value": v}]}]`` -> ``[{"type": t, k: v}]``."""
    return [{"type": e.get("type", ""), **{a.get("key", ""): a.get("value", "") for a in e.get("attributes") or []}}
            for e in raw_events]


def market_available() -> bool:
    return ORDER_TYPE in MESSAGE_TYPES and CANCEL_TYPE in MESSAGE_TYPES


def market_params(rpc_url: str) -> dict[str, int]:
    """The chain's market parameters the order builder needs (defaults for those it lacks)."""
    rpc = CometRpc(rpc_url)
    try:
        params = rpc.query_json("/params")
    except (NodeUnreachable, RpcError):
        return {}
    finally:
        rpc.close()
    return {key: int(params[key]) for key in MARKET_DEFAULTS if key in params}


def ledger_workload(urls: tuple[str, ...], mix: Mix, accounts: list[LoadAccount], seed: int, chain_id: str | None,
                    duration_s: float, progress: Callable[[str], None] = lambda _line: None) -> LedgerWorkload:
    """A workload for a running chain: its chain id (unless given), the accounts' nonces (and open orders) on it."""
    rpc = CometRpc(urls[0])
    try:
        chain = chain_id or str(rpc.query_json("/chain")["chain_id"])
        progress(f"reading the nonces{' and open orders' if mix.cancels else ''} of {len(accounts)} load accounts "
                 f"from {urls[0]}")
        sync_accounts(rpc, accounts, orders=mix.cancels > 0)
    finally:
        rpc.close()
    return LedgerWorkload(chain, mix, accounts, seed=seed, duration_s=duration_s,
                          market_params=market_params(urls[0]) if mix.needs_market else None)


class LedgerWorkload:
    """Signed gridledger transactions from the load accounts, in a seeded random mix."""

    name = "gridledger"

    def __init__(self, chain_id: str, mix: Mix, accounts: list[LoadAccount], seed: int = 1,
                 market_params: dict[str, int] | None = None, now: float | None = None,
                 duration_s: float = 0.0) -> None:
        if mix.needs_market and not market_available():
            raise MixError(f"mix {mix} has orders or cancels, but this build has no market messages "
                           "(place_order/cancel_order); use a transfer-only mix such as 0:0:1")
        self.chain_id = chain_id
        self.mix = mix
        self.accounts = accounts
        self.seed = seed
        self.rng = random.Random(seed)
        self.cancel_fallbacks = 0
        """Cancels the mix asked for while the account had no open order it could cancel (an order was sent
        instead)."""
        params = {**MARKET_DEFAULTS, **(market_params or {})}
        self._order_slot = _order_slot(params, time.time() if now is None else now, duration_s)
        self._open_order_cap = max(1, params["max_open_orders"] - OPEN_ORDER_HEADROOM)

    def prepare(self, accounts: list[LoadAccount], count: int, uids: UidCounter, until: float) -> Plan:
        plan: Plan = {}
        for account in accounts:
            queue: deque[PreparedTx] = deque()
            cancellable = [o for o in account.open_orders if o.valid_until > until]
            # Orders that expire before the run ends are forgotten: cancelling them could fail.
            account.open_orders = list(cancellable)
            open_count = len(cancellable)
            for _ in range(count):
                kind = self._kind(account, open_count)
                msg = self._message(kind, account, len(queue))
                open_count += {"order": 1, "cancel": -1}.get(kind, 0)
                queue.append(self._sign(uids.take(), kind, account, msg))
            plan[account.index] = queue
        return plan

    def _kind(self, account: LoadAccount, open_count: int) -> str:
        kind = self.rng.choices(KINDS, weights=self.mix.weights)[0]
        if kind == "cancel" and not account.open_orders:
            self.cancel_fallbacks += 1
            return "order"
        if kind == "order" and open_count >= self._open_order_cap:
            return "cancel" if account.open_orders else "transfer"
        return kind

    def _sign(self, uid: int, kind: str, account: LoadAccount, msg: Msg) -> PreparedTx:
        nonce = account.next_nonce
        account.next_nonce += 1
        raw = encode_tx(self.chain_id, msg, account.key, nonce)
        valid_until = self._order_slot[1] if kind == "order" else 0
        return prepared(uid, kind, account.index, nonce, raw, msg, valid_until)

    def resign(self, account: LoadAccount, txs: list[PreparedTx], next_nonce: int,
               uids: UidCounter) -> list[PreparedTx]:
        fresh = []
        for offset, tx in enumerate(txs):
            if tx.msg is None:
                raise ValueError(f"transaction {tx.uid} has no message to sign again")
            nonce = next_nonce + offset
            raw = encode_tx(self.chain_id, tx.msg, account.key, nonce)
            fresh.append(prepared(uids.take(), tx.kind, account.index, nonce, raw, tx.msg, tx.valid_until))
        # Later runs continue above every nonce handed out, re-signed or not.
        account.next_nonce = max(account.next_nonce, next_nonce + len(txs))
        return fresh

    def _message(self, kind: str, account: LoadAccount, position: int) -> Msg:
        if kind == "transfer":
            recipient = self.accounts[(account.index + 1) % len(self.accounts)].account_id
            return Transfer(recipient=recipient, amount=1, memo="")
        if kind == "cancel":
            return MESSAGE_TYPES[CANCEL_TYPE](order_id=account.open_orders.pop(0).order_id)
        slot, valid_until = self._order_slot
        bid = (account.index + position) % 2 == 0
        return MESSAGE_TYPES[ORDER_TYPE](
            side="bid" if bid else "ask", quantity_wh=ORDER_QUANTITY_WH, price=BID_PRICE if bid else ASK_PRICE,
            slot=slot, valid_until=valid_until, tif="limit", client_order_id=f"load-{account.index}-{position}",
            origin="" if bid else "solar", accept_origins=(),
        )

    def on_committed(self, account: LoadAccount, tx: PreparedTx, code: int, events: list[dict[str, Any]]) -> None:
        if tx.kind != "order" or code != 0:
            return
        for event in flat_events(events):
            if event.get("type") == "order.placed":
                order_id = event.get("order_id", event.get("id"))
                if order_id is not None and str(order_id).isdigit():
                    account.open_orders.append(OpenOrder(int(order_id), tx.valid_until))


def _order_slot(params: dict[str, int], now: float, duration_s: float = 0.0) -> tuple[int, int]:
    """The first slot whose gate closes at least SLOT_MARGIN_S after the run ends, and the order's expiry."""
    length, lead = params["slot_length_s"], params["gate_closure_lead_s"]
    earliest = int(now + duration_s) + lead + SLOT_MARGIN_S
    slot = -(-earliest // length) * length
    if slot - now > params["max_slot_ahead_s"]:
        raise MixError("no open slot: max_slot_ahead_s is shorter than the gate closure lead plus margin")
    return slot, slot - lead


class KvWorkload:
    """``key=value`` transactions for CometBFT's kvstore, each exactly ``size`` bytes and unique."""

    name = "kvstore"

    def __init__(self, size: int, run_tag: str) -> None:
        self.prefix = f"bench-{run_tag}-"
        self.size = size

    def prepare(self, accounts: list[LoadAccount], count: int, uids: UidCounter, until: float) -> Plan:
        plan: Plan = {}
        for account in accounts:
            queue: deque[PreparedTx] = deque()
            for _ in range(count):
                uid = uids.take()
                head = f"{self.prefix}{uid}=".encode()
                queue.append(prepared(uid, "kv", account.index, 0, head + b"x" * max(1, self.size - len(head))))
            plan[account.index] = queue
        return plan

    def resign(self, account: LoadAccount, txs: list[PreparedTx], next_nonce: int,
               uids: UidCounter) -> list[PreparedTx]:
        return txs  # kvstore has no nonces

    def on_committed(self, account: LoadAccount, tx: PreparedTx, code: int, events: list[dict[str, Any]]) -> None:
        return None


def sample_tx_size(mix: Mix, samples: int = 64) -> int:
    """Mean size of the ledger transactions a mix produces (for a same-size kvstore baseline).

    Cancels are sized as orders are when no order ids exist yet; sizes differ by a
    few bytes at most between message kinds with realistic nonces.
    """
    accounts = load_accounts(4, label="size-sample")
    chosen = mix if market_available() or not mix.needs_market else Mix(0, 0, 1)
    workload = LedgerWorkload("gridledger-bench", chosen, accounts, seed=7)
    for account in accounts:
        account.next_nonce = 1000  # a mid-run nonce, two bytes on the wire
    plan = workload.prepare(accounts, -(-samples // len(accounts)), UidCounter(), until=0.0)
    sizes = [len(tx.raw) for queue in plan.values() for tx in queue]
    return round(sum(sizes) / len(sizes))
