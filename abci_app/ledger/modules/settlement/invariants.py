"""Invariants of the settlement module: each returns the violations it finds (empty: holds)."""

from __future__ import annotations

from collections.abc import Iterable

from abci_app.ledger import codec
from abci_app.ledger.modules.auth.keeper import get_account
from abci_app.ledger.modules.settlement import keeper
from abci_app.ledger.modules.settlement.keys import DUE, RESERVE_ID
from abci_app.ledger.state import State, unbe64


def completed_slots_owe_nothing(state: State) -> list[str]:
    problems = []
    for key, _ in state.scan(DUE):
        slot = unbe64(key[len(DUE):len(DUE) + 8])
        total = keeper.get_slot_settlement(state, slot)
        if total is not None and total.complete:
            problems.append(f"slot {slot} is settled but {key[len(DUE) + 9:].decode()} is still due")
    return problems


def reports_add_up_to_the_slot_totals(state: State) -> list[str]:
    """A settled slot's totals are the sums of its reports (saturated at 2^63 - 1 like the totals), and what
    the reserve paid and owes for it is what was due (checked while no figure is saturated)."""
    problems = []
    for total in keeper.iter_slot_settlements(state):
        if not total.complete:
            continue
        reports = keeper.slot_reports(state, total.slot)
        sums = (len(reports), _saturated(r.charged for r in reports),
                _saturated(r.collateral_used + r.paid_from_balance for r in reports),
                _saturated(r.balancing_credit_due + r.feed_in_due for r in reports))
        if sums != (total.participants, total.charges, total.collected, total.credits_due):
            problems.append(f"slot {total.slot}: reports sum to {sums}, the total says "
                            f"{(total.participants, total.charges, total.collected, total.credits_due)}")
        due = (total.credits_due, total.dso_due, total.lpd_due, total.lpd_owes, total.paid, total.owed)
        if max(due) < codec.MAX_INT and total.paid + total.owed != total.credits_due + total.dso_due + total.lpd_due:
            problems.append(f"slot {total.slot}: paid {total.paid} + owed {total.owed} is not what was due")
    return problems


def reports_account_for_every_charge(state: State) -> list[str]:
    """Each charge was paid from collateral or balance, became debt, or (past 2^63 - 1 of debt) written off."""
    problems = []
    for total in keeper.iter_slot_settlements(state):
        for r in keeper.slot_reports(state, total.slot):
            if r.charged and r.charged != r.collateral_used + r.paid_from_balance + r.debt_added + r.debt_written_off:
                problems.append(f"slot {total.slot} {r.account}: charged {r.charged} is not paid + debt + written off")
    return problems


def _saturated(values: Iterable[int]) -> int:
    return min(codec.MAX_INT, sum(values))


def the_reserve_is_a_keyless_module_account(state: State) -> list[str]:
    reserve = get_account(state, RESERVE_ID)
    if reserve is None:
        return []
    if reserve.pubkey or reserve.role != "module" or reserve.debt or reserve.locked:
        return [f"balancing reserve account is {reserve}"]
    return []


INVARIANTS = (completed_slots_owe_nothing, reports_add_up_to_the_slot_totals, reports_account_for_every_charge,
              the_reserve_is_a_keyless_module_account)
