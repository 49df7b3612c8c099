"""The block step of settlement, and debt repayment (docs/settlement.md)."""

from __future__ import annotations

from msgspec.structs import replace

from abci_app.ledger import errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.bank import keeper as bank
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.records import amount
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.modules.settlement import keeper
from abci_app.ledger.modules.settlement.records import SettlementReport, SlotSettlement
from abci_app.ledger.params import get_params
from abci_app.ledger.state import State


def balancing_lpd(state: State) -> str:
    """The balancing party: the voting LPD operator with the lowest account id (docs/settlement.md)."""
    lpds = [op.account for op in gov.iter_operators(state) if op.role == "lpd" and op.power > 0]
    if not lpds:
        lpds = [op.account for op in gov.iter_operators(state) if op.role == "lpd"]
    if not lpds:
        raise errors.InvariantViolated("settlement needs an LPD operator")
    return min(lpds)


def on_block(state: State, height: int, time: int) -> list[Event]:
    """Settle due participants of slots past their deadline, oldest first, at most settlement_batch."""
    params = get_params(state)
    budget = params.settlement_batch
    events: list[Event] = []
    while budget > 0:
        due = keeper.next_due(state)
        if due is None:
            break
        slot, account_id = due
        if time <= slot + params.slot_length_s + params.settlement_window_s:
            break
        keeper.clear_due(state, slot, account_id)
        events.append(settle_participant(state, slot, account_id, height, time))
        budget -= 1
        if not keeper.slot_has_due(state, slot):
            events.append(_complete_slot(state, slot, height))
    return events


def settle_participant(state: State, slot: int, account_id: str, height: int, time: int) -> Event:
    params = get_params(state)
    market = Market(state)
    position = market.get_position(slot, account_id)
    imported = exported = 0
    for meter_id in registry.meters_of(state, account_id):
        flow = keeper.get_slot_reading(state, slot, meter_id)
        if flow is not None:
            imported += flow.imported_wh
            exported += flow.exported_wh
    contracted = position.sold_wh - position.bought_wh
    measured = exported - imported
    deviation = measured - contracted
    # The slot's collateral is released first; the charge is then paid out of it, then the rest of the balance.
    if position.collateral:
        bank.unlock(state, account_id, position.collateral)
    market.put_position(replace(position, collateral=0, bid_open_wh=0, ask_open_wh=0, bought_wh=0, sold_wh=0))
    lpd = balancing_lpd(state)
    charge = amount(-deviation, params.balancing_buy_price) if deviation < 0 else 0
    credit_due = amount(deviation, params.balancing_sell_price) if deviation > 0 else 0
    account = auth.require_account(state, account_id)
    paid = min(charge, account.free)
    debt = charge - paid
    if paid:
        bank.debit(state, account_id, paid)
        bank.credit(state, lpd, paid)
        bank.journal(state, account_id, time, height, "balancing_charge", -paid, f"slot {slot}")
        bank.journal(state, lpd, time, height, "balancing_income", paid, f"slot {slot} {account_id}")
    if debt:
        account = auth.require_account(state, account_id)
        auth.put_account(state, replace(account, debt=account.debt + debt))
    credit = min(credit_due, auth.require_account(state, lpd).free)
    if credit:
        bank.debit(state, lpd, credit)
        bank.credit(state, account_id, credit)
        bank.journal(state, account_id, time, height, "balancing_credit", credit, f"slot {slot}")
        bank.journal(state, lpd, time, height, "balancing_payout", -credit, f"slot {slot} {account_id}")
    report = SettlementReport(
        slot=slot, account=account_id, bought_wh=position.bought_wh, sold_wh=position.sold_wh,
        contracted_wh=contracted, imported_wh=imported, exported_wh=exported, measured_wh=measured,
        deviation_wh=deviation, energy_paid=position.paid, energy_received=position.received,
        fees_paid=position.fees_paid, balancing_charge=charge, balancing_credit=credit,
        collateral_released=position.collateral, collateral_used=min(paid, position.collateral),
        paid_from_balance=paid - min(paid, position.collateral), debt_added=debt, credit_unpaid=credit_due - credit,
        height=height,
    )
    keeper.put_report(state, report)
    _add_to_slot(state, slot, report, height)
    return event("settlement.participant", slot=slot, account=account_id, contracted_wh=contracted,
                 measured_wh=measured, deviation_wh=deviation, balancing_charge=charge, balancing_credit=credit,
                 collateral_used=report.collateral_used, debt_added=debt)


def _add_to_slot(state: State, slot: int, report: SettlementReport, height: int) -> None:
    total = keeper.get_slot_settlement(state, slot) or SlotSettlement(slot, 0, 0, 0, 0, 0, 0, False, height)
    keeper.put_slot_settlement(state, replace(
        total, participants=total.participants + 1,
        shortfall_wh=total.shortfall_wh + max(0, -report.deviation_wh),
        surplus_wh=total.surplus_wh + max(0, report.deviation_wh),
        charges=total.charges + report.balancing_charge, credits=total.credits + report.balancing_credit,
        debt=total.debt + report.debt_added, height=height,
    ))


def _complete_slot(state: State, slot: int, height: int) -> Event:
    total = keeper.get_slot_settlement(state, slot)
    if total is None:
        raise errors.InvariantViolated(f"slot {slot} completed without a running total")
    total = replace(total, complete=True, height=height)
    keeper.put_slot_settlement(state, total)
    return event("settlement.slot", slot=slot, participants=total.participants, shortfall_wh=total.shortfall_wh,
                 surplus_wh=total.surplus_wh, charges=total.charges, credits=total.credits, debt=total.debt)


def repay_debt(state: State, account: Account, time: int, height: int) -> int:
    """After a deposit: pay the account's debt to the balancing LPD from its free balance."""
    repay = min(account.debt, account.free)
    if repay == 0:
        return 0
    lpd = balancing_lpd(state)
    bank.debit(state, account.id, repay)
    bank.credit(state, lpd, repay)
    account = auth.require_account(state, account.id)
    auth.put_account(state, replace(account, debt=account.debt - repay))
    bank.journal(state, account.id, time, height, "debt_repaid", -repay, lpd)
    bank.journal(state, lpd, time, height, "debt_received", repay, account.id)
    return repay
