"""Records of the bank module."""

from __future__ import annotations

from abci_app.ledger.wire import I64, Record


class Supply(Record, frozen=True):
    """Money in circulation: everything deposited minus everything withdrawn."""

    total: I64


class JournalEntry(Record, frozen=True):
    """One line of an account's statement."""

    seq: I64
    time: I64
    height: I64
    kind: str
    """deposit | withdraw | transfer_in | transfer_out | energy_bought | energy_sold | grid_fee | grid_fee_income |
    balancing_charge | balancing_credit | debt_repaid | debt_received."""
    amount: I64
    """Signed: positive credits the account, negative debits it."""
    reference: str
    """Trade id, slot, counterparty or payment reference."""
