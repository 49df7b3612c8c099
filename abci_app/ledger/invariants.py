"""Every module's invariants, run together (tests and the property state machines call ``violations``).

Each module's ``invariants.py`` lists functions of the state that return the
violations they find; a correct ledger has none after every block.
"""

from __future__ import annotations

from collections.abc import Callable

from abci_app.ledger.modules.auth import invariants as auth
from abci_app.ledger.modules.bank import invariants as bank
from abci_app.ledger.modules.gov import invariants as gov
from abci_app.ledger.modules.market import invariants as market
from abci_app.ledger.modules.registry import invariants as registry
from abci_app.ledger.modules.settlement import invariants as settlement
from abci_app.ledger.state import State

Invariant = Callable[[State], list[str]]
ALL_INVARIANTS: tuple[Invariant, ...] = (
    *auth.INVARIANTS, *bank.INVARIANTS, *registry.INVARIANTS, *gov.INVARIANTS, *market.INVARIANTS,
    *settlement.INVARIANTS,
)


def violations(state: State) -> list[str]:
    """Every invariant violation in ``state``, prefixed with the invariant's name."""
    return [f"{check.__name__}: {problem}" for check in ALL_INVARIANTS for problem in check(state)]
