"""Deterministic load accounts and the genesis ``app_state`` that funds them.

A load run signs from K participant accounts that exist from genesis, so no
set-up transactions disturb the measurement. Their keys are derived from a
label and an index (never random), so the process that writes the genesis and
the process that later sends the load agree on them without sharing files.
These keys guard nothing: they exist only on throw-away benchmark chains.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from abci_app.ledger.crypto import SigningKey
from lab.load import LoadSetupError
from node.rpc import CometRpc, RpcError

DEFAULT_LABEL = "gridledger-load"
LOAD_ZONE = "load-zone"
LOAD_DSO = "load-dso"
LOAD_LPD = "load-lpd"
# 1 000 000 EUR each: no run of any length runs dry (transfers move 1 unit,
# a load bid locks 100 units), and 9 000 accounts still keep the supply in 64 bits.
LOAD_BALANCE = 10**12
# Each account owns one meter that can both import and export, so it may send
# bids and asks. The market caps an account's open energy per slot at capacity
# x slot length: 100 MW (the largest meter) allows 25 000 orders of 1 kWh per
# 15-minute slot.
METER_CAPACITY_W = 100_000_000


def derived_key(label: str, role: str, index: int = 0) -> SigningKey:
    """The Ed25519 key number ``index`` of ``role`` under ``label`` (a pure function)."""
    return SigningKey.from_seed(hashlib.sha256(f"{label}/{role}/{index}".encode()).digest())


class OpenOrder(NamedTuple):
    """One of the account's own orders seen placed (from its ``order.placed`` event)."""

    order_id: int
    valid_until: int
    """Unix seconds (block time) after which the order is gone and cannot be cancelled."""


@dataclass
class LoadAccount:
    """One sending account.

    Its nonces are counted here: ``next_nonce`` is the first nonce not yet
    given to a pre-signed transaction. A node is asked only to start (``bench
    load``) and to recover from a stale nonce (``/next_nonce/<account>``).
    """

    index: int
    key: SigningKey
    next_nonce: int = 1
    open_orders: list[OpenOrder] = field(default_factory=list)
    """This account's own orders seen placed and not yet planned for cancelling, oldest first."""

    @property
    def account_id(self) -> str:
        return self.key.account


def load_accounts(count: int, label: str = DEFAULT_LABEL) -> list[LoadAccount]:
    if count < 1:
        raise LoadSetupError("at least one load account is needed")
    return [LoadAccount(index=i, key=derived_key(label, "participant", i)) for i in range(count)]


def meter_id(index: int) -> str:
    return f"load-meter-{index}"


def load_app_state(count: int, label: str = DEFAULT_LABEL) -> dict[str, Any]:
    """A genesis ``app_state``: one DSO, one LPD, ``count`` funded prosumers with one meter each."""
    dso, lpd = derived_key(label, "dso"), derived_key(label, "lpd")
    accounts = load_accounts(count, label)
    return {
        "params": {"currency": "EUR", "currency_exponent": 6},
        "operators": [
            {"name": LOAD_DSO, "role": "dso", "pubkey": dso.pubkey.hex(), "zones": [LOAD_ZONE], "power": 1},
            {"name": LOAD_LPD, "role": "lpd", "pubkey": lpd.pubkey.hex(), "zones": [], "power": 1},
        ],
        "participants": [
            {"pubkey": a.key.pubkey.hex(), "role": "prosumer", "zone": LOAD_ZONE, "dso": LOAD_DSO,
             "balance": LOAD_BALANCE}
            for a in accounts
        ],
        "meters": [
            {"id": meter_id(a.index), "pubkey": derived_key(label, "meter", a.index).pubkey.hex(),
             "owner_pubkey": a.key.pubkey.hex(), "import_capacity_w": METER_CAPACITY_W,
             "export_capacity_w": METER_CAPACITY_W}
            for a in accounts
        ],
    }


def sync_accounts(rpc: CometRpc, accounts: list[LoadAccount], orders: bool) -> None:
    """Start from each account's next nonce (and, for cancels, its open orders) on chain; then count locally."""
    for account in accounts:
        try:
            account.next_nonce = int(rpc.query_json(f"/next_nonce/{account.account_id}")["next_nonce"])
            if orders:
                account.open_orders = [OpenOrder(int(o["id"]), int(o["valid_until"]))
                                       for o in rpc.query_json(f"/orders/{account.account_id}")["orders"]]
        except RpcError as exc:
            raise LoadSetupError(
                f"load account {account.index} ({account.account_id}) is not on this chain: start the chain from "
                f"a genesis with `gridledger bench app-state --accounts {len(accounts)}`") from exc
