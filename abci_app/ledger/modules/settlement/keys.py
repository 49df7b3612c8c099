"""Keys of the settlement module.

    rd/last/<meter id>                 LastReading (time and registers)
    rd/slot/<slot:be64>/<meter id>     SlotReading (the slot's counted flows)
    stl/due/<slot:be64>/<account id>   b"" (participants still to settle)
    stl/rep/<slot:be64>/<account id>   SettlementReport
    stl/acct/<account id>/<slot:be64>  b"" (reports of an account)
    stl/slot/<slot:be64>               SlotSettlement (running totals; ``complete`` at the end)
"""

from __future__ import annotations

from abci_app.ledger.state import be64

DUE = b"stl/due/"


def last_reading_key(meter_id: str) -> bytes:
    return b"rd/last/" + meter_id.encode()


def slot_reading_key(slot: int, meter_id: str) -> bytes:
    return b"rd/slot/" + be64(slot) + b"/" + meter_id.encode()


def due_slot_prefix(slot: int) -> bytes:
    return DUE + be64(slot) + b"/"


def due_key(slot: int, account_id: str) -> bytes:
    return due_slot_prefix(slot) + account_id.encode()


def report_slot_prefix(slot: int) -> bytes:
    return b"stl/rep/" + be64(slot) + b"/"


def report_key(slot: int, account_id: str) -> bytes:
    return report_slot_prefix(slot) + account_id.encode()


def account_reports_prefix(account_id: str) -> bytes:
    return b"stl/acct/" + account_id.encode() + b"/"


def slot_total_key(slot: int) -> bytes:
    return b"stl/slot/" + be64(slot)
