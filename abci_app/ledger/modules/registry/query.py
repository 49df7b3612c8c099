"""Queries of the registry module (docs/queries.md): /meters/<account id>, /meter/<meter id>."""

from __future__ import annotations

from typing import Any

from abci_app.ledger.modules.registry import keeper
from abci_app.ledger.query_args import found
from abci_app.ledger.state import State
from abci_app.ledger.wire import plain


def query(state: State, head: str, args: list[str]) -> Any | None:
    if head == "meters" and len(args) == 1:
        meters = [keeper.get_meter(state, meter_id) for meter_id in keeper.meters_of(state, args[0])]
        return {"owner": args[0], "meters": [plain(m) for m in meters if m is not None]}
    if head == "meter" and len(args) == 1:
        return plain(found(keeper.get_meter(state, args[0]), f"meter {args[0]}"))
    return None
