"""Records of the settlement module."""

from __future__ import annotations

from abci_app.ledger.wire import I64, Record


class LastReading(Record, frozen=True):
    time: I64
    import_register_wh: I64
    export_register_wh: I64


class SlotReading(Record, frozen=True):
    owner: str
    imported_wh: I64
    exported_wh: I64


class SettlementReport(Record, frozen=True):
    """One participant's settlement of one slot (all money in the smallest unit)."""

    slot: I64
    account: str
    bought_wh: I64
    sold_wh: I64
    contracted_wh: I64
    """C = sold - bought."""
    imported_wh: I64
    exported_wh: I64
    measured_wh: I64
    """M = exported - imported."""
    deviation_wh: I64
    """D = M - C."""
    energy_paid: I64
    """Paid for energy bought (at trade time)."""
    energy_received: I64
    fees_paid: I64
    balancing_charge: I64
    """Shortfall -D at balancing_buy_price (0 if D >= 0)."""
    balancing_credit: I64
    """Surplus D at balancing_sell_price actually paid by the LPD."""
    collateral_released: I64
    """Collateral of the slot unlocked."""
    collateral_used: I64
    """Part of the charge paid out of that collateral."""
    paid_from_balance: I64
    """Part of the charge paid from the rest of the free balance."""
    debt_added: I64
    """Part of the charge left unpaid and recorded as debt."""
    credit_unpaid: I64
    """Part of the surplus credit the LPD could not pay (settled off-chain)."""
    height: I64


class SlotSettlement(Record, frozen=True):
    slot: I64
    participants: I64
    shortfall_wh: I64
    surplus_wh: I64
    charges: I64
    credits: I64
    debt: I64
    complete: bool
    height: I64
