"""Accessors of readings, the slot cursor, settlement obligations, reports, dues and what is owed."""

from __future__ import annotations

from collections.abc import Iterator

from abci_app.ledger import codec
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import MODULE_ROLE, Account
from abci_app.ledger.modules.registry.records import Meter
from abci_app.ledger.modules.settlement import keys
from abci_app.ledger.modules.settlement.records import (
    LastReading,
    Owed,
    SettlementReport,
    SlotReading,
    SlotSettlement,
)
from abci_app.ledger.state import State, be64, unbe64
from abci_app.ledger.store import prefix_end


# -- the balancing reserve ------------------------------------------------------------------------------
def ensure_reserve(state: State) -> Account:
    """The balancing reserve's module account (created at genesis; no key can sign for it)."""
    reserve = auth.get_account(state, keys.RESERVE_ID)
    if reserve is None:
        reserve = Account(id=keys.RESERVE_ID, pubkey=b"", role=MODULE_ROLE, zone="", dso="", active=True, balance=0,
                          locked=0, debt=0, nonce=0, registered_at=0)
        auth.add_account(state, reserve)
    return reserve


# -- readings ----------------------------------------------------------------------------------------------
def last_reading(state: State, meter: Meter) -> LastReading:
    """The meter's last accepted reading, or its registers at registration."""
    found = state.get(keys.last_reading_key(meter.id), LastReading)
    if found is not None:
        return found
    return LastReading(meter.registered_at, meter.import_register_wh, meter.export_register_wh)


def get_last_reading(state: State, meter_id: str) -> LastReading | None:
    return state.get(keys.last_reading_key(meter_id), LastReading)


def put_last_reading(state: State, meter_id: str, reading: LastReading) -> None:
    state.put(keys.last_reading_key(meter_id), reading)


def get_slot_reading(state: State, slot: int, meter_id: str) -> SlotReading | None:
    return state.get(keys.slot_reading_key(slot, meter_id), SlotReading)


def put_slot_reading(state: State, slot: int, meter_id: str, reading: SlotReading) -> None:
    state.put(keys.slot_reading_key(slot, meter_id), reading)


# -- which meters' energy is known up to when ------------------------------------------------------------
def accounted_through(state: State, meter: Meter) -> int:
    """End of the last slot whose energy of ``meter`` is known (read or substituted); registration before."""
    raw = state.kv.get(keys.meter_through_key(meter.id))
    return unbe64(raw) if raw is not None else meter.registered_at


def track_meter(state: State, meter: Meter) -> None:
    """A new meter: from its registration on, every slot's energy must be read (or substituted)."""
    state.kv.set(keys.meter_open_key(meter.registered_at, meter.id), b"")


def untrack_meter(state: State, meter: Meter) -> None:
    """A deactivated meter is no longer read."""
    state.kv.delete(keys.meter_open_key(accounted_through(state, meter), meter.id))


def advance_meter(state: State, meter: Meter, through: int) -> None:
    state.kv.delete(keys.meter_open_key(accounted_through(state, meter), meter.id))
    state.kv.set(keys.meter_open_key(through, meter.id), b"")
    state.kv.set(keys.meter_through_key(meter.id), be64(through))


def silent_meters(state: State, slot_end: int, limit: int) -> list[str]:
    """Up to ``limit`` active meters whose energy is not known up to ``slot_end``, oldest first.

    One scan for a whole batch: the caller advances each, which rewrites its index key, so scanning again
    per meter would walk past every key the batch already moved."""
    out = []
    for key, _ in state.kv.iterate(keys.METERS_OPEN, keys.METERS_OPEN + be64(slot_end)):
        out.append(key[len(keys.METERS_OPEN) + 9:].decode())
        if len(out) == limit:
            break
    return out


# -- the slot cursor and the participants of a slot ---------------------------------------------------------
def get_cursor(state: State) -> int | None:
    raw = state.kv.get(keys.CURSOR)
    return unbe64(raw) if raw is not None else None


def put_cursor(state: State, slot: int) -> None:
    state.kv.set(keys.CURSOR, be64(slot))


def mark_due(state: State, slot: int, account_id: str) -> None:
    """``account_id`` has something to settle in ``slot`` (a trade or a meter's energy)."""
    state.kv.set(keys.due_key(slot, account_id), b"")


def due_accounts(state: State, slot: int, limit: int) -> list[str]:
    """Up to ``limit`` participants of the slot still to measure, in account order (one scan per batch)."""
    prefix = keys.due_slot_prefix(slot)
    out = []
    for key, _ in state.scan(prefix):
        out.append(key[len(prefix):].decode())
        if len(out) == limit:
            break
    return out


def measured(state: State, slot: int, account_id: str) -> None:
    """Move a participant from the slot's due list to its open list (measured, to charge and pay)."""
    state.kv.delete(keys.due_key(slot, account_id))
    state.kv.set(keys.open_key(slot, account_id), b"")


def open_accounts_after(state: State, slot: int, after: str, limit: int) -> list[str]:
    """Up to ``limit`` accounts of the slot's open list after ``after`` (in account order)."""
    prefix = keys.open_slot_prefix(slot)
    start = prefix + after.encode() + b"\x00" if after else prefix
    out = []
    for key, _ in state.kv.iterate(start, keys.open_slot_prefix(slot + 1)):
        out.append(key[len(prefix):].decode())
        if len(out) == limit:
            break
    return out


def close_open(state: State, slot: int, account_id: str) -> None:
    state.kv.delete(keys.open_key(slot, account_id))


# -- reports and totals -----------------------------------------------------------------------------------
def put_report(state: State, report: SettlementReport) -> None:
    state.put(keys.report_key(report.slot, report.account), report)
    state.kv.set(keys.account_reports_prefix(report.account) + be64(report.slot), b"")


def get_report(state: State, slot: int, account_id: str) -> SettlementReport | None:
    return state.get(keys.report_key(slot, account_id), SettlementReport)


def slot_reports(state: State, slot: int) -> list[SettlementReport]:
    return list(state.scan_records(keys.report_slot_prefix(slot), SettlementReport))


def account_reports(state: State, account_id: str, limit: int) -> list[SettlementReport]:
    slots = [unbe64(key[-8:]) for key, _ in state.scan(keys.account_reports_prefix(account_id))][-limit:]
    reports = [get_report(state, slot, account_id) for slot in slots]
    return [r for r in reports if r is not None]


def get_slot_settlement(state: State, slot: int) -> SlotSettlement | None:
    return state.get(keys.slot_total_key(slot), SlotSettlement)


def put_slot_settlement(state: State, total: SlotSettlement) -> None:
    state.put(keys.slot_total_key(total.slot), total)


def iter_slot_settlements(state: State) -> Iterator[SlotSettlement]:
    return state.scan_records(b"stl/slot/", SlotSettlement)


# -- what the reserve owes for a slot, and what is owed from earlier slots -----------------------------------
def add_due(state: State, slot: int, creditor: str, reason: str, amount: int) -> None:
    if amount <= 0:
        return
    key = keys.pay_key(slot, creditor, reason)
    raw = state.kv.get(key)
    # Saturated like the slot totals: a claim beyond 2^63 - 1 exceeds all the money that can exist.
    state.kv.set(key, be64(min(codec.MAX_INT, (unbe64(raw) if raw is not None else 0) + amount)))


def slot_dues(state: State, slot: int, limit: int | None = None) -> list[tuple[str, str, int]]:
    """(creditor, reason, amount) of what the reserve still owes for the slot, in key order (the first
    ``limit``; the pay phase deletes each entry it pays, so the next call starts where this one ended)."""
    prefix = keys.pay_slot_prefix(slot)
    out: list[tuple[str, str, int]] = []
    for key, raw in state.scan(prefix):
        if limit is not None and len(out) == limit:
            break
        creditor, reason = key[len(prefix):].decode().split("/")
        out.append((creditor, reason, unbe64(raw)))
    return out


def put_owed(state: State, owed: Owed) -> None:
    key = keys.owed_key(owed.debtor, owed.slot, owed.creditor, owed.reason)
    if owed.amount:
        state.put(key, owed)
    else:
        state.kv.delete(key)


def owed_by(state: State, debtor: str, limit: int | None = None) -> list[Owed]:
    """What ``debtor`` still owes, oldest slot first (the first ``limit`` entries)."""
    out: list[Owed] = []
    for owed in state.scan_records(keys.owed_prefix(debtor), Owed):
        if limit is not None and len(out) == limit:
            break
        out.append(owed)
    return out


def owed_group_after(state: State, debtor: str, after_slot: int, participants: bool) -> list[Owed]:
    """Every participant's credit (or operator's claim) ``debtor`` owes for its oldest slot still owed after
    ``after_slot`` (-1: any); one scan from that slot on (rank and slot lead the key), so the caller may pay
    and rewrite the entries between calls."""
    prefix = keys.owed_rank_prefix(debtor, participants)
    out: list[Owed] = []
    for key, _ in state.kv.iterate(prefix + be64(after_slot + 1), prefix_end(prefix)):
        owed = state.kv.get_record(key, Owed)
        if owed is None:
            continue
        if out and owed.slot != out[0].slot:
            break
        out.append(owed)
    return out


def iter_owed(state: State) -> Iterator[Owed]:
    return state.scan_records(keys.OWED, Owed)
