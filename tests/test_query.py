"""ABCI queries: every path of abci_app/ledger/query.py, its JSON shape and its error codes."""

from __future__ import annotations

import json

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.gov import ProposeParams
from abci_app.ledger.modules.gov.records import ParamChange
from abci_app.ledger.modules.registry import RegisterMeter
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import CHAIN_ID, GENESIS_TIME, ZONE_A, ZONE_B, Chain, seeded_key

METER_KEY = seeded_key("meter-1").pubkey


@pytest.fixture
def chain() -> Chain:
    """Genesis, then block 1: a meter for alice; block 2: proposal 1."""
    chain = Chain()
    meter = RegisterMeter(meter_id="m-1", pubkey=METER_KEY, owner=chain.id("alice"), import_capacity_w=11_000,
                          export_capacity_w=8_000, import_register_wh=100, export_register_wh=20)
    assert chain.deliver("dso", meter).code == 0
    proposal = ProposeParams(changes=(ParamChange("max_tx_bytes", 1_024),), description="smaller")
    assert chain.deliver("lpd", proposal).code == 0
    return chain


def raw_query(chain: Chain, path: str, height: int = 0) -> abci.ResponseQuery:
    response: abci.ResponseQuery = chain.app.query(abci.RequestQuery(path=path, height=height))
    return response


def test_basic_answer_envelope(chain: Chain) -> None:
    response = raw_query(chain, "/supply")
    assert (response.code, response.height, response.key) == (0, 2, b"/supply")
    assert response.value == b'{"total":30000000}'  # compact, sorted JSON


def test_account(chain: Chain) -> None:
    alice = seeded_key("alice")
    assert chain.query(f"/account/{alice.account}") == {
        "id": alice.account, "pubkey": alice.pubkey.hex(), "role": "prosumer", "zone": ZONE_A,
        "dso": chain.id("dso"), "active": True, "balance": 10_000_000, "locked": 0, "free": 10_000_000,
        "debt": 0, "nonce": 0, "registered_at": 0,
    }
    assert chain.query(f"account/{alice.account}/") == chain.query(f"/account/{alice.account}")


def test_participants(chain: Chain) -> None:
    assert chain.query(f"/participants/{ZONE_A}") == {
        "zone": ZONE_A, "participants": sorted([chain.id("alice"), chain.id("bob")]),
    }
    assert chain.query(f"/participants/{ZONE_B}") == {"zone": ZONE_B, "participants": [chain.id("carol")]}
    assert chain.query("/participants/nowhere") == {"zone": "nowhere", "participants": []}


def test_meters_and_meter(chain: Chain) -> None:
    meter = {
        "id": "m-1", "pubkey": METER_KEY.hex(), "owner": chain.id("alice"), "dso": chain.id("dso"),
        "import_capacity_w": 11_000, "export_capacity_w": 8_000, "import_register_wh": 100,
        "export_register_wh": 20, "active": True, "registered_at": GENESIS_TIME + 5,
    }
    assert chain.query("/meter/m-1") == meter
    assert chain.query(f"/meters/{chain.id('alice')}") == {"owner": chain.id("alice"), "meters": [meter]}
    assert chain.query(f"/meters/{chain.id('carol')}") == {"owner": chain.id("carol"), "meters": []}


def test_operators(chain: Chain) -> None:
    operators = chain.query("/operators")["operators"]
    assert [op["account"] for op in operators] == sorted(op["account"] for op in operators)
    assert sorted(operators, key=lambda op: op["name"]) == [
        {"account": chain.id("dso"), "name": "dso-a", "role": "dso", "zones": [ZONE_A], "power": 10,
         "consensus_pubkey": ""},
        {"account": chain.id("dso_b"), "name": "dso-b", "role": "dso", "zones": [ZONE_B], "power": 10,
         "consensus_pubkey": ""},
        {"account": chain.id("lpd"), "name": "lpd-a", "role": "lpd", "zones": [], "power": 10,
         "consensus_pubkey": ""},
        {"account": chain.id("lpd_b"), "name": "lpd-b", "role": "lpd", "zones": [], "power": 10,
         "consensus_pubkey": ""},
    ]


def test_params(chain: Chain) -> None:
    assert chain.query("/params") == {
        "currency": "EUR", "currency_exponent": 6, "max_tx_bytes": 65_536, "voting_period_s": 86_400,
        "max_meters_per_participant": 16, "slot_length_s": 900, "gate_closure_lead_s": 300,
        "max_slot_ahead_s": 172_800, "tick_size": 100, "min_quantity_wh": 100, "max_price_per_kwh": 10_000_000,
        "max_open_orders": 200, "collateral_per_kwh": 20_000, "matching_mode": 0, "min_price_per_kwh": 0,
        "settlement_window_s": 3_600, "balancing_buy_price": 600_000, "balancing_sell_price": 50_000,
        "settlement_batch": 200, "supplier_tariff": 300_000, "feed_in_tariff": 80_000,
    }


def test_supply(chain: Chain) -> None:
    assert chain.query("/supply") == {"total": 30_000_000}


def test_proposals_and_proposal(chain: Chain) -> None:
    proposal = {
        "id": 1, "proposer": chain.id("lpd"), "kind": "params", "changes": [{"name": "max_tx_bytes", "value": 1_024}],
        "description": "smaller", "submitted_at": GENESIS_TIME + 10, "expires_at": GENESIS_TIME + 10 + 86_400,
        "yes_power": 0, "no_power": 0, "status": "open", "validator_change": [],
        "proposer_name": "lpd-a", "summary": "max_tx_bytes=1024",
    }
    assert chain.query("/proposal/1") == proposal
    assert chain.query("/proposals") == {"proposals": [proposal]}


def test_chain(chain: Chain) -> None:
    assert chain.query("/chain") == {"chain_id": CHAIN_ID, "initial_height": 1, "height": 2,
                                     "time": GENESIS_TIME + 10}


@pytest.mark.parametrize(
    "path",
    ["", "/", "/nothing", "/account", "/account/a/b", "/operators/x", "/params/max_tx_bytes", "/supply/x",
     "/proposals/1", "/proposal/x", "/proposal/-1", "/proposal", "/chain/1", "/meter", "/meters", "/participants"],
)
def test_invalid_unknown_path(chain: Chain, path: str) -> None:
    response = raw_query(chain, path)
    assert response.code == errors.BadQuery.code == 100
    assert response.value == b""
    assert response.log


@pytest.mark.parametrize("path", ["/account/" + "00" * 20, "/account/alice", "/meter/m-2", "/proposal/2",
                                  "/proposal/0"])
def test_invalid_not_found(chain: Chain, path: str) -> None:
    response = raw_query(chain, path)
    assert response.code == errors.NotFound.code == 101
    assert response.value == b""


@pytest.mark.parametrize("path", ["/proposal/18446744073709551616", "/proposal/99999999999999999999", "/proposal/²"])
def test_invalid_proposal_id_outside_the_id_range(chain: Chain, path: str) -> None:
    """Every query answers with a code; an id no proposal can have is not found or a bad query, never a crash."""
    response = raw_query(chain, path)
    assert response.code in (errors.BadQuery.code, errors.NotFound.code)


@pytest.mark.parametrize("height", [1, 3, -1])
def test_invalid_historical_height(chain: Chain, height: int) -> None:
    response = raw_query(chain, "/supply", height=height)
    assert response.code == errors.BadQuery.code
    assert response.height == 2
    assert response.value == b""


def test_latest_height_by_number(chain: Chain) -> None:
    assert json.loads(raw_query(chain, "/supply", height=2).value) == {"total": 30_000_000}


def test_invalid_before_first_commit() -> None:
    chain = Chain()
    response = raw_query(chain, "/supply")
    assert (response.code, response.height) == (errors.NotFound.code, 0)


def test_queries_read_committed_state_only(chain: Chain) -> None:
    before = chain.account("alice")
    assert chain.check(chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=5, memo=""))).code == 0
    assert chain.account("alice") == before


def test_invalid_internal_error_is_a_code_not_a_crash(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """A corrupt record makes the query fail with code 1; the ABCI call itself never raises."""
    def broken(*_: object) -> bytes:
        raise ValueError("corrupt record")

    monkeypatch.setattr("abci_app.app.run_query", broken)
    response = raw_query(chain, "/params")
    assert response.code == 1 and "internal error" in response.log
