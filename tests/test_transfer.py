"""transfer: move free money from the signer to another active account."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.registry import Deactivate
from tests.harness import Chain, events_of, rejected


def test_basic(chain: Chain) -> None:
    supply = chain.query("/supply")
    result = chain.deliver("alice", Transfer(recipient=chain.id("carol"), amount=2_500, memo="solar"))
    assert result.code == 0, result.log
    alice, carol = chain.account("alice"), chain.account("carol")
    assert (alice["balance"], alice["free"], alice["nonce"]) == (10_000_000 - 2_500, 10_000_000 - 2_500, 1)
    assert (carol["balance"], carol["nonce"]) == (10_000_000 + 2_500, 0)
    assert chain.query("/supply") == supply
    assert events_of(result, "transfer") == [
        {"sender": chain.id("alice"), "recipient": chain.id("carol"), "amount": "2500"}
    ]


def test_basic_whole_free_balance_to_an_operator(chain: Chain) -> None:
    result = chain.deliver("alice", Transfer(recipient=chain.id("lpd"), amount=10_000_000, memo=""))
    assert result.code == 0, result.log
    assert chain.account("alice")["balance"] == 0
    assert chain.account("lpd")["balance"] == 10_000_000


def test_invalid_self_transfer(chain: Chain) -> None:
    msg = Transfer(recipient=chain.id("alice"), amount=1, memo="")
    rejected(chain, "alice", msg, errors.SelfTransfer, spends_nonce=True)


def test_invalid_unknown_recipient(chain: Chain) -> None:
    msg = Transfer(recipient=chain.id("dave"), amount=1, memo="")
    rejected(chain, "alice", msg, errors.UnknownAccount, spends_nonce=True)


def test_invalid_inactive_recipient(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("bob"))).code == 0
    msg = Transfer(recipient=chain.id("bob"), amount=1, memo="")
    rejected(chain, "alice", msg, errors.InactiveAccount, spends_nonce=True)


def test_invalid_insufficient_funds(chain: Chain) -> None:
    msg = Transfer(recipient=chain.id("bob"), amount=10_000_001, memo="")
    rejected(chain, "alice", msg, errors.InsufficientFunds, spends_nonce=True)


def test_invalid_insufficient_funds_after_earlier_tx_of_the_block(chain: Chain) -> None:
    first = chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=6_000_000, memo=""))
    second = chain.sign("alice", Transfer(recipient=chain.id("carol"), amount=6_000_000, memo=""))
    results = chain.block([first, second]).tx_results
    assert [r.code for r in results] == [0, errors.InsufficientFunds.code]
    assert chain.account("alice")["balance"] == 4_000_000
    assert chain.account("carol")["balance"] == 10_000_000
    assert chain.account("alice")["nonce"] == 2


def test_invalid_recipient_not_an_account_id(chain: Chain) -> None:
    msg = Transfer(recipient=chain.id("bob").upper(), amount=1, memo="")
    rejected(chain, "alice", msg, errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize("amount", [0, -1])
def test_invalid_amount_not_positive(chain: Chain, amount: int) -> None:
    msg = Transfer(recipient=chain.id("bob"), amount=amount, memo="")
    rejected(chain, "alice", msg, errors.ValueOutOfRange, spends_nonce=False)


def test_invalid_memo_too_long(chain: Chain) -> None:
    msg = Transfer(recipient=chain.id("bob"), amount=1, memo="x" * 257)
    rejected(chain, "alice", msg, errors.ValueOutOfRange, spends_nonce=False)
