"""Read-only ABCI queries over the last committed state.

Paths (answers are UTF-8 JSON in ``value``; errors set ``code`` and ``log``):

    /account/<account id>        balances, nonce, role, zone, DSO
    /participants/<zone>         account ids of a zone's participants
    /meters/<account id>         meters of a participant
    /meter/<meter id>            one meter
    /operators                   all operators with power and zones
    /params                      chain parameters
    /supply                      money in circulation
    /proposals                   every governance proposal
    /proposal/<id>               one proposal
    /chain                       chain id, height and block time of the state
    /book/<slot>/<zone>          depth of a zone's book by price level
    /best/<slot>/<buyer zone>    best ask by effective price for a buyer zone, and the zone's best bid
    /orders/<account id>         an account's open orders
    /order/<id>                  one open order
    /trades/slot/<slot>          trades of a slot (the last 500)
    /trades/account/<account id>  trades of an account (the last 500)
    /clearing/<slot>/<zone>      last price formed in a slot and zone
    /position/<slot>/<account>   an account's open quantities, trades and collateral in a slot
    /slots                       slots with open orders, and the last closed slot
    /fees                        the grid fee matrix and its DSO components
    /offer/<offer id>            an accepted off-chain offer: taker, quantity, trade
    /settlement/<slot>           a slot's settlement totals and every participant's report
    /settlement/<slot>/<account>  one participant's settlement report of a slot
    /settlements/<account id>    an account's settlement reports (the last 500)
    /statement/<account>/<from>/<to>  statement lines with from <= time < to (at most 5000)
    /reading/<meter id>          a meter's last accepted reading

The application answers one more, node-local path itself (abci_app/app.py):

    /next_nonce/<account id>     next nonce counting this node's pending mempool txs
"""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from abci_app.ledger import errors
from abci_app.ledger.execute import get_chain
from abci_app.ledger.modules import settlement
from abci_app.ledger.modules.market.query import market_query, u64_arg
from abci_app.ledger.state import Account, Meter, Operator, Proposal, State
from abci_app.ledger.store import Overlay
from abci_app.ledger.wire import plain


def run_query(kv: Overlay, path: str) -> bytes:
    """Answer one query path; raises ``LedgerError`` (BadQuery, NotFound)."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise errors.BadQuery("empty query path")
    state = State(kv)
    head, args = parts[0], parts[1:]
    answer: Any
    if head == "account" and len(args) == 1:
        answer = _account(_found(state.get_account(args[0]), f"account {args[0]}"))
    elif head == "participants" and len(args) == 1:
        answer = {"zone": args[0], "participants": state.participants_in_zone(args[0])}
    elif head == "meters" and len(args) == 1:
        meters = [state.get_meter(meter_id) for meter_id in state.meters_of(args[0])]
        answer = {"owner": args[0], "meters": [_meter(m) for m in meters if m is not None]}
    elif head == "meter" and len(args) == 1:
        answer = _meter(_found(state.get_meter(args[0]), f"meter {args[0]}"))
    elif head == "operators" and not args:
        answer = {"operators": [_operator(op) for op in state.iter_operators()]}
    elif head == "params" and not args:
        answer = plain(state.get_params())
    elif head == "supply" and not args:
        answer = {"total": state.get_supply()}
    elif head == "proposals" and not args:
        answer = {"proposals": [_proposal(p) for p in state.iter_proposals()]}
    elif head == "proposal" and len(args) == 1:
        answer = _proposal(_found(state.get_proposal(u64_arg(args[0], "proposal id")), f"proposal {args[0]}"))
    elif head == "chain" and not args:
        answer = plain(get_chain(kv))
    else:
        answer = market_query(state, head, args)
        if answer is None:
            answer = settlement_query(state, head, args)
        if answer is None:
            raise errors.BadQuery(f"unknown query path {path!r}")
    return json.dumps(answer, sort_keys=True, separators=(",", ":")).encode()


def settlement_query(state: State, head: str, args: list[str]) -> Any | None:
    if head == "settlement" and len(args) == 1:
        slot = u64_arg(args[0], "slot")
        total = settlement.get_slot_settlement(state, slot)
        if total is None:
            raise errors.NotFound(f"slot {slot} has no settlement yet")
        return {**plain(total), "reports": [plain(r) for r in settlement.slot_reports(state, slot)]}
    if head == "settlement" and len(args) == 2:
        report = settlement.get_report(state, u64_arg(args[0], "slot"), args[1])
        if report is None:
            raise errors.NotFound(f"no settlement of {args[1]} in slot {args[0]}")
        return plain(report)
    if head == "settlements" and len(args) == 1:
        return {"account": args[0], "reports": [plain(r) for r in settlement.account_reports(state, args[0], 500)]}
    if head == "statement" and len(args) == 3:
        start, end = u64_arg(args[1], "from"), u64_arg(args[2], "to")
        lines = state.journal_between(args[0], start, end, 5000)
        return {"account": args[0], "from": start, "to": end, "lines": [plain(line) for line in lines],
                "truncated": len(lines) == 5000}
    if head == "reading" and len(args) == 1:
        raw = state.kv.get(b"rd/last/" + args[0].encode())
        if raw is None:
            raise errors.NotFound(f"meter {args[0]} has no accepted reading")
        return {"meter": args[0], **plain(settlement.LastReading.decode(raw))}
    return None


T = TypeVar("T")


def _found(value: T | None, what: str) -> T:
    if value is None:
        raise errors.NotFound(f"{what} not found")
    return value


def _account(account: Account) -> dict[str, Any]:
    out: dict[str, Any] = plain(account)
    out["free"] = account.free
    return out


def _operator(operator: Operator) -> dict[str, Any]:
    out: dict[str, Any] = plain(operator)
    # Base64, as CometBFT writes validator keys (priv_validator_key.json, /validators).
    out["consensus_pubkey"] = base64.b64encode(operator.consensus_pubkey).decode()
    return out


def _meter(meter: Meter) -> dict[str, Any]:
    out: dict[str, Any] = plain(meter)
    return out


def _proposal(proposal: Proposal) -> dict[str, Any]:
    out: dict[str, Any] = plain(proposal)
    return out
