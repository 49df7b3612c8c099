"""deactivate: a DSO deactivates one of its own participants or meters."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.registry import Deactivate, RegisterMeter
from tests.harness import Chain, events_of, rejected, seeded_key
from tests.market_harness import SLOT, market_chain, order, place


def register_meter(chain: Chain, dso: str, owner: str, meter_id: str) -> None:
    msg = RegisterMeter(meter_id=meter_id, pubkey=seeded_key(meter_id).pubkey, owner=chain.id(owner),
                        import_capacity_w=1_000, export_capacity_w=0, import_register_wh=0, export_register_wh=0)
    assert chain.deliver(dso, msg).code == 0


@pytest.fixture
def chain(chain: Chain) -> Chain:
    register_meter(chain, "dso", "alice", "m-a")
    register_meter(chain, "dso_b", "carol", "m-c")
    return chain


def test_basic(chain: Chain) -> None:
    result = chain.deliver("dso", Deactivate(kind="participant", target=chain.id("alice")))
    assert result.code == 0, result.log
    alice = chain.account("alice")
    assert alice["active"] is False
    assert (alice["balance"], alice["nonce"]) == (10_000_000, 0)
    assert chain.account("bob")["active"] is True
    assert events_of(result, "account.deactivated") == [{"target": chain.id("alice"), "dso": chain.id("dso")}]
    # A deactivated account can no longer send (only withdraw) nor receive.
    sent = chain.deliver("alice", Transfer(recipient=chain.id("bob"), amount=1, memo=""))
    received = chain.deliver("bob", Transfer(recipient=chain.id("alice"), amount=1, memo=""))
    assert (sent.code, received.code) == (errors.InactiveSigner.code, errors.InactiveAccount.code)


def test_basic_meter(chain: Chain) -> None:
    result = chain.deliver("dso", Deactivate(kind="meter", target="m-a"))
    assert result.code == 0, result.log
    assert chain.query("/meter/m-a")["active"] is False
    assert chain.query(f"/meters/{chain.id('alice')}")["meters"][0]["active"] is False
    assert chain.account("alice")["active"] is True
    assert events_of(result, "meter.deactivated") == [{"target": "m-a", "dso": chain.id("dso")}]


@pytest.mark.parametrize("signer", ["lpd", "bob"])
def test_invalid_signer_not_dso(chain: Chain, signer: str) -> None:
    msg = Deactivate(kind="participant", target=chain.id("alice"))
    rejected(chain, signer, msg, errors.NotAuthorised, spends_nonce=True)


def test_invalid_unknown_participant(chain: Chain) -> None:
    msg = Deactivate(kind="participant", target=chain.id("dave"))
    rejected(chain, "dso", msg, errors.UnknownAccount, spends_nonce=True)


@pytest.mark.parametrize("target", ["carol", "lpd", "dso_b"])
def test_invalid_participant_not_registered_by_this_dso(chain: Chain, target: str) -> None:
    msg = Deactivate(kind="participant", target=chain.id(target))
    rejected(chain, "dso", msg, errors.NotAuthorised, spends_nonce=True)


def test_invalid_unknown_meter(chain: Chain) -> None:
    rejected(chain, "dso", Deactivate(kind="meter", target="m-x"), errors.UnknownMeter, spends_nonce=True)


def test_invalid_meter_not_registered_by_this_dso(chain: Chain) -> None:
    rejected(chain, "dso", Deactivate(kind="meter", target="m-c"), errors.NotAuthorised, spends_nonce=True)
    assert chain.query("/meter/m-c")["active"] is True


def test_invalid_kind(chain: Chain) -> None:
    msg = Deactivate(kind="account", target=chain.id("alice"))
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_participant_target_not_an_account_id(chain: Chain) -> None:
    rejected(chain, "dso", Deactivate(kind="participant", target="m-a"), errors.MalformedBody, spends_nonce=False)


def test_invalid_meter_target_name(chain: Chain) -> None:
    rejected(chain, "dso", Deactivate(kind="meter", target="m/a"), errors.MalformedBody, spends_nonce=False)


def test_invalid_participant_already_deactivated(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("bob"))).code == 0
    rejected(chain, "dso", Deactivate(kind="participant", target=chain.id("bob")), errors.InactiveAccount,
             spends_nonce=True)


def test_invalid_meter_already_deactivated(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="meter", target="m-a")).code == 0
    rejected(chain, "dso", Deactivate(kind="meter", target="m-a"), errors.UnknownMeter, spends_nonce=True)


def test_deactivation_cancels_the_participants_open_orders() -> None:
    """A deactivated participant's resting orders must not keep trading: they are cancelled, their locks freed."""
    chain = market_chain()
    bid = place(chain, "bob", order("bid", 1_000, 260_000))
    assert chain.account("bob")["locked"] > 0
    result = chain.deliver("dso", Deactivate(kind="participant", target=chain.id("bob")))
    assert result.code == 0, result.log
    cancelled = events_of(result, "order.cancelled")
    assert [(e["id"], e["reason"]) for e in cancelled] == [(str(bid), "deactivated")]
    assert chain.account("bob")["locked"] == 0
    # An ask that would have crossed the bid now rests: nobody trades with the deactivated account.
    place(chain, "alice", order("ask", 1_000, 200_000))
    assert chain.query(f"/trades/slot/{SLOT}")["trades"] == []


def test_deactivating_a_participant_deactivates_its_meters(chain: Chain) -> None:
    """Its supply ends: a meter nobody reads any more would otherwise be billed its substitute every slot."""
    register_meter(chain, "dso", "alice", "m-a2")
    assert chain.deliver("dso", Deactivate(kind="meter", target="m-a2")).code == 0
    result = chain.deliver("dso", Deactivate(kind="participant", target=chain.id("alice")))
    assert result.code == 0, result.log
    assert [e.type for e in result.events] == ["account.deactivated", "meter.deactivated"]
    assert events_of(result, "meter.deactivated") == [{"target": "m-a", "dso": chain.id("dso")}]
    assert [m["active"] for m in chain.query(f"/meters/{chain.id('alice')}")["meters"]] == [False, False]
    assert chain.query("/meter/m-c")["active"] is True
