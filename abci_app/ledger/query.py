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

import json
from collections.abc import Callable
from typing import Any

from abci_app.ledger import errors
from abci_app.ledger.execute import get_chain
from abci_app.ledger.modules.auth import query as auth_query
from abci_app.ledger.modules.bank import query as bank_query
from abci_app.ledger.modules.gov import query as gov_query
from abci_app.ledger.modules.market import query as market_query
from abci_app.ledger.modules.registry import query as registry_query
from abci_app.ledger.modules.settlement import query as settlement_query
from abci_app.ledger.params import get_params
from abci_app.ledger.state import State
from abci_app.ledger.store import Overlay
from abci_app.ledger.wire import plain

ModuleQuery = Callable[[State, str, list[str]], Any]
MODULE_QUERIES: tuple[ModuleQuery, ...] = (
    auth_query.query, bank_query.query, registry_query.query, gov_query.query, market_query.query,
    settlement_query.query,
)


def run_query(kv: Overlay, path: str) -> bytes:
    """Answer one query path; raises ``LedgerError`` (BadQuery, NotFound)."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise errors.BadQuery("empty query path")
    state = State(kv)
    head, args = parts[0], parts[1:]
    answer: Any = None
    if head == "params" and not args:
        answer = plain(get_params(state))
    elif head == "chain" and not args:
        answer = plain(get_chain(kv))
    else:
        for module_query in MODULE_QUERIES:
            answer = module_query(state, head, args)
            if answer is not None:
                break
    if answer is None:
        raise errors.BadQuery(f"unknown query path {path!r}")
    return json.dumps(answer, sort_keys=True, separators=(",", ":")).encode()
