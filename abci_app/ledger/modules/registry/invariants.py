"""Invariants of the registry module: each returns the violations it finds (empty: holds)."""

from __future__ import annotations

from abci_app.ledger.modules.auth.keeper import get_account
from abci_app.ledger.modules.registry.keeper import iter_meters
from abci_app.ledger.modules.registry.keys import METER_KEYS, OWNS
from abci_app.ledger.state import State


def meter_indexes_match_the_meters(state: State) -> list[str]:
    meters = list(iter_meters(state))
    by_key = {meter.pubkey.hex(): meter.id for meter in meters}
    indexed_keys = {key[len(METER_KEYS):].decode(): value.decode() for key, value in state.scan(METER_KEYS)}
    owned = {f"{meter.owner}/{meter.id}" for meter in meters}
    indexed_owned = {key[len(OWNS):].decode() for key, _ in state.scan(OWNS)}
    problems = [f"meter key index differs: {sorted(set(by_key.items()) ^ set(indexed_keys.items()))}"
                ] if by_key != indexed_keys else []
    problems += [f"owner index: {entry}" for entry in sorted(owned ^ indexed_owned)]
    return problems


def meters_belong_to_participants(state: State) -> list[str]:
    problems = []
    for meter in iter_meters(state):
        owner = get_account(state, meter.owner)
        if owner is None or owner.is_operator or owner.dso != meter.dso:
            problems.append(f"meter {meter.id}: owner {meter.owner} is not a participant of DSO {meter.dso}")
    return problems


INVARIANTS = (meter_indexes_match_the_meters, meters_belong_to_participants)
