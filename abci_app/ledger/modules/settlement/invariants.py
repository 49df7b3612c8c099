"""Invariants of the settlement module: each returns the violations it finds (empty: holds)."""

from __future__ import annotations

from abci_app.ledger.modules.settlement import keeper
from abci_app.ledger.modules.settlement.keys import DUE
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
    problems = []
    for key, _ in state.scan(b"stl/slot/"):
        slot = unbe64(key[-8:])
        total = keeper.get_slot_settlement(state, slot)
        reports = keeper.slot_reports(state, slot)
        if total is None:
            continue
        sums = (len(reports), sum(r.balancing_charge for r in reports), sum(r.balancing_credit for r in reports),
                sum(r.debt_added for r in reports))
        if sums != (total.participants, total.charges, total.credits, total.debt):
            problems.append(f"slot {slot}: reports sum to {sums}, the total says "
                            f"{(total.participants, total.charges, total.credits, total.debt)}")
    return problems


INVARIANTS = (completed_slots_owe_nothing, reports_add_up_to_the_slot_totals)
