"""Genesis step of the market module: the DSOs' grid fee components, with the rules of ``set_grid_fees``."""

from __future__ import annotations

from typing import Any

from abci_app.ledger import errors
from abci_app.ledger.modules.gov.records import Operator
from abci_app.ledger.modules.market.handlers import check_fee_entry
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.msgs import FeeEntry, SetGridFees
from abci_app.ledger.modules.market.records import GridFee
from abci_app.ledger.state import State


def init_grid_fees(state: State, entries: list[dict[str, Any]], operators: dict[str, Operator]) -> None:
    market = Market(state)
    for entry in entries:
        unknown = set(entry) - {"dso", "from", "to", "fee"}
        # Rule: a genesis grid fee has exactly the keys dso, from, to and fee.
        if unknown:
            raise errors.MalformedBody(f"grid fee: unknown keys {sorted(unknown)}")
        dso = operators.get(entry["dso"])
        # Rule: a genesis grid fee names a genesis DSO.
        if dso is None or dso.role != "dso":
            raise errors.UnknownOperator(f"grid fee: {entry['dso']!r} is not a genesis DSO")
        fee = FeeEntry(from_zone=entry["from"], to_zone=entry["to"], fee_per_kwh=entry["fee"])
        SetGridFees(entries=(fee,)).validate_basic()
        check_fee_entry(state, dso, fee)
        # Rule: each DSO lists each route once.
        if any(c.dso == dso.account for c in market.fee_components(fee.from_zone, fee.to_zone)):
            raise errors.MalformedBody(f"grid fee {fee.from_zone}->{fee.to_zone} of {entry['dso']} listed twice")
        market.set_fee_component(GridFee(from_zone=fee.from_zone, to_zone=fee.to_zone, dso=dso.account,
                                         fee_per_kwh=fee.fee_per_kwh))
