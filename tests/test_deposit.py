"""deposit: an LPD credits an active account against an off-chain payment."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from abci_app.ledger import errors
from abci_app.ledger.codec import MAX_INT
from abci_app.ledger.modules.bank import Deposit
from abci_app.ledger.modules.registry import Deactivate
from abci_app.ledger.msg import Msg
from tests.harness import ZONE_A, ZONE_B, Chain, events_of


def snapshot(chain: Chain) -> dict[str, Any]:
    """Everything the queries show that a transaction could change."""
    accounts = {}
    for name in chain.keys:
        try:
            accounts[name] = chain.account(name)
        except LookupError:
            accounts[name] = None
    return {
        "accounts": accounts,
        "supply": chain.query("/supply"),
        "params": chain.query("/params"),
        "operators": chain.query("/operators"),
        "proposals": chain.query("/proposals"),
        "zones": [chain.query(f"/participants/{zone}") for zone in (ZONE_A, ZONE_B)],
        "meters": [chain.query(f"/meters/{key.account}") for key in chain.keys.values()],
    }


def nonce_spent(before: dict[str, Any], name: str, nonce: int) -> dict[str, Any]:
    """``before`` with only the signer's nonce advanced (the documented nonce rule)."""
    expected = copy.deepcopy(before)
    expected["accounts"][name]["nonce"] = nonce
    return expected


def rejected(chain: Chain, signer: str, msg: Msg, error: type[errors.LedgerError], *, spends_nonce: bool) -> None:
    """Deliver ``msg``; assert its code and that nothing but (maybe) the nonce changed."""
    before = snapshot(chain)
    result = chain.deliver(signer, msg)
    assert result.code == error.code, result.log
    expected = nonce_spent(before, signer, chain.nonces[chain.id(signer)]) if spends_nonce else before
    assert snapshot(chain) == expected
    assert not result.events


@pytest.fixture
def chain() -> Chain:
    chain = Chain()
    chain.block()
    return chain


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
