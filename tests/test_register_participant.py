"""register_participant: a DSO admits a consumer, prosumer or producer in one of its zones."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.registry import RegisterParticipant
from tests.harness import GENESIS_TIME, ZONE_A, ZONE_B, Chain, events_of, rejected


def test_basic(chain: Chain) -> None:
    dave = chain.keys["dave"]
    result = chain.deliver("dso", RegisterParticipant(pubkey=dave.pubkey, role="consumer", zone=ZONE_A))
    assert result.code == 0, result.log
    assert chain.account("dave") == {
        "id": dave.account, "pubkey": dave.pubkey.hex(), "role": "consumer", "zone": ZONE_A,
        "dso": chain.id("dso"), "active": True, "balance": 0, "locked": 0, "free": 0, "debt": 0, "nonce": 0,
        "registered_at": GENESIS_TIME + 10,
    }
    assert dave.account in chain.query(f"/participants/{ZONE_A}")["participants"]
    assert dave.account not in chain.query(f"/participants/{ZONE_B}")["participants"]
    assert chain.query("/supply") == {"total": 30_000_000}
    assert events_of(result, "account.registered") == [
        {"account": dave.account, "role": "consumer", "zone": ZONE_A, "dso": chain.id("dso")}
    ]


def test_basic_new_participant_can_transact(chain: Chain) -> None:
    dave = chain.keys["dave"]
    assert chain.deliver("dso_b", RegisterParticipant(pubkey=dave.pubkey, role="producer", zone=ZONE_B)).code == 0
    assert chain.deliver("alice", Transfer(recipient=dave.account, amount=10, memo="")).code == 0
    assert chain.deliver("dave", Transfer(recipient=chain.id("carol"), amount=4, memo="")).code == 0
    assert chain.account("dave")["balance"] == 6
    assert chain.account("dave")["nonce"] == 1
    assert chain.account("dave")["dso"] == chain.id("dso_b")


@pytest.mark.parametrize("signer", ["lpd", "alice"])
def test_invalid_signer_not_dso(chain: Chain, signer: str) -> None:
    msg = RegisterParticipant(pubkey=chain.keys["dave"].pubkey, role="consumer", zone=ZONE_A)
    rejected(chain, signer, msg, errors.NotAuthorised, spends_nonce=True)


def test_invalid_zone_not_served_by_dso(chain: Chain) -> None:
    msg = RegisterParticipant(pubkey=chain.keys["dave"].pubkey, role="consumer", zone=ZONE_B)
    rejected(chain, "dso", msg, errors.WrongZone, spends_nonce=True)


@pytest.mark.parametrize("existing", ["bob", "lpd"])
def test_invalid_account_exists(chain: Chain, existing: str) -> None:
    msg = RegisterParticipant(pubkey=chain.keys[existing].pubkey, role="consumer", zone=ZONE_A)
    rejected(chain, "dso", msg, errors.AccountExists, spends_nonce=True)


def test_invalid_pubkey_length(chain: Chain) -> None:
    msg = RegisterParticipant(pubkey=chain.keys["dave"].pubkey[:31], role="consumer", zone=ZONE_A)
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize("role", ["dso", "lpd", "Consumer", ""])
def test_invalid_role(chain: Chain, role: str) -> None:
    msg = RegisterParticipant(pubkey=chain.keys["dave"].pubkey, role=role, zone=ZONE_A)
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize("zone", ["", "zone/a", "-zone", "z" * 65])
def test_invalid_zone_name(chain: Chain, zone: str) -> None:
    msg = RegisterParticipant(pubkey=chain.keys["dave"].pubkey, role="consumer", zone=zone)
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)
