"""Queries of the bank module (docs/queries.md): /supply, /statement/<account>/<from>/<to>."""

from __future__ import annotations

from typing import Any

from abci_app.ledger.modules.bank import keeper
from abci_app.ledger.query_args import u64_arg
from abci_app.ledger.state import State
from abci_app.ledger.wire import plain

MAX_STATEMENT_LINES = 5000


def query(state: State, head: str, args: list[str]) -> Any | None:
    if head == "supply" and not args:
        return {"total": keeper.get_supply(state)}
    if head == "statement" and len(args) == 3:
        start, end = u64_arg(args[1], "from"), u64_arg(args[2], "to")
        lines = keeper.journal_between(state, args[0], start, end, MAX_STATEMENT_LINES)
        return {"account": args[0], "from": start, "to": end, "lines": [plain(line) for line in lines],
                "truncated": len(lines) == MAX_STATEMENT_LINES}
    return None
