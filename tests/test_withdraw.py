"""withdraw: an account has an LPD pay out part of its free balance off-chain."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Withdraw
from abci_app.ledger.modules.registry import Deactivate
from tests.harness import Chain, events_of, rejected


def test_basic(chain: Chain) -> None:
    result = chain.deliver("alice", Withdraw(amount=400_000, agent=chain.id("lpd_b"), reference="payout-7"))
    assert result.code == 0, result.log
    assert chain.account("alice")["balance"] == 9_600_000
    assert chain.account("alice")["nonce"] == 1
    assert chain.account("lpd_b")["balance"] == 0
    assert chain.query("/supply") == {"total": 29_600_000}
    assert events_of(result, "withdraw") == [
        {"account": chain.id("alice"), "agent": chain.id("lpd_b"), "amount": "400000", "reference": "payout-7"}
    ]


def test_basic_deactivated_participant_may_withdraw(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("alice"))).code == 0
    result = chain.deliver("alice", Withdraw(amount=10_000_000, agent=chain.id("lpd"), reference=""))
    assert result.code == 0, result.log
    assert chain.account("alice")["balance"] == 0
    assert chain.query("/supply") == {"total": 20_000_000}


def test_invalid_unknown_agent(chain: Chain) -> None:
    msg = Withdraw(amount=1, agent=chain.id("dave"), reference="")
    rejected(chain, "alice", msg, errors.UnknownAccount, spends_nonce=True)


@pytest.mark.parametrize("agent", ["dso", "bob"])
def test_invalid_agent_not_lpd(chain: Chain, agent: str) -> None:
    msg = Withdraw(amount=1, agent=chain.id(agent), reference="")
    rejected(chain, "alice", msg, errors.NotAuthorised, spends_nonce=True)


def test_invalid_insufficient_funds(chain: Chain) -> None:
    msg = Withdraw(amount=10_000_001, agent=chain.id("lpd"), reference="")
    rejected(chain, "alice", msg, errors.InsufficientFunds, spends_nonce=True)


@pytest.mark.parametrize("amount", [0, -1])
def test_invalid_amount_not_positive(chain: Chain, amount: int) -> None:
    msg = Withdraw(amount=amount, agent=chain.id("lpd"), reference="")
    rejected(chain, "alice", msg, errors.ValueOutOfRange, spends_nonce=False)


def test_invalid_agent_not_an_account_id(chain: Chain) -> None:
    msg = Withdraw(amount=1, agent="lpd-a", reference="")
    rejected(chain, "alice", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_reference_too_long(chain: Chain) -> None:
    msg = Withdraw(amount=1, agent=chain.id("lpd"), reference="r" * 257)
    rejected(chain, "alice", msg, errors.ValueOutOfRange, spends_nonce=False)
