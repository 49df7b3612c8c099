"""Genesis app_state: what a valid one writes, and every reason to refuse one."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from abci_app.app import LedgerApplication
from abci_app.ledger import crypto
from abci_app.ledger.genesis import GenesisError, load_genesis
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.bank import keeper as bank
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.params import Params, get_params
from abci_app.ledger.state import State
from abci_app.ledger.store import MemoryBackend, Overlay
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import ZONE_A, ZONE_B, Chain, default_app_state, seeded_key

NAMES = ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol", "dave")
KEYS = {name: seeded_key(name) for name in NAMES}


def doc() -> dict[str, Any]:
    """A fresh copy of the harness genesis (2 DSOs, 2 LPDs, 3 participants), plus one meter."""
    app_state = copy.deepcopy(default_app_state(KEYS))
    app_state["meters"] = [
        {"id": "m-1", "pubkey": seeded_key("meter-1").pubkey.hex(), "owner_pubkey": KEYS["alice"].pubkey.hex(),
         "import_capacity_w": 11_000, "export_capacity_w": 8_000, "import_register_wh": 5, "export_register_wh": 0},
    ]
    return app_state


def load(app_state: Any) -> State:
    state = State(Overlay(MemoryBackend()))
    load_genesis(state, json.dumps(app_state).encode())
    return state


def refused(app_state: Any) -> None:
    with pytest.raises(GenesisError):
        load(app_state)


def test_basic() -> None:
    state = load(doc())
    assert get_params(state) == Params(currency="EUR", currency_exponent=6)
    assert bank.get_supply(state) == 30_000_000
    assert {op.name: (op.role, op.zones, op.power) for op in gov.iter_operators(state)} == {
        "dso-a": ("dso", (ZONE_A,), 10), "dso-b": ("dso", (ZONE_B,), 10),
        "lpd-a": ("lpd", (), 10), "lpd-b": ("lpd", (), 10),
    }
    alice = auth.get_account(state, KEYS["alice"].account)
    assert alice is not None
    assert (alice.role, alice.zone, alice.dso, alice.balance, alice.nonce, alice.active) == (
        "prosumer", ZONE_A, KEYS["dso"].account, 10_000_000, 0, True,
    )
    lpd = auth.get_account(state, KEYS["lpd"].account)
    assert lpd is not None and (lpd.role, lpd.zone, lpd.dso) == ("lpd", "", "")
    assert sorted(auth.participants_in_zone(state, ZONE_A)) == sorted([KEYS["alice"].account, KEYS["bob"].account])
    meter = registry.get_meter(state, "m-1")
    assert meter is not None
    assert (meter.owner, meter.dso, meter.import_register_wh) == (KEYS["alice"].account, KEYS["dso"].account, 5)
    assert registry.meters_of(state, KEYS["alice"].account) == ["m-1"]


def test_basic_empty_app_state() -> None:
    state = load({})
    assert get_params(state) == Params()
    assert bank.get_supply(state) == 0
    assert list(auth.iter_accounts(state)) == []
    state = State(Overlay(MemoryBackend()))
    load_genesis(state, b"")
    assert get_params(state) == Params()


def test_basic_param_overrides_and_balances() -> None:
    app_state = doc()
    app_state["params"] = {"currency": "CHF", "currency_exponent": 2, "voting_period_s": 60, "max_tx_bytes": 256}
    app_state["operators"][2]["balance"] = 7
    state = load(app_state)
    assert get_params(state) == Params(currency="CHF", currency_exponent=2, voting_period_s=60, max_tx_bytes=256)
    assert bank.get_supply(state) == 30_000_007


def test_basic_through_init_chain() -> None:
    chain = Chain(app_state=doc())
    chain.block()
    assert chain.query("/supply") == {"total": 30_000_000}
    assert chain.query("/meter/m-1")["owner"] == chain.id("alice")
    assert chain.query("/params")["voting_period_s"] == 86_400


def test_basic_same_genesis_same_hash() -> None:
    assert Chain(app_state=doc()).genesis_hash == Chain(app_state=doc()).genesis_hash
    other = doc()
    other["participants"][0]["balance"] += 1
    assert Chain(app_state=other).genesis_hash != Chain(app_state=doc()).genesis_hash


def test_invalid_not_json() -> None:
    state = State(Overlay(MemoryBackend()))
    with pytest.raises(GenesisError):
        load_genesis(state, b"{not json")


def test_invalid_not_an_object() -> None:
    refused([])


def test_invalid_unknown_key() -> None:
    app_state = doc()
    app_state["validators"] = []
    refused(app_state)


def test_invalid_unknown_param() -> None:
    app_state = doc()
    app_state["params"]["block_reward"] = 1
    refused(app_state)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_tx_bytes", 255),
        ("max_tx_bytes", (1 << 20) + 1),
        ("voting_period_s", 59),
        ("max_meters_per_participant", 0),
        ("max_meters_per_participant", "16"),
        ("max_meters_per_participant", 16.0),
        ("max_meters_per_participant", True),
    ],
)
def test_invalid_param_value(name: str, value: Any) -> None:
    app_state = doc()
    app_state["params"][name] = value
    refused(app_state)


@pytest.mark.parametrize(("name", "value"), [("currency", 978), ("currency_exponent", "6"),
                                             ("currency_exponent", True), ("currency_exponent", 6.0)])
def test_invalid_immutable_param_type(name: str, value: Any) -> None:
    app_state = doc()
    app_state["params"][name] = value
    refused(app_state)


def test_invalid_dso_without_zones() -> None:
    app_state = doc()
    app_state["operators"][0]["zones"] = []
    refused(app_state)


def test_invalid_lpd_with_zones() -> None:
    app_state = doc()
    app_state["operators"][2]["zones"] = [ZONE_A]
    refused(app_state)


def test_invalid_operator_role() -> None:
    app_state = doc()
    app_state["operators"][0]["role"] = "prosumer"
    refused(app_state)


def test_invalid_participant_zone_not_served_by_its_dso() -> None:
    app_state = doc()
    app_state["participants"][0]["zone"] = ZONE_B  # alice's DSO is dso-a, which serves only zone-a
    refused(app_state)


@pytest.mark.parametrize("dso", ["dso-x", "lpd-a"])
def test_invalid_participant_dso_not_a_genesis_dso(dso: str) -> None:
    app_state = doc()
    app_state["participants"][0]["dso"] = dso
    refused(app_state)


def test_invalid_participants_without_dso() -> None:
    app_state = doc()
    app_state["operators"] = [op for op in app_state["operators"] if op["role"] == "lpd"]
    app_state["meters"] = []
    refused(app_state)


def test_invalid_participant_role() -> None:
    app_state = doc()
    app_state["participants"][0]["role"] = "dso"
    refused(app_state)


def test_invalid_duplicate_operator_key() -> None:
    app_state = doc()
    app_state["operators"][1]["pubkey"] = app_state["operators"][0]["pubkey"]
    refused(app_state)


def test_invalid_duplicate_operator_name() -> None:
    app_state = doc()
    app_state["operators"][3]["name"] = app_state["operators"][2]["name"]
    refused(app_state)


def test_invalid_duplicate_participant_key() -> None:
    app_state = doc()
    app_state["participants"][1]["pubkey"] = app_state["participants"][0]["pubkey"]
    refused(app_state)


def test_invalid_participant_key_of_an_operator() -> None:
    app_state = doc()
    app_state["participants"][0]["pubkey"] = app_state["operators"][0]["pubkey"]
    refused(app_state)


def test_invalid_duplicate_meter_id() -> None:
    app_state = doc()
    app_state["meters"].append({**app_state["meters"][0], "pubkey": seeded_key("meter-2").pubkey.hex()})
    refused(app_state)


def test_invalid_duplicate_meter_key() -> None:
    app_state = doc()
    app_state["meters"].append({**app_state["meters"][0], "id": "m-2"})
    refused(app_state)


def test_invalid_meter_owner_unknown() -> None:
    app_state = doc()
    app_state["meters"][0]["owner_pubkey"] = KEYS["dave"].pubkey.hex()
    refused(app_state)


@pytest.mark.parametrize("pubkey", ["abcd", "zz" * 32, 42])
def test_invalid_pubkey(pubkey: Any) -> None:
    app_state = doc()
    app_state["participants"][0]["pubkey"] = pubkey
    refused(app_state)


@pytest.mark.parametrize(("section", "field", "value"), [
    ("operators", "name", "dso a"),
    ("operators", "power", 0),
    ("operators", "balance", -1),
    ("participants", "balance", -1),
    ("participants", "balance", 1 << 63),
    ("meters", "import_capacity_w", -1),
    ("meters", "id", "m/1"),
])
def test_invalid_field_value(section: str, field: str, value: Any) -> None:
    app_state = doc()
    app_state[section][0][field] = value
    refused(app_state)


def test_invalid_missing_field() -> None:
    app_state = doc()
    del app_state["participants"][0]["zone"]
    refused(app_state)


@pytest.mark.parametrize(("section", "index", "field"), [
    ("participants", 2, "balance"),  # carol: no meter reads her account back
    ("operators", 3, "power"),  # the last operator: nothing reads it back during genesis
    ("operators", 0, "balance"),
    ("meters", 0, "import_register_wh"),
])
def test_invalid_bool_for_integer(section: str, index: int, field: str) -> None:
    """JSON true is not an integer: stored as msgpack bool it makes the record undecodable (wire.py)."""
    app_state = doc()
    app_state[section][index][field] = True
    refused(app_state)


def test_account_ids_are_derived_from_keys() -> None:
    state = load(doc())
    ids = {account.id for account in auth.iter_accounts(state)}
    assert ids == {crypto.account_id(KEYS[name].pubkey) for name in NAMES if name != "dave"}


def test_invalid_two_dsos_serve_one_zone() -> None:
    app_state = doc()
    app_state["operators"][1]["zones"] = [ZONE_B, ZONE_A]
    refused(app_state)


def test_invalid_meter_owned_by_an_operator() -> None:
    app_state = doc()
    app_state["meters"][0]["owner_pubkey"] = KEYS["dso"].pubkey.hex()
    refused(app_state)


def test_invalid_zone_listed_twice() -> None:
    app_state = doc()
    app_state["operators"][0]["zones"] = [ZONE_A, ZONE_A]
    refused(app_state)


VALIDATOR_KEYS = [seeded_key(f"validator-{index}").pubkey for index in range(3)]


def test_basic_consensus_keys_become_the_validator_set() -> None:
    app_state = doc()
    for index, operator in enumerate(app_state["operators"][:3]):
        operator["consensus_pubkey"] = base64.b64encode(VALIDATOR_KEYS[index]).decode()
    chain = Chain(app_state=app_state)
    chain.block()
    req = abci.RequestInitChain(chain_id="x", app_state_bytes=json.dumps(app_state).encode(), initial_height=1)
    validators = LedgerApplication(MemoryBackend()).init_chain(req).validators
    assert sorted((v.pub_key.ed25519, v.power) for v in validators) == sorted((key, 10) for key in VALIDATOR_KEYS)
    operators = {op["name"]: op["consensus_pubkey"] for op in chain.query("/operators")["operators"]}
    assert operators["dso-a"] == base64.b64encode(VALIDATOR_KEYS[0]).decode() and operators["lpd-b"] == ""


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode(), 7])
def test_invalid_consensus_pubkey(value: Any) -> None:
    app_state = doc()
    app_state["operators"][0]["consensus_pubkey"] = value
    refused(app_state)


def test_invalid_duplicate_consensus_pubkey() -> None:
    app_state = doc()
    for operator in app_state["operators"][:2]:
        operator["consensus_pubkey"] = base64.b64encode(b"\x09" * 32).decode()
    refused(app_state)


def test_invalid_participants_without_an_lpd() -> None:
    """Settlement needs a balancing party: a genesis with participants but no LPD cannot run its rules."""
    app_state = doc()
    app_state["operators"] = [op for op in app_state["operators"] if op["role"] != "lpd"]
    with pytest.raises(GenesisError, match="need an LPD operator"):
        load(app_state)


def test_invalid_operator_power_above_the_maximum() -> None:
    app_state = doc()
    app_state["operators"][0]["power"] = 1 << 62
    with pytest.raises(GenesisError, match="power must be at most"):
        load(app_state)
