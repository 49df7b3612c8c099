"""The settlement block step (docs/settlement.md): every slot, in order, once its readings deadline passed.

A slot settles in three phases, spread over as many blocks as ``settlement_batch`` requires; the budget
counts meters substituted, participants measured, participants charged and creditors paid:

1. **measure** — every active meter without a reading for the slot gets its substitute (the worst case for
   its owner: full import capacity, no export); every participant with a trade or metered energy in the
   slot is measured (contract C, measurement M, deviation D) and its slot collateral released;
2. **charge** — with the slot's totals known (shortfalls, surpluses, the reference price), each participant
   is charged its balancing, supply and network charges into the balancing reserve (from the released
   collateral and then its balance; the rest becomes debt) and its credits are recorded as due;
3. **pay** — the LPD settles the slot's net imbalance and default supply with the reserve; the reserve pays
   what it owed from earlier slots first, then everyone it owes for this slot the same fraction of their
   due (all of it when it can), and records the rest as owed.

No step depends on the order of accounts: charges are each participant's own, and credits are paid only
after every charge, at one fraction for all.
"""

from __future__ import annotations

from msgspec.structs import replace

from abci_app.ledger import codec, errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.bank import keeper as bank
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.records import amount, amount_up
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.modules.settlement import keeper
from abci_app.ledger.modules.settlement.keys import PARTICIPANT_CLAIMS, RESERVE_ID, pay_key
from abci_app.ledger.modules.settlement.records import (
    CHARGE,
    MARKET,
    MEASURE,
    PAY,
    TARIFF,
    Owed,
    SettlementReport,
    SlotReading,
    SlotSettlement,
)
from abci_app.ledger.params import Params, get_params
from abci_app.ledger.state import State


def _sum(*parts: int) -> int:
    """A slot total: the sum, saturated at 2^63 - 1.

    Every participant's own figures are bounded (docs/state.md, "Arithmetic bounds"), but a total over an
    unbounded number of participants is not; past 2^63 - 1 it exceeds the money that can exist, so it is
    recorded as 2^63 - 1 (a lower bound) rather than stop the chain."""
    return min(codec.MAX_INT, sum(parts))


def balancing_lpd(state: State) -> str:
    """The balancing party: the voting LPD operator with the lowest account id (docs/settlement.md)."""
    lpds = [op.account for op in gov.iter_operators(state) if op.role == "lpd" and op.power > 0]
    if not lpds:
        lpds = [op.account for op in gov.iter_operators(state) if op.role == "lpd"]
    if not lpds:
        raise errors.InvariantViolated("settlement needs an LPD operator")
    return min(lpds)


def on_block(state: State, height: int, time: int) -> list[Event]:
    """Settle slots whose deadline has passed, oldest first, within the block's budget."""
    params = get_params(state)
    cursor = keeper.get_cursor(state)
    events: list[Event] = []
    budget = params.settlement_batch
    if cursor is not None and time > cursor + params.slot_length_s + params.settlement_window_s:
        keeper.ensure_reserve(state)
    while cursor is not None and budget > 0 and time > cursor + params.slot_length_s + params.settlement_window_s:
        total = keeper.get_slot_settlement(state, cursor) or _new_total(cursor, height)
        total, budget = _work(state, params, total, budget, height, time, events)
        keeper.put_slot_settlement(state, total)
        if not total.complete:
            break
        cursor += params.slot_length_s
        keeper.put_cursor(state, cursor)
    return events


def _new_total(slot: int, height: int) -> SlotSettlement:
    return SlotSettlement(slot=slot, phase=MEASURE, participants=0, shortfall_wh=0, surplus_wh=0, traded_wh=0,
                          traded_value=0, reference_price=0, netted_wh=0, balancing_bought_wh=0,
                          balancing_sold_wh=0, supplied_wh=0, fed_in_wh=0, charges=0, collected=0, debt=0,
                          credits_due=0, lpd_due=0, lpd_owes=0, dso_due=0, paid=0, owed=0, pay_numerator=1,
                          pay_denominator=1, operators_numerator=1, operators_denominator=1, complete=False,
                          height=height)


def _work(state: State, params: Params, total: SlotSettlement, budget: int, height: int, time: int,
          events: list[Event]) -> tuple[SlotSettlement, int]:
    slot_end = total.slot + params.slot_length_s
    if total.phase == MEASURE:
        while budget > 0 and (silent := keeper.silent_meters(state, slot_end, budget)):
            for meter_id in silent:
                _substitute(state, params, total.slot, meter_id)
            budget -= len(silent)
        while budget > 0 and (due := keeper.due_accounts(state, total.slot, budget)):
            for account_id in due:
                total = _measure(state, params, total, account_id, height)
            budget -= len(due)
        if budget == 0 and (keeper.silent_meters(state, slot_end, 1) or keeper.due_accounts(state, total.slot, 1)):
            return total, budget
        total = _totals_known(total)
    if total.phase == CHARGE:
        total, budget, done = _charge_phase(state, params, total, budget, height, time, events)
        if not done or budget == 0:  # earlier slots' creditors come first: leave them a budget
            return total, budget
        total = _lpd_settles(state, params, total, height, time)
        budget = _pay_older_debts(state, budget, height, time)
        total, budget = _fractions_known(state, total, budget, height, time)
    if total.phase == PAY:
        total, budget, done = _pay_phase(state, total, budget, height, time)
        if not done:
            return total, budget
        total = replace(total, complete=True, height=height)
        if total.participants:
            events.append(event("settlement.slot", slot=total.slot, participants=total.participants,
                                shortfall_wh=total.shortfall_wh, surplus_wh=total.surplus_wh,
                                netted_wh=total.netted_wh, reference_price=total.reference_price,
                                charges=total.charges, collected=total.collected, debt=total.debt,
                                credits=total.credits_due, paid=total.paid, owed=total.owed))
    return total, budget


# -- phase 1: measure -----------------------------------------------------------------------------------
def _substitute(state: State, params: Params, slot: int, meter_id: str) -> None:
    """A meter without a reading for the slot by its deadline: bill the worst case for its owner."""
    meter = registry.get_meter(state, meter_id)
    if meter is None:
        raise errors.InvariantViolated(f"the open-meter index names a missing meter {meter_id}")
    known = keeper.accounted_through(state, meter)
    seconds = slot + params.slot_length_s - max(slot, known)
    # Substitute: everything the connection could have drawn, nothing fed in. Never better than the truth.
    keeper.put_slot_reading(state, slot, meter.id, SlotReading(owner=meter.owner,
                                                                imported_wh=meter.import_capacity_w * seconds // 3600,
                                                                exported_wh=0, substituted=True))
    keeper.mark_due(state, slot, meter.owner)
    keeper.advance_meter(state, meter, slot + params.slot_length_s)


def _measure(state: State, params: Params, total: SlotSettlement, account_id: str, height: int) -> SlotSettlement:
    market = Market(state)
    position = market.get_position(total.slot, account_id)
    imported = exported = 0
    substituted = False
    for meter_id in registry.meters_of(state, account_id):
        flow = keeper.get_slot_reading(state, total.slot, meter_id)
        if flow is not None:
            imported, exported = imported + flow.imported_wh, exported + flow.exported_wh
            substituted = substituted or flow.substituted
    traded = position.bought_wh > 0 or position.sold_wh > 0
    contracted = position.sold_wh - position.bought_wh
    measured = exported - imported
    deviation = measured - contracted
    highs, lows = _own_prices(position.sold_wh, position.received, position.bought_wh, position.paid)
    # The slot's collateral stays locked until this participant is charged (a later block when the slot
    # settles in batches): released any earlier, it could be withdrawn before the charge it secures.
    market.put_position(replace(position, bid_open_wh=0, ask_open_wh=0, bought_wh=0, sold_wh=0))
    report = SettlementReport(
        slot=total.slot, account=account_id, regime=MARKET if traded else TARIFF, bought_wh=position.bought_wh,
        sold_wh=position.sold_wh, contracted_wh=contracted, imported_wh=imported, exported_wh=exported,
        measured_wh=measured, deviation_wh=deviation, substituted=substituted, energy_paid=position.paid,
        energy_received=position.received, fees_paid=position.fees_paid, price_high=highs, price_low=lows,
        shortfall_wh=max(0, -deviation) if traded else 0, surplus_wh=max(0, deviation) if traded else 0,
        netted_wh=0, supplied_wh=0 if traded else max(0, -deviation), fed_in_wh=0 if traded else max(0, deviation),
        unmatched_import_wh=max(0, imported - position.bought_wh), balancing_charge=0, supply_charge=0,
        network_charge=0, charged=0, collateral_released=position.collateral, collateral_used=0,
        paid_from_balance=0, debt_added=0, debt_written_off=0, balancing_credit_due=0, feed_in_due=0, credit_paid=0,
        credit_owed=0, height=height,
    )
    keeper.put_report(state, report)
    keeper.measured(state, total.slot, account_id)
    return replace(total, participants=total.participants + 1,
                   shortfall_wh=_sum(total.shortfall_wh, report.shortfall_wh),
                   surplus_wh=_sum(total.surplus_wh, report.surplus_wh),
                   traded_wh=_sum(total.traded_wh, position.sold_wh),
                   traded_value=_sum(total.traded_value, position.received),
                   supplied_wh=_sum(total.supplied_wh, report.supplied_wh),
                   fed_in_wh=_sum(total.fed_in_wh, report.fed_in_wh))


def _own_prices(sold_wh: int, received: int, bought_wh: int, paid: int) -> tuple[int, int]:
    """(dearer average price rounded up, cheaper average price rounded down) per kWh of the slot's trades."""
    averages_up = [-(-money * 1000 // wh) for wh, money in ((sold_wh, received), (bought_wh, paid)) if wh]
    averages_down = [money * 1000 // wh for wh, money in ((sold_wh, received), (bought_wh, paid)) if wh]
    return (max(averages_up), min(averages_down)) if averages_up else (0, 0)


def _totals_known(total: SlotSettlement) -> SlotSettlement:
    """Offsetting deviations meet inside the community; only the net imbalance is the LPD's."""
    netted = min(total.shortfall_wh, total.surplus_wh)
    reference = total.traded_value * 1000 // total.traded_wh if total.traded_wh else 0
    return replace(total, phase=CHARGE, netted_wh=netted, reference_price=reference,
                   balancing_bought_wh=total.shortfall_wh - netted, balancing_sold_wh=total.surplus_wh - netted)


# -- phase 2: charge ------------------------------------------------------------------------------------------
def _charge_phase(state: State, params: Params, total: SlotSettlement, budget: int, height: int, time: int,
                  events: list[Event]) -> tuple[SlotSettlement, int, bool]:
    while budget > 0:
        batch = keeper.open_accounts_after(state, total.slot, "", budget)
        if not batch:
            return total, budget, True
        for account_id in batch:
            total, charge_events = _charge(state, params, total, account_id, height, time)
            keeper.close_open(state, total.slot, account_id)
            events += charge_events
        budget -= len(batch)
    return total, budget, not keeper.open_accounts_after(state, total.slot, "", 1)


def _charge(state: State, params: Params, total: SlotSettlement, account_id: str, height: int,
            time: int) -> tuple[SlotSettlement, list[Event]]:
    report = keeper.get_report(state, total.slot, account_id)
    if report is None:
        raise errors.InvariantViolated(f"participant {account_id} of slot {total.slot} was never measured")
    reference = f"slot {total.slot}"
    # Shortfall: the part offset by others' surplus at the reference price, the rest at the balancing buy
    # price; never below the party's own trade price, so failing to deliver never pays; and the netted part
    # never below the balancing sell price, the most a surplus is paid, so netting never costs the reserve.
    short_netted = report.shortfall_wh * total.netted_wh // total.shortfall_wh if total.shortfall_wh else 0
    netted_price = max(report.price_high, total.reference_price, params.balancing_sell_price)
    balancing_charge = (amount_up(short_netted, netted_price)
                        + amount_up(report.shortfall_wh - short_netted,
                                    max(report.price_high, params.balancing_buy_price)))
    # Surplus: paid at most the lesser of its own trade price and the balancing sell price.
    long_netted = report.surplus_wh * total.netted_wh // total.surplus_wh if total.surplus_wh else 0
    balancing_credit = amount(report.surplus_wh, min(report.price_low, params.balancing_sell_price))
    supply_charge = amount_up(report.supplied_wh, params.supplier_tariff)
    feed_in = amount(report.fed_in_wh, params.feed_in_tariff)
    # Network charges: every DSO's component of the zone's own fee on import not covered by energy bought.
    zone = auth.require_account(state, account_id).zone
    network = [(c.dso, amount_up(report.unmatched_import_wh, c.fee_per_kwh))
               for c in Market(state).fee_components(zone, zone)]
    network_charge = sum(share for _, share in network)
    charged = balancing_charge + supply_charge + network_charge
    # The slot's collateral is released now and pays the charges first, then the rest of the balance.
    account = _release_collateral(state, total.slot, account_id)
    paid = min(charged, account.free)
    if paid:
        bank.debit(state, account_id, paid)
        bank.credit(state, RESERVE_ID, paid)
        left = paid  # each statement line shows what was really taken for it
        for kind, part in (("balancing_charge", balancing_charge), ("supply_charge", supply_charge),
                           ("network_charge", network_charge)):
            if part and left:
                bank.journal(state, account_id, time, height, kind, -min(part, left), reference)
                left -= min(part, left)
        bank.journal(state, RESERVE_ID, time, height, "settlement_collected", paid, f"{reference} {account_id}")
    unpaid = charged - paid
    written_off = 0
    if unpaid:
        account = auth.require_account(state, account_id)
        room = codec.MAX_INT - account.debt
        written_off = max(0, unpaid - room)
        auth.put_account(state, replace(account, debt=account.debt + unpaid - written_off))
    for dso, share in network:
        keeper.add_due(state, total.slot, dso, "network_charge", share)
    keeper.add_due(state, total.slot, account_id, "balancing_credit", balancing_credit)
    keeper.add_due(state, total.slot, account_id, "feed_in", feed_in)
    collateral_used = min(paid, report.collateral_released)
    report = replace(report, netted_wh=short_netted or long_netted, balancing_charge=balancing_charge,
                     supply_charge=supply_charge, network_charge=network_charge, charged=charged,
                     collateral_used=collateral_used, paid_from_balance=paid - collateral_used,
                     debt_added=unpaid - written_off, debt_written_off=written_off,
                     balancing_credit_due=balancing_credit, feed_in_due=feed_in,
                     height=height)
    keeper.put_report(state, report)
    total = replace(total, charges=_sum(total.charges, charged), collected=_sum(total.collected, paid),
                    debt=_sum(total.debt, unpaid), credits_due=_sum(total.credits_due, balancing_credit, feed_in),
                    dso_due=_sum(total.dso_due, network_charge), lpd_due=_sum(total.lpd_due, supply_charge),
                    lpd_owes=_sum(total.lpd_owes, feed_in))
    events = [event("settlement.participant", slot=total.slot, account=account_id, regime=report.regime,
                    contracted_wh=report.contracted_wh, measured_wh=report.measured_wh,
                    deviation_wh=report.deviation_wh, substituted=report.substituted, charged=charged,
                    balancing_charge=balancing_charge, supply_charge=supply_charge,
                    network_charge=network_charge, credit_due=balancing_credit + feed_in,
                    collateral_used=collateral_used, debt_added=report.debt_added)]
    # What the release left free (a seller's proceeds, unused collateral) repays earlier debt first.
    repaid = bank.repay_debt(state, account_id, time, height)
    if repaid:
        events.append(event("debt.repaid", account=account_id, amount=repaid))
    return total, events


def _release_collateral(state: State, slot: int, account_id: str) -> Account:
    """Unlock the collateral of the account's position in the slot (the position's last part)."""
    market = Market(state)
    position = market.get_position(slot, account_id)
    if position.collateral:
        bank.unlock(state, account_id, position.collateral)
        market.put_position(replace(position, collateral=0))
    return auth.require_account(state, account_id)


# -- phase 3: the LPD, then the reserve's creditors ------------------------------------------------------------
def _lpd_settles(state: State, params: Params, total: SlotSettlement, height: int, time: int) -> SlotSettlement:
    """The LPD owes the feed-in and the net surplus it took: it pays them into the reserve now, in full (or
    owes them), for the participants they are due to. It is owed the default supply and the net shortfall
    it supplied: a claim on the reserve like the DSOs', paid from what the participants' charges brought in.
    The two are not netted: a participant who does not pay its supply must not cost an exporter its feed-in
    (the LPD is the counterparty of both)."""
    lpd = balancing_lpd(state)
    due = _sum(total.lpd_due, amount_up(total.balancing_bought_wh, params.balancing_buy_price))
    owes = _sum(total.lpd_owes, amount(total.balancing_sold_wh, params.balancing_sell_price))
    if owes:
        _collect_from_lpd(state, lpd, total.slot, owes, height, time)
    keeper.add_due(state, total.slot, lpd, "lpd_settlement", due)
    return replace(total, lpd_due=due, lpd_owes=owes)


def _fractions_known(state: State, total: SlotSettlement, budget: int, height: int,
                     time: int) -> tuple[SlotSettlement, int]:
    """The fraction of their due this slot's participants are paid, then (after the operators' claims from
    earlier slots) the fraction its operators are paid of what is left."""
    dues = keeper.slot_dues(state, total.slot)
    participants_due = sum(amount_due for _, reason, amount_due in dues if reason in PARTICIPANT_CLAIMS)
    operators_due = sum(amount_due for _, reason, amount_due in dues if reason not in PARTICIPANT_CLAIMS)
    numerator, denominator = pay_fraction(auth.require_account(state, RESERVE_ID).free, participants_due)
    # Set aside exactly what the participants will be paid (each share is rounded down on its own).
    set_aside = sum(amount_due * numerator // denominator for _, reason, amount_due in dues
                    if reason in PARTICIPANT_CLAIMS)
    budget = _pay_older_reserve_claims(state, budget, height, time, participants=False, keep=set_aside)
    left = auth.require_account(state, RESERVE_ID).free - set_aside
    operators_numerator, operators_denominator = pay_fraction(left, operators_due)
    return replace(total, phase=PAY, pay_numerator=numerator, pay_denominator=denominator,
                   operators_numerator=operators_numerator,
                   operators_denominator=operators_denominator), budget


def pay_fraction(available: int, owed_total: int) -> tuple[int, int]:
    """The fraction of its due every creditor of a slot is paid: 1 when the reserve can pay everyone, else
    available / owed_total. Both terms are stored as 64-bit integers, so a total above 2^62 is scaled down,
    rounding the fraction down: the payments never add up to more than the reserve holds."""
    if owed_total <= available:
        return 1, 1
    shift = max(0, owed_total.bit_length() - 62)
    return available >> shift, (owed_total >> shift) + 1 if shift else owed_total


def _collect_from_lpd(state: State, lpd: str, slot: int, amount_owed: int, height: int, time: int) -> None:
    paid = min(amount_owed, auth.require_account(state, lpd).free)
    if paid:
        _transfer(state, lpd, RESERVE_ID, paid, height, time, "reserve_settlement", f"slot {slot}")
    if amount_owed > paid:
        keeper.put_owed(state, Owed(debtor=lpd, creditor=RESERVE_ID, slot=slot, amount=amount_owed - paid,
                                    reason="reserve_settlement"))


def _pay_phase(state: State, total: SlotSettlement, budget: int, height: int,
               time: int) -> tuple[SlotSettlement, int, bool]:
    while budget > 0 and (dues := keeper.slot_dues(state, total.slot, budget)):
        for creditor, reason, amount_due in dues:
            if reason in PARTICIPANT_CLAIMS:
                paid = amount_due * total.pay_numerator // total.pay_denominator
            else:
                paid = amount_due * total.operators_numerator // total.operators_denominator
            if paid:
                _transfer(state, RESERVE_ID, creditor, paid, height, time, reason, f"slot {total.slot}")
            if amount_due > paid:
                keeper.put_owed(state, Owed(debtor=RESERVE_ID, creditor=creditor, slot=total.slot,
                                            amount=amount_due - paid, reason=reason))
            _note_credit(state, total.slot, creditor, reason, paid, amount_due - paid)
            state.kv.delete(pay_key(total.slot, creditor, reason))
            total = replace(total, paid=_sum(total.paid, paid), owed=_sum(total.owed, amount_due - paid))
            budget -= 1
    return total, budget, not keeper.slot_dues(state, total.slot, 1)


def _note_credit(state: State, slot: int, creditor: str, reason: str, paid: int, owed: int) -> None:
    if reason not in ("balancing_credit", "feed_in"):
        return
    report = keeper.get_report(state, slot, creditor)
    if report is not None:
        keeper.put_report(state, replace(report, credit_paid=report.credit_paid + paid,
                                         credit_owed=report.credit_owed + owed))


def _pay_older_debts(state: State, budget: int, height: int, time: int) -> int:
    """What was owed from earlier slots is paid before this slot's claims: the LPD's debts to the reserve,
    then what the reserve owes participants, oldest slot first (the operators' older claims come after this
    slot's participants, in ``_fractions_known``). Nothing is read when the payer has nothing, and at most
    ``budget`` entries are paid (the rest wait for the next slot); returns what is left of the budget."""
    lpd = balancing_lpd(state)
    if budget > 0 and auth.require_account(state, lpd).free > 0:
        for owed in keeper.owed_by(state, lpd, budget):
            paid = min(owed.amount, auth.require_account(state, lpd).free)
            if paid:
                _transfer(state, lpd, owed.creditor, paid, height, time, owed.reason, f"slot {owed.slot}")
                keeper.put_owed(state, replace(owed, amount=owed.amount - paid))
            budget -= 1
    return _pay_older_reserve_claims(state, budget, height, time, participants=True, keep=0)


def _pay_older_reserve_claims(state: State, budget: int, height: int, time: int, *, participants: bool,
                              keep: int) -> int:
    """Pay what the reserve owes the participants (or the operators) from earlier slots, oldest slot first,
    each slot's claims the same fraction, leaving ``keep`` of its free balance untouched."""
    slot = -1
    while budget > 0 and (claims := keeper.owed_group_after(state, RESERVE_ID, slot, participants)):
        slot = claims[0].slot
        available = auth.require_account(state, RESERVE_ID).free - keep
        if available <= 0:
            break
        numerator, denominator = pay_fraction(available, sum(owed.amount for owed in claims))
        for owed in claims:
            paid = owed.amount * numerator // denominator
            if paid:
                _transfer(state, RESERVE_ID, owed.creditor, paid, height, time, owed.reason, f"slot {owed.slot}")
                keeper.put_owed(state, replace(owed, amount=owed.amount - paid))
                _note_credit(state, owed.slot, owed.creditor, owed.reason, paid, -paid)
        budget = max(0, budget - len(claims))
        if numerator < denominator:
            break
    return budget


def _transfer(state: State, source: str, target: str, money: int, height: int, time: int, reason: str,
              reference: str) -> None:
    bank.debit(state, source, money)
    bank.credit_repaying(state, target, money, time, height)
    bank.journal(state, source, time, height, f"{reason}_paid", -money, f"{reference} {target}")
    bank.journal(state, target, time, height, reason, money, reference)

