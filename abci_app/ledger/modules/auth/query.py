"""Queries of the auth module (docs/queries.md): /account/<id>, /participants/<zone>."""

from __future__ import annotations

from typing import Any

from abci_app.ledger.modules.auth import keeper
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.query_args import found
from abci_app.ledger.state import State
from abci_app.ledger.wire import plain


def query(state: State, head: str, args: list[str]) -> Any | None:
    if head == "account" and len(args) == 1:
        return account_json(found(keeper.get_account(state, args[0]), f"account {args[0]}"))
    if head == "participants" and len(args) == 1:
        return {"zone": args[0], "participants": keeper.participants_in_zone(state, args[0])}
    return None


def account_json(account: Account) -> dict[str, Any]:
    out: dict[str, Any] = plain(account)
    out["free"] = account.free
    return out
