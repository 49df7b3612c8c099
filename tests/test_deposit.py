"""deposit: an LPD credits an active account against an off-chain payment."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.codec import MAX_INT
from abci_app.ledger.modules.bank import Deposit
from abci_app.ledger.modules.registry import Deactivate
from tests.harness import Chain, events_of, rejected


def test_basic(chain: Chain) -> None:
    result = chain.deliver("lpd", Deposit(account=chain.id("alice"), amount=750_000, reference="SEPA-42"))
    assert result.code == 0, result.log
    assert chain.account("alice")["balance"] == 10_750_000
    assert chain.account("alice")["free"] == 10_750_000
    assert chain.account("lpd")["balance"] == 0
    assert chain.account("lpd")["nonce"] == 1
    assert chain.query("/supply") == {"total": 30_750_000}
    assert events_of(result, "deposit") == [
        {"account": chain.id("alice"), "agent": chain.id("lpd"), "amount": "750000", "reference": "SEPA-42"}
    ]


def test_basic_to_an_operator_account(chain: Chain) -> None:
    assert chain.deliver("lpd_b", Deposit(account=chain.id("dso"), amount=5, reference="")).code == 0
    assert chain.account("dso")["balance"] == 5
    assert chain.query("/supply") == {"total": 30_000_005}


@pytest.mark.parametrize("signer", ["dso", "alice"])
def test_invalid_signer_not_lpd(chain: Chain, signer: str) -> None:
    msg = Deposit(account=chain.id("bob"), amount=1, reference="")
    rejected(chain, signer, msg, errors.NotAuthorised, spends_nonce=True)


def test_invalid_unknown_account(chain: Chain) -> None:
    msg = Deposit(account=chain.id("dave"), amount=1, reference="")
    rejected(chain, "lpd", msg, errors.UnknownAccount, spends_nonce=True)


def test_invalid_inactive_account(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("bob"))).code == 0
    msg = Deposit(account=chain.id("bob"), amount=1, reference="")
    rejected(chain, "lpd", msg, errors.InactiveAccount, spends_nonce=True)


def test_invalid_account_not_an_account_id(chain: Chain) -> None:
    msg = Deposit(account="alice", amount=1, reference="")
    rejected(chain, "lpd", msg, errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize("amount", [0, -5])
def test_invalid_amount_not_positive(chain: Chain, amount: int) -> None:
    msg = Deposit(account=chain.id("alice"), amount=amount, reference="")
    rejected(chain, "lpd", msg, errors.ValueOutOfRange, spends_nonce=False)


def test_invalid_reference_too_long(chain: Chain) -> None:
    msg = Deposit(account=chain.id("alice"), amount=1, reference="r" * 257)
    rejected(chain, "lpd", msg, errors.ValueOutOfRange, spends_nonce=False)


def test_invalid_overflow(chain: Chain) -> None:
    """Balances and supply are signed 64-bit (codec.py): a deposit past that is a ValueOutOfRange rejection."""
    msg = Deposit(account=chain.id("alice"), amount=MAX_INT - 10_000_000, reference="")
    rejected(chain, "lpd", msg, errors.ValueOutOfRange, spends_nonce=True)


def test_invalid_overflow_in_check_tx(chain: Chain) -> None:
    """CheckTx answers an overflowing deposit with a code instead of raising out of the ABCI call."""
    msg = Deposit(account=chain.id("alice"), amount=MAX_INT - 10_000_000, reference="")
    assert chain.check(chain.sign("lpd", msg)).code == errors.ValueOutOfRange.code
