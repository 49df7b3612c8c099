"""What the load generator sends: the message mix and the transaction builders.

A workload turns "the next transaction for this account" into signed bytes
and learns from committed results (the ids of its own orders, which cancels
need). Two workloads share one interface, so the same sender drives both
chains of a comparison:

* ``LedgerWorkload``: gridledger transactions in an ``orders:cancels:transfers``
  mix, signed by the load accounts with locally managed nonces;
* ``KvWorkload`` (for CometBFT's built-in kvstore): unique ``key=value`` bytes
  padded to the size of the ledger transactions.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.msg import Msg
from abci_app.ledger.router import MESSAGE_TYPES
from abci_app.ledger.tx import encode_tx
from node.loadgen_accounts import LoadAccount, load_accounts
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
# Cancel instead of ordering when an account comes this close to max_open_orders
# (orders in flight are not yet counted in open_orders).
OPEN_ORDER_HEADROOM = 20


class MixError(ValueError):
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


@dataclass(frozen=True)
class BuiltTx:
    kind: str
    raw: bytes
    nonce: int
    tx_hash: str


def tx_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest().upper()


class Workload(Protocol):
    name: str

    def build(self, account: LoadAccount, seq: int) -> BuiltTx: ...

    def on_checked(self, account: LoadAccount, built: BuiltTx, code: int | None) -> None: ...

    def on_committed(self, account: LoadAccount, built: BuiltTx, code: int, events: list[dict[str, Any]]) -> None: ...


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


class LedgerWorkload:
    """Signed gridledger transactions from the load accounts, in a seeded random mix."""

    name = "gridledger"

    def __init__(self, chain_id: str, mix: Mix, accounts: list[LoadAccount], seed: int = 1,
                 market_params: dict[str, int] | None = None, now: float | None = None) -> None:
        if mix.needs_market and not market_available():
            raise MixError(f"mix {mix} has orders or cancels, but this build has no market messages "
                           "(place_order/cancel_order); use a transfer-only mix such as 0:0:1")
        self.chain_id = chain_id
        self.mix = mix
        self.accounts = accounts
        self.rng = random.Random(seed)
        self.cancel_fallbacks = 0
        """Cancels the mix asked for while the account had no open order (an order was sent instead)."""
        params = {**MARKET_DEFAULTS, **(market_params or {})}
        self._order_slot = _order_slot(params, time.time() if now is None else now)
        self._open_order_cap = max(1, params["max_open_orders"] - OPEN_ORDER_HEADROOM)

    def build(self, account: LoadAccount, seq: int) -> BuiltTx:
        kind = self.rng.choices(KINDS, weights=self.mix.weights)[0]
        if kind == "cancel" and not account.open_orders:
            self.cancel_fallbacks += 1
            kind = "order"
        elif kind == "order" and len(account.open_orders) >= self._open_order_cap:
            kind = "cancel"
        msg = self._message(kind, account, seq)
        nonce = account.next_nonce
        raw = encode_tx(self.chain_id, msg, account.key, nonce)
        return BuiltTx(kind=kind, raw=raw, nonce=nonce, tx_hash=tx_hash(raw))

    def _message(self, kind: str, account: LoadAccount, seq: int) -> Msg:
        if kind == "transfer":
            recipient = self.accounts[(account.index + 1) % len(self.accounts)].account_id
            return Transfer(recipient=recipient, amount=1, memo="")
        if kind == "cancel":
            return MESSAGE_TYPES[CANCEL_TYPE](order_id=account.open_orders.pop(0))
        slot, valid_until = self._order_slot
        bid = seq % 2 == 0
        return MESSAGE_TYPES[ORDER_TYPE](
            side="bid" if bid else "ask", quantity_wh=ORDER_QUANTITY_WH, price=BID_PRICE if bid else ASK_PRICE,
            slot=slot, valid_until=valid_until, tif="limit", client_order_id=f"load-{seq}",
            origin="" if bid else "solar", accept_origins=(),
        )

    def on_checked(self, account: LoadAccount, built: BuiltTx, code: int | None) -> None:
        # A transaction CheckTx refused never spends its nonce; one that was
        # accepted, or whose fate is unknown (no answer), does. Gaps are legal,
        # so assuming "spent" when unsure can never block the account.
        if code != 0 and code is not None:
            return
        account.next_nonce = max(account.next_nonce, built.nonce + 1)

    def on_committed(self, account: LoadAccount, built: BuiltTx, code: int, events: list[dict[str, Any]]) -> None:
        if built.kind != "order" or code != 0:
            return
        for event in events:
            if event.get("type") == "order.placed":
                order_id = event.get("order_id", event.get("id"))
                if order_id is not None and str(order_id).isdigit():
                    account.open_orders.append(int(order_id))


def _order_slot(params: dict[str, int], now: float) -> tuple[int, int]:
    """The first slot whose gate closes at least SLOT_MARGIN_S from now, and the order's expiry."""
    length, lead = params["slot_length_s"], params["gate_closure_lead_s"]
    earliest = int(now) + lead + SLOT_MARGIN_S
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

    def build(self, account: LoadAccount, seq: int) -> BuiltTx:
        head = f"{self.prefix}{seq}=".encode()
        raw = head + b"x" * max(1, self.size - len(head))
        return BuiltTx(kind="kv", raw=raw, nonce=0, tx_hash=tx_hash(raw))

    def on_checked(self, account: LoadAccount, built: BuiltTx, code: int | None) -> None:
        return None

    def on_committed(self, account: LoadAccount, built: BuiltTx, code: int, events: list[dict[str, Any]]) -> None:
        return None


def sample_tx_size(mix: Mix, samples: int = 64) -> int:
    """Mean size of the ledger transactions a mix produces (for a same-size kvstore baseline).

    Cancels are sized as orders are when no order ids exist yet; sizes differ by a
    few bytes at most between message kinds with realistic nonces.
    """
    accounts = load_accounts(4, label="size-sample")
    workload = LedgerWorkload("gridledger-bench", mix, accounts, seed=7) if market_available() or not \
        mix.needs_market else LedgerWorkload("gridledger-bench", Mix(0, 0, 1), accounts, seed=7)
    for account in accounts:
        account.next_nonce = 1000  # a mid-run nonce, two bytes on the wire
    total = 0
    for seq in range(samples):
        total += len(workload.build(accounts[seq % len(accounts)], seq).raw)
    return round(total / samples)
