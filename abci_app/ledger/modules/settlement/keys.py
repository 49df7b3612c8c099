"""Keys of the settlement module.

    rd/last/<meter id>                          LastReading (time and registers)
    rd/slot/<slot:be64>/<meter id>              SlotReading (the slot's energy of one meter)
    rd/open/<accounted through:be64>/<meter>    b"" (active meters by the end of the last slot whose
                                                energy is known: the silent ones are found by one scan)
    rd/thru/<meter id>                          be64: that time, for the meter
    stl/cursor                                  be64: start of the oldest slot not yet settled
    stl/due/<slot:be64>/<account id>            b"" (participants still to measure)
    stl/open/<slot:be64>/<account id>           b"" (participants measured, still to charge or pay)
    stl/rep/<slot:be64>/<account id>            SettlementReport
    stl/acct/<account id>/<slot:be64>           b"" (reports of an account)
    stl/slot/<slot:be64>                        SlotSettlement (phase, totals)
    stl/pay/<slot:be64>/<creditor>/<reason>     be64: what the reserve owes that creditor for the slot
    stl/owed/<debtor>/<rank:u8><slot:be64>/<creditor>/<reason>  Owed (what a debtor could not pay yet; rank 0:
                                                 a participant's credit, 1: an operator's claim)

The balancing reserve is a module account (``acct/<RESERVE_ID>``, role ``module``): no key can sign for it.
"""

from __future__ import annotations

import hashlib

from abci_app.ledger.state import be64

RESERVE_ID = hashlib.sha256(b"gridledger/module/balancing-reserve").digest()[:20].hex()
"""Account id of the balancing reserve: not the hash of any 32-byte key anyone holds."""
DUE = b"stl/due/"
OPEN = b"stl/open/"
OWED = b"stl/owed/"
METERS_OPEN = b"rd/open/"
CURSOR = b"stl/cursor"


def last_reading_key(meter_id: str) -> bytes:
    return b"rd/last/" + meter_id.encode()


def slot_reading_key(slot: int, meter_id: str) -> bytes:
    return b"rd/slot/" + be64(slot) + b"/" + meter_id.encode()


def meter_open_key(through: int, meter_id: str) -> bytes:
    return METERS_OPEN + be64(through) + b"/" + meter_id.encode()


def meter_through_key(meter_id: str) -> bytes:
    return b"rd/thru/" + meter_id.encode()


def due_slot_prefix(slot: int) -> bytes:
    return DUE + be64(slot) + b"/"


def due_key(slot: int, account_id: str) -> bytes:
    return due_slot_prefix(slot) + account_id.encode()


def open_slot_prefix(slot: int) -> bytes:
    return OPEN + be64(slot) + b"/"


def open_key(slot: int, account_id: str) -> bytes:
    return open_slot_prefix(slot) + account_id.encode()


def report_slot_prefix(slot: int) -> bytes:
    return b"stl/rep/" + be64(slot) + b"/"


def report_key(slot: int, account_id: str) -> bytes:
    return report_slot_prefix(slot) + account_id.encode()


def account_reports_prefix(account_id: str) -> bytes:
    return b"stl/acct/" + account_id.encode() + b"/"


def slot_total_key(slot: int) -> bytes:
    return b"stl/slot/" + be64(slot)


def pay_slot_prefix(slot: int) -> bytes:
    return b"stl/pay/" + be64(slot) + b"/"


def pay_key(slot: int, creditor: str, reason: str) -> bytes:
    return pay_slot_prefix(slot) + creditor.encode() + b"/" + reason.encode()


PARTICIPANT_CLAIMS = ("balancing_credit", "feed_in")
"""What the reserve owes participants; they rank before the operators' claims (network_charge,
lpd_settlement, reserve_settlement): the operators are the counterparties who bear a defaulting
participant's loss (docs/settlement.md)."""


def owed_prefix(debtor: str) -> bytes:
    return OWED + debtor.encode() + b"/"


def owed_rank_prefix(debtor: str, participants: bool) -> bytes:
    """The debtor's participants' credits (rank 0) or operators' claims (rank 1), oldest slot first."""
    return owed_prefix(debtor) + (b"\x00" if participants else b"\x01")


def owed_key(debtor: str, slot: int, creditor: str, reason: str) -> bytes:
    return (owed_rank_prefix(debtor, reason in PARTICIPANT_CLAIMS) + be64(slot) + b"/" + creditor.encode()
            + b"/" + reason.encode())
