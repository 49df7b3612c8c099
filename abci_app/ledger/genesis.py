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
                  "import_register_wh": 0, "export_register_wh": 0}]
    }

Initial balances are the initial money supply.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from msgspec.structs import replace

from abci_app.ledger import crypto, errors
from abci_app.ledger.execute import Chain
from abci_app.ledger.modules.gov import check_param_change
from abci_app.ledger.modules.market.book import Market
from abci_app.ledger.modules.market.msgs import FeeEntry, SetGridFees
from abci_app.ledger.modules.market.types import GridFee
from abci_app.ledger.modules.registry import RegisterMeter
from abci_app.ledger.msg import require_amount, require_name
from abci_app.ledger.state import (
    OPERATOR_ROLES,
    PARTICIPANT_ROLES,
    Account,
    Meter,
    Operator,
    ParamChange,
    Params,
    State,
)


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
    unknown = set(doc) - {"params", "operators", "participants", "meters", "grid_fees"}
    if unknown:
        raise GenesisError(f"unknown app_state keys: {sorted(unknown)}")
    params = _params(doc.get("params", {}))
    state.put_params(params)
    supply = 0
    dso_by_name: dict[str, Account] = {}
    for entry in doc.get("operators", []):
        account = _operator(state, entry)
        supply += account.balance
        if account.role == "dso":
            dso_by_name[entry["name"]] = account
    if not dso_by_name and doc.get("participants"):
        raise GenesisError("participants need a DSO operator")
    for entry in doc.get("participants", []):
        supply += _participant(state, entry, dso_by_name).balance
    for entry in doc.get("meters", []):
        _meter(state, entry)
    for entry in doc.get("grid_fees", []):
        _grid_fee(state, entry, dso_by_name)
    state.change_supply(supply)


def _params(overrides: dict[str, Any]) -> Params:
    params = Params()
    names = set(Params.__struct_fields__)
    for name in sorted(overrides):
        value = overrides[name]
        if name not in names:
            raise GenesisError(f"unknown parameter {name!r}")
        if name in Params.IMMUTABLE:
            if type(value) is not type(getattr(params, name)):
                raise GenesisError(f"parameter {name} has the wrong type")
            if name == "slot_length_s" and value not in Params.SLOT_LENGTHS:
                raise GenesisError("slot_length_s must be whole minutes (at least 5) that divide a day")
        else:
            if type(value) is not int:
                raise GenesisError(f"parameter {name} must be an integer")
            check_param_change(ParamChange(name, value))
        params = replace(params, **{name: value})
    return params


def _pubkey(text: Any) -> bytes:
    key = bytes.fromhex(text)
    if len(key) != crypto.PUBKEY_BYTES:
        raise GenesisError(f"public key {text!r} is not 32 bytes of hex")
    return key


def _consensus_pubkey(text: Any) -> bytes:
    """The validator key as CometBFT writes it (base64 ``pub_key.value``); empty: no validator."""
    if text == "":
        return b""
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise GenesisError(f"consensus_pubkey {text!r} is not base64") from exc
    if len(key) != crypto.PUBKEY_BYTES:
        raise GenesisError(f"consensus_pubkey {text!r} is not a 32-byte Ed25519 key")
    return key


def _operator(state: State, entry: dict[str, Any]) -> Account:
    role = entry["role"]
    if role not in OPERATOR_ROLES:
        raise GenesisError(f"operator role must be dso or lpd, got {role!r}")
    require_name("operator name", entry["name"])
    zones = tuple(sorted(entry.get("zones", [])))
    if len(set(zones)) != len(zones):
        raise GenesisError(f"operator {entry['name']} lists a zone twice")
    for zone in zones:
        require_name("zone", zone)
    if (role == "dso") != bool(zones):
        raise GenesisError(f"operator {entry['name']}: a DSO serves at least one zone, an LPD none")
    power = entry.get("power", 1)
    require_amount("power", power)
    balance = entry.get("balance", 0)
    require_amount("balance", balance, minimum=0)
    pubkey = _pubkey(entry["pubkey"])
    account = Account(
        id=crypto.account_id(pubkey), pubkey=pubkey, role=role, zone="", dso="", active=True,
        balance=balance, locked=0, debt=0, nonce=0, registered_at=0,
    )
    if state.get_account(account.id) is not None:
        raise GenesisError(f"operator {entry['name']}: key used twice")
    for other in state.iter_operators():
        if other.name == entry["name"]:
            raise GenesisError(f"operator name {entry['name']} used twice")
        # Each zone has exactly one DSO: it registers the zone's participants and meters.
        shared = sorted(set(other.zones) & set(zones))
        if shared:
            raise GenesisError(f"zones {shared} are served by DSO {other.name} already")
    consensus_pubkey = _consensus_pubkey(entry.get("consensus_pubkey", ""))
    if consensus_pubkey and any(other.consensus_pubkey == consensus_pubkey for other in state.iter_operators()):
        raise GenesisError(f"operator {entry['name']}: consensus key used twice")
    state.add_account(account)
    state.put_operator(Operator(account=account.id, name=entry["name"], role=role, zones=zones, power=power,
                                consensus_pubkey=consensus_pubkey))
    return account


def _participant(state: State, entry: dict[str, Any], dso_by_name: dict[str, Account]) -> Account:
    role = entry["role"]
    if role not in PARTICIPANT_ROLES:
        raise GenesisError(f"participant role must be one of {PARTICIPANT_ROLES}, got {role!r}")
    dso = dso_by_name.get(entry["dso"])
    if dso is None:
        raise GenesisError(f"participant's DSO {entry['dso']!r} is not a genesis DSO")
    operator = state.get_operator(dso.id)
    assert operator is not None
    if entry["zone"] not in operator.zones:
        raise GenesisError(f"zone {entry['zone']!r} is not served by DSO {entry['dso']}")
    balance = entry.get("balance", 0)
    require_amount("balance", balance, minimum=0)
    pubkey = _pubkey(entry["pubkey"])
    account = Account(
        id=crypto.account_id(pubkey), pubkey=pubkey, role=role, zone=entry["zone"], dso=dso.id,
        active=True, balance=balance, locked=0, debt=0, nonce=0, registered_at=0,
    )
    if state.get_account(account.id) is not None:
        raise GenesisError("participant key used twice")
    state.add_account(account)
    return account


def _meter(state: State, entry: dict[str, Any]) -> None:
    require_name("meter id", entry["id"])
    owner = state.require_account(crypto.account_id(_pubkey(entry["owner_pubkey"])))
    if owner.is_operator:
        raise GenesisError(f"meter {entry['id']}: meters belong to participants, not operators")
    pubkey = _pubkey(entry["pubkey"])
    if state.get_meter(entry["id"]) is not None or state.meter_key_taken(pubkey):
        raise GenesisError(f"meter {entry['id']} or its key used twice")
    values = {name: entry.get(name, 0) for name in
              ("import_capacity_w", "export_capacity_w", "import_register_wh", "export_register_wh")}
    # The same stateless rules as a register_meter transaction.
    RegisterMeter(meter_id=entry["id"], pubkey=pubkey, owner=owner.id, **values).validate_basic()
    limit = state.get_params().max_meters_per_participant
    if len(state.meters_of(owner.id)) >= limit:
        raise GenesisError(f"participant {owner.id} has more than {limit} meters")
    # A genesis meter's registers are its values at genesis time: its first reading's flow starts there.
    state.add_meter(Meter(id=entry["id"], pubkey=pubkey, owner=owner.id, dso=owner.dso, active=True,
                          registered_at=_genesis_time(state), **values))


def _grid_fee(state: State, entry: dict[str, Any], dso_by_name: dict[str, Account]) -> None:
    unknown = set(entry) - {"dso", "from", "to", "fee"}
    if unknown:
        raise GenesisError(f"grid fee: unknown keys {sorted(unknown)}")
    dso = dso_by_name.get(entry["dso"])
    if dso is None:
        raise GenesisError(f"grid fee: {entry['dso']!r} is not a genesis DSO")
    fee = SetGridFees(entries=(FeeEntry(from_zone=entry["from"], to_zone=entry["to"], fee_per_kwh=entry["fee"]),))
    fee.validate_basic()
    # The same rules as a set_grid_fees transaction from that DSO.
    operator = state.get_operator(dso.id)
    assert operator is not None
    market = Market(state)
    for zone in (entry["from"], entry["to"]):
        if zone not in state.zone_dsos():
            raise GenesisError(f"grid fee: zone {zone!r} is not served by any DSO")
    if entry["from"] not in operator.zones and entry["to"] not in operator.zones:
        raise GenesisError(f"grid fee: DSO {entry['dso']} serves neither {entry['from']} nor {entry['to']}")
    if any(c.dso == dso.id for c in market.fee_components(entry["from"], entry["to"])):
        raise GenesisError(f"grid fee {entry['from']}->{entry['to']} of {entry['dso']} listed twice")
    if entry["fee"] > state.get_params().max_price_per_kwh:
        raise GenesisError("grid fee above max_price_per_kwh")
    market.set_fee_component(GridFee(from_zone=entry["from"], to_zone=entry["to"], dso=dso.id,
                                     fee_per_kwh=entry["fee"]))


def _genesis_time(state: State) -> int:
    raw = state.kv.get(b"chain")
    return Chain.decode(raw).time if raw is not None else 0
