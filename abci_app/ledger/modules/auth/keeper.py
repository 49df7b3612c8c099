"""Accessors of accounts (balances change only through ``modules.bank.keeper``)."""

from __future__ import annotations

from collections.abc import Iterator

from abci_app.ledger import errors
from abci_app.ledger.modules.auth.keys import ACCOUNTS, account_key, zone_member_key, zone_prefix
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.state import State


def get_account(state: State, account_id: str) -> Account | None:
    return state.get(account_key(account_id), Account)


def require_account(state: State, account_id: str) -> Account:
    account = get_account(state, account_id)
    # Rule: a referenced account exists.
    if account is None:
        raise errors.UnknownAccount(f"account {account_id} does not exist")
    return account


def put_account(state: State, account: Account) -> None:
    state.put(account_key(account.id), account)


def add_account(state: State, account: Account) -> None:
    """Store a new account and index a participant by its zone."""
    put_account(state, account)
    if not account.is_operator:
        state.kv.set(zone_member_key(account.zone, account.id), b"")


def iter_accounts(state: State) -> Iterator[Account]:
    return state.scan_records(ACCOUNTS, Account)


def participants_in_zone(state: State, zone: str) -> list[str]:
    prefix = zone_prefix(zone)
    return [key[len(prefix):].decode() for key, _ in state.scan(prefix)]
