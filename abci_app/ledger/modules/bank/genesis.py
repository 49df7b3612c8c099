"""Genesis step of the bank module: the initial balances are the initial money supply."""

from __future__ import annotations

from abci_app.ledger.modules.auth.keeper import iter_accounts
from abci_app.ledger.modules.bank.keeper import change_supply
from abci_app.ledger.state import State


def init_supply(state: State) -> None:
    """Run after every genesis account exists: the supply is what they hold."""
    change_supply(state, sum(account.balance for account in iter_accounts(state)))
