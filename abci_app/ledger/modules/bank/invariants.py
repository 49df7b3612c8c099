"""Invariants of the bank module: each returns the violations it finds (empty: holds)."""

from __future__ import annotations

from abci_app.ledger.modules.auth.keeper import iter_accounts
from abci_app.ledger.modules.bank.keeper import get_supply
from abci_app.ledger.state import State


def balances_hold_the_supply(state: State) -> list[str]:
    total = sum(account.balance for account in iter_accounts(state))
    supply = get_supply(state)
    return [] if total == supply else [f"balances sum to {total}, the supply is {supply}"]


def balances_cover_locks(state: State) -> list[str]:
    problems = []
    for account in iter_accounts(state):
        if not 0 <= account.locked <= account.balance or account.debt < 0:
            problems.append(f"account {account.id}: balance {account.balance}, locked {account.locked}, "
                            f"debt {account.debt}")
    return problems


INVARIANTS = (balances_hold_the_supply, balances_cover_locks)
