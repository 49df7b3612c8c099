"""register_meter: a DSO registers a smart meter to one of its own active participants."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.registry.msgs import MAX_CAPACITY_W, Deactivate, RegisterMeter
from tests.harness import GENESIS_TIME, Chain, default_app_state, events_of, rejected, seeded_key

METER_KEY = seeded_key("meter-1").pubkey


def meter(owner: str, meter_id: str = "m-1", pubkey: bytes = METER_KEY, **overrides: int) -> RegisterMeter:
    fields = {"import_capacity_w": 11_000, "export_capacity_w": 8_000, "import_register_wh": 1_234,
              "export_register_wh": 56}
    fields.update(overrides)
    return RegisterMeter(meter_id=meter_id, pubkey=pubkey, owner=owner, **fields)


def test_basic(chain: Chain) -> None:
    result = chain.deliver("dso", meter(chain.id("alice")))
    assert result.code == 0, result.log
    record = {
        "id": "m-1", "pubkey": METER_KEY.hex(), "owner": chain.id("alice"), "dso": chain.id("dso"),
        "import_capacity_w": 11_000, "export_capacity_w": 8_000, "import_register_wh": 1_234,
        "export_register_wh": 56, "active": True, "registered_at": GENESIS_TIME + 10,
    }
    assert chain.query("/meter/m-1") == record
    assert chain.query(f"/meters/{chain.id('alice')}") == {"owner": chain.id("alice"), "meters": [record]}
    assert chain.query(f"/meters/{chain.id('bob')}")["meters"] == []
    assert events_of(result, "meter.registered") == [
        {"meter": "m-1", "owner": chain.id("alice"), "dso": chain.id("dso")}
    ]


def test_basic_export_only_meter_up_to_the_limit(chain: Chain) -> None:
    msg = meter(chain.id("alice"), import_capacity_w=0, export_capacity_w=MAX_CAPACITY_W)
    assert chain.deliver("dso", msg).code == 0
    assert chain.query("/meter/m-1")["export_capacity_w"] == MAX_CAPACITY_W


@pytest.mark.parametrize("signer", ["lpd", "alice"])
def test_invalid_signer_not_dso(chain: Chain, signer: str) -> None:
    rejected(chain, signer, meter(chain.id("alice")), errors.NotAuthorised, spends_nonce=True)


def test_invalid_unknown_owner(chain: Chain) -> None:
    rejected(chain, "dso", meter(chain.id("dave")), errors.UnknownAccount, spends_nonce=True)


@pytest.mark.parametrize("owner", ["carol", "lpd"])
def test_invalid_owner_not_registered_by_this_dso(chain: Chain, owner: str) -> None:
    rejected(chain, "dso", meter(chain.id(owner)), errors.NotAuthorised, spends_nonce=True)


def test_invalid_inactive_owner(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("bob"))).code == 0
    rejected(chain, "dso", meter(chain.id("bob")), errors.InactiveAccount, spends_nonce=True)


def test_invalid_duplicate_meter_id(chain: Chain) -> None:
    assert chain.deliver("dso", meter(chain.id("alice"))).code == 0
    msg = meter(chain.id("bob"), pubkey=seeded_key("meter-2").pubkey)
    rejected(chain, "dso", msg, errors.MeterExists, spends_nonce=True)


def test_invalid_duplicate_meter_key(chain: Chain) -> None:
    assert chain.deliver("dso", meter(chain.id("alice"))).code == 0
    rejected(chain, "dso", meter(chain.id("bob"), meter_id="m-2"), errors.MeterExists, spends_nonce=True)


def test_invalid_too_many_meters() -> None:
    names = ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol")
    state = default_app_state({name: seeded_key(name) for name in names})
    state["params"]["max_meters_per_participant"] = 2
    chain = Chain(app_state=state)
    chain.block()
    for n in (1, 2):
        msg = meter(chain.id("alice"), meter_id=f"m-{n}", pubkey=seeded_key(f"meter-{n}").pubkey)
        assert chain.deliver("dso", msg).code == 0
    msg = meter(chain.id("alice"), meter_id="m-3", pubkey=seeded_key("meter-3").pubkey)
    rejected(chain, "dso", msg, errors.ValueOutOfRange, spends_nonce=True)
    # The cap is per participant.
    assert chain.deliver("dso", meter(chain.id("bob"), meter_id="m-3", pubkey=seeded_key("meter-3").pubkey)).code == 0


@pytest.mark.parametrize("meter_id", ["", "m/1", ".m", "m" * 65])
def test_invalid_meter_id(chain: Chain, meter_id: str) -> None:
    rejected(chain, "dso", meter(chain.id("alice"), meter_id=meter_id), errors.MalformedBody, spends_nonce=False)


def test_invalid_pubkey_length(chain: Chain) -> None:
    msg = meter(chain.id("alice"), pubkey=METER_KEY + b"\x00")
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_owner_not_an_account_id(chain: Chain) -> None:
    rejected(chain, "dso", meter("alice"), errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize(
    "overrides",
    [
        {"import_capacity_w": -1},
        {"export_capacity_w": -1},
        {"import_capacity_w": MAX_CAPACITY_W + 1},
        {"export_capacity_w": MAX_CAPACITY_W + 1},
        {"import_capacity_w": 0, "export_capacity_w": 0},
        {"import_register_wh": -1},
        {"export_register_wh": -1},
    ],
)
def test_invalid_value_out_of_range(chain: Chain, overrides: dict[str, int]) -> None:
    msg = meter(chain.id("alice"), **overrides)
    rejected(chain, "dso", msg, errors.ValueOutOfRange, spends_nonce=False)
