"""Genesis: the operators, parameters and initial accounts of a chain.

``app_state`` in CometBFT's genesis.json (JSON, documented in docs/genesis.md)::

    {
      "params": {"currency": "EUR", "voting_period_s": 86400, ...},   # optional overrides
      "operators": [{"name": "dso-north", "role": "dso", "pubkey": "<hex>",
                     "zones": ["north-1"], "power": 10, "balance": 0}],
      "participants": [{"pubkey": "<hex>", "role": "prosumer", "zone": "north-1",
                        "dso": "dso-north", "balance": 5000000}],
      "meters": [{"id": "m-1", "pubkey": "<hex>", "owner_pubkey": "<hex>",
                  "import_capacity_w": 11000, "export_capacity_w": 8000,
                  "import_register_wh": 0, "export_register_wh": 0}],
      "grid_fees": [{"dso": "dso-north", "from": "north-1", "to": "north-1", "fee": 10000}]
    }

Each module's genesis step applies the rules its messages' handlers apply
(a genesis participant passes the rules of ``register_participant``, a grid
fee those of ``set_grid_fees``, …). Initial balances are the initial money
supply.
"""

from __future__ import annotations

import json
from typing import Any

from abci_app.ledger import errors
from abci_app.ledger.execute import get_chain
from abci_app.ledger.modules.bank.genesis import init_supply
from abci_app.ledger.modules.gov.genesis import init_operators
from abci_app.ledger.modules.market.genesis import init_grid_fees
from abci_app.ledger.modules.registry.genesis import init_meters, init_participants
from abci_app.ledger.params import check_params_consistent, params_from_genesis, put_params
from abci_app.ledger.state import State

SECTIONS = ("params", "operators", "participants", "meters", "grid_fees")


class GenesisError(ValueError):
    """The genesis app_state is invalid; the chain cannot start."""


def load_genesis(state: State, app_state_bytes: bytes) -> None:
    """Write the genesis state; raise ``GenesisError`` with a clear reason."""
    try:
        doc = json.loads(app_state_bytes or b"{}")
        _apply(state, doc)
    except GenesisError:
        raise
    except errors.LedgerError as exc:
        raise GenesisError(exc.log) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise GenesisError(f"invalid app_state: {type(exc).__name__}: {exc}") from exc


def _apply(state: State, doc: dict[str, Any]) -> None:
    if not isinstance(doc, dict):
        raise GenesisError("app_state must be a JSON object")
    unknown = set(doc) - set(SECTIONS)
    if unknown:
        raise GenesisError(f"unknown app_state keys: {sorted(unknown)}")
    params = params_from_genesis(doc.get("params", {}))
    check_params_consistent(params)
    put_params(state, params)
    operators = init_operators(state, doc.get("operators", []))
    if doc.get("participants") and not any(op.role == "dso" for op in operators.values()):
        raise GenesisError("participants need a DSO operator")
    # Settlement needs a balancing party: a chain with participants has an LPD from the start.
    if doc.get("participants") and not any(op.role == "lpd" for op in operators.values()):
        raise GenesisError("participants need an LPD operator (the balancing party of settlement)")
    init_participants(state, doc.get("participants", []), operators)
    init_meters(state, doc.get("meters", []), _genesis_time(state))
    init_grid_fees(state, doc.get("grid_fees", []), operators)
    init_supply(state)


def _genesis_time(state: State) -> int:
    try:
        return get_chain(state.kv).time
    except errors.InvariantViolated:
        return 0
