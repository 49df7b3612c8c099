"""Accessors of readings, settlement obligations and reports."""

from __future__ import annotations

from abci_app.ledger.modules.registry.records import Meter
from abci_app.ledger.modules.settlement import keys
from abci_app.ledger.modules.settlement.records import LastReading, SettlementReport, SlotReading, SlotSettlement
from abci_app.ledger.state import State, be64, unbe64


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


def mark_due(state: State, slot: int, account_id: str) -> None:
    """``account_id`` has something to settle in ``slot`` (a trade or a counted reading)."""
    state.kv.set(keys.due_key(slot, account_id), b"")


def clear_due(state: State, slot: int, account_id: str) -> None:
    state.kv.delete(keys.due_key(slot, account_id))


def next_due(state: State) -> tuple[int, str] | None:
    """The oldest (slot, account) still to settle."""
    for key, _ in state.scan(keys.DUE):
        rest = key[len(keys.DUE):]
        return unbe64(rest[:8]), rest[9:].decode()
    return None


def slot_has_due(state: State, slot: int) -> bool:
    return next(iter(state.scan(keys.due_slot_prefix(slot))), None) is not None


def put_report(state: State, report: SettlementReport) -> None:
    state.put(keys.report_key(report.slot, report.account), report)
    state.kv.set(keys.account_reports_prefix(report.account) + be64(report.slot), b"")


def put_slot_settlement(state: State, total: SlotSettlement) -> None:
    state.put(keys.slot_total_key(total.slot), total)


def get_slot_settlement(state: State, slot: int) -> SlotSettlement | None:
    return state.get(keys.slot_total_key(slot), SlotSettlement)


def get_report(state: State, slot: int, account_id: str) -> SettlementReport | None:
    return state.get(keys.report_key(slot, account_id), SettlementReport)


def slot_reports(state: State, slot: int) -> list[SettlementReport]:
    return list(state.scan_records(keys.report_slot_prefix(slot), SettlementReport))


def account_reports(state: State, account_id: str, limit: int) -> list[SettlementReport]:
    slots = [unbe64(key[-8:]) for key, _ in state.scan(keys.account_reports_prefix(account_id))][-limit:]
    reports = [get_report(state, slot, account_id) for slot in slots]
    return [r for r in reports if r is not None]
