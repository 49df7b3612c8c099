"""Queries of the settlement module (docs/queries.md): /settlement…, /settlements/<id>, /reading/<meter>."""

from __future__ import annotations

from typing import Any

from abci_app.ledger import errors
from abci_app.ledger.modules.settlement import keeper
from abci_app.ledger.query_args import u64_arg
from abci_app.ledger.state import State
from abci_app.ledger.wire import plain

MAX_REPORTS = 500


def query(state: State, head: str, args: list[str]) -> Any | None:
    if head == "settlement" and len(args) == 1:
        slot = u64_arg(args[0], "slot")
        total = keeper.get_slot_settlement(state, slot)
        if total is None:
            raise errors.NotFound(f"slot {slot} has no settlement yet")
        return {**plain(total), "reports": [plain(r) for r in keeper.slot_reports(state, slot)]}
    if head == "settlement" and len(args) == 2:
        report = keeper.get_report(state, u64_arg(args[0], "slot"), args[1])
        if report is None:
            raise errors.NotFound(f"no settlement of {args[1]} in slot {args[0]}")
        return plain(report)
    if head == "settlements" and len(args) == 1:
        return {"account": args[0], "reports": [plain(r) for r in keeper.account_reports(state, args[0], MAX_REPORTS)]}
    if head == "reading" and len(args) == 1:
        reading = keeper.get_last_reading(state, args[0])
        if reading is None:
            raise errors.NotFound(f"meter {args[0]} has no accepted reading")
        return {"meter": args[0], **plain(reading)}
    return None
