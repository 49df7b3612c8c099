"""Invariants of the auth module: each returns the violations it finds (empty: holds)."""

from __future__ import annotations

from abci_app.ledger.modules.auth.keeper import iter_accounts
from abci_app.ledger.modules.auth.keys import ZONES
from abci_app.ledger.state import State


def zone_index_lists_exactly_the_participants(state: State) -> list[str]:
    expected = {f"{a.zone}/{a.id}" for a in iter_accounts(state) if not a.is_operator}
    indexed = {key[len(ZONES):].decode() for key, _ in state.scan(ZONES)}
    return [f"zone index: {entry} {'missing' if entry in expected else 'stale'}"
            for entry in sorted(expected ^ indexed)]


def nonces_are_not_negative(state: State) -> list[str]:
    return [f"account {a.id}: nonce {a.nonce} < 0" for a in iter_accounts(state) if a.nonce < 0]


INVARIANTS = (zone_index_lists_exactly_the_participants, nonces_are_not_negative)
