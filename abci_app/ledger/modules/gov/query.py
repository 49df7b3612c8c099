"""Queries of the gov module (docs/queries.md): /operators, /proposals, /proposal/<id>."""

from __future__ import annotations

import base64
from typing import Any

from abci_app.ledger.modules.gov import keeper
from abci_app.ledger.modules.gov.records import Operator
from abci_app.ledger.query_args import found, u64_arg
from abci_app.ledger.state import State
from abci_app.ledger.wire import plain


def query(state: State, head: str, args: list[str]) -> Any | None:
    if head == "operators" and not args:
        return {"operators": [operator_json(op) for op in keeper.iter_operators(state)]}
    if head == "proposals" and not args:
        return {"proposals": [plain(p) for p in keeper.iter_proposals(state)]}
    if head == "proposal" and len(args) == 1:
        proposal = keeper.get_proposal(state, u64_arg(args[0], "proposal id"))
        return plain(found(proposal, f"proposal {args[0]}"))
    return None


def operator_json(operator: Operator) -> dict[str, Any]:
    out: dict[str, Any] = plain(operator)
    # Base64, as CometBFT writes validator keys (priv_validator_key.json, /validators).
    out["consensus_pubkey"] = base64.b64encode(operator.consensus_pubkey).decode()
    return out
