"""Accessors of meters."""

from __future__ import annotations

from collections.abc import Iterator

from abci_app.ledger.modules.registry.keys import METERS, meter_key, meter_pubkey_key, owner_prefix, owns_key
from abci_app.ledger.modules.registry.records import Meter
from abci_app.ledger.state import State


def get_meter(state: State, meter_id: str) -> Meter | None:
    return state.get(meter_key(meter_id), Meter)


def meter_key_taken(state: State, pubkey: bytes) -> bool:
    return state.kv.get(meter_pubkey_key(pubkey)) is not None


def put_meter(state: State, meter: Meter) -> None:
    state.put(meter_key(meter.id), meter)


def add_meter(state: State, meter: Meter) -> None:
    """Store a new meter with its key index and its owner index."""
    put_meter(state, meter)
    state.kv.set(meter_pubkey_key(meter.pubkey), meter.id.encode())
    state.kv.set(owns_key(meter.owner, meter.id), b"")


def meters_of(state: State, account_id: str) -> list[str]:
    prefix = owner_prefix(account_id)
    return [key[len(prefix):].decode() for key, _ in state.scan(prefix)]


def iter_meters(state: State) -> Iterator[Meter]:
    return state.scan_records(METERS, Meter)
