"""CheckTx is admission, not execution: signer, role, nonce (also across the mempool), expiry and funds;
a recheck neither decodes nor verifies again."""

from __future__ import annotations

import json

import pytest

from abci_app.ledger import errors
from abci_app.ledger import tx as txmod
from abci_app.ledger.modules.bank import Deposit, Transfer
from abci_app.ledger.modules.market.msgs import CancelOrder
from abci_app.ledger.modules.settlement import SubmitReadings
from abci_app.ledger.tx import TxCache
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import Chain
from tests.market_harness import COLLATERAL, SLOT, acceptance, market_chain, offer, order, put_debt
from tests.settlement_harness import reading

TEN_EUR = 10_000_000


def check(chain: Chain, raw: bytes, *, recheck: bool = False) -> abci.ResponseCheckTx:
    kind = abci.RECHECK if recheck else abci.NEW
    return chain.app.check_tx(abci.RequestCheckTx(tx=raw, type=kind))


def next_nonce(chain: Chain, name: str) -> int:
    response = chain.app.query(abci.RequestQuery(path=f"/next_nonce/{chain.id(name)}"))
    assert response.code == 0, response.log
    return int(json.loads(response.value)["next_nonce"])


def transfer(chain: Chain, amount: int) -> Transfer:
    return Transfer(recipient=chain.id("bob"), amount=amount, memo="")


def test_basic(chain: Chain) -> None:
    first = chain.sign("alice", transfer(chain, 1))
    second = chain.sign("alice", transfer(chain, 2))
    assert check(chain, first).code == 0
    assert check(chain, second).code == 0
    assert next_nonce(chain, "alice") == 3
    # Admission changes no state: the committed balance and nonce are untouched.
    assert chain.account("alice")["nonce"] == 0
    assert chain.account("alice")["balance"] == TEN_EUR


def test_invalid_nonce_already_pending(chain: Chain) -> None:
    assert check(chain, chain.sign("alice", transfer(chain, 1), nonce=2)).code == 0
    for nonce in (1, 2):
        response = check(chain, chain.sign("alice", transfer(chain, 3), nonce=nonce))
        assert response.code == errors.StaleNonce.code
        assert "already waiting in this node's mempool" in response.log


def test_invalid_pending_transactions_exceed_free_balance(chain: Chain) -> None:
    assert check(chain, chain.sign("alice", transfer(chain, 6_000_000))).code == 0
    response = check(chain, chain.sign("alice", transfer(chain, 5_000_000)))
    assert response.code == errors.InsufficientFunds.code
    assert "pending transactions may take 6000000 and this one 5000000" in response.log
    # A refused transaction reserves nothing: a smaller one still fits.
    assert check(chain, chain.sign("alice", transfer(chain, 4_000_000), nonce=2)).code == 0


def test_invalid_role(chain: Chain) -> None:
    response = check(chain, chain.sign("alice", Deposit(account=chain.id("alice"), amount=1, reference="")))
    assert (response.code, response.log) == (errors.NotAuthorised.code, "only an LPD may deposit")


def test_invalid_order_of_an_account_in_debt() -> None:
    chain = market_chain()
    put_debt(chain, "bob", 1)
    assert check(chain, chain.sign("bob", order("bid", 1_000, 250_000))).code == errors.AccountInDebt.code


def test_invalid_order_already_expired() -> None:
    chain = market_chain()
    stale = order("bid", 1_000, 250_000, valid_until=chain.time - 1)
    assert check(chain, chain.sign("bob", stale)).code == errors.OrderExpired.code


def test_invalid_bid_beyond_free_balance() -> None:
    chain = market_chain()
    # 5 kWh at 2 EUR/kWh locks 10 EUR plus collateral: more than bob's 10 EUR.
    response = check(chain, chain.sign("bob", order("bid", 5_000, 2_000_000)))
    assert response.code == errors.InsufficientFunds.code
    assert f"this one {10_000_000 + 5 * COLLATERAL}" in response.log


def test_invalid_acceptance_beyond_free_balance() -> None:
    chain = market_chain()
    signed = offer(chain, "alice", "ask", 5_000, price=1_990_000)
    response = check(chain, chain.sign("bob", acceptance(chain, signed, "bob")))
    # The taker buys 5 kWh at the offer's price plus the zone's fee (10,000/kWh) and locks collateral.
    assert response.code == errors.InsufficientFunds.code
    assert f"this one {5 * (1_990_000 + 10_000) + 5 * COLLATERAL}" in response.log


def test_order_dependent_rules_are_decided_in_the_block() -> None:
    """25 kWh exceeds alice's 5 kWh export capacity: admitted, then refused in FinalizeBlock with its nonce spent."""
    chain = market_chain()
    raw = chain.sign("alice", order("ask", 25_000, 250_000))
    assert check(chain, raw).code == 0
    result = chain.block([raw]).tx_results[0]
    assert result.code == errors.CapacityExceeded.code
    assert chain.account("alice")["nonce"] == 1


def test_a_cancel_of_an_order_unknown_here_is_admitted() -> None:
    """A lagging node never refuses a valid cancel with a misleading reason: order ids are the block's business."""
    chain = market_chain()
    assert check(chain, chain.sign("bob", CancelOrder(order_id=999))).code == 0


def test_recheck_neither_decodes_nor_verifies(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    pending = [chain.sign("alice", transfer(chain, 1)), chain.sign("alice", transfer(chain, 2))]
    for raw in pending:
        assert check(chain, raw).code == 0
    chain.block([pending[0]])
    calls: list[bytes] = []
    real_parse = txmod._parse
    monkeypatch.setattr(txmod, "_parse", lambda raw, chain_id: calls.append(raw) or real_parse(raw, chain_id))
    monkeypatch.setattr(txmod.crypto, "verify", lambda *args: pytest.fail("a recheck verified a signature"))
    assert check(chain, pending[1], recheck=True).code == 0
    assert calls == []
    # The committed transaction left the cache; the pending one is still there.
    assert chain.app.txs.get(txmod.hashlib.sha256(pending[0]).digest()) is None
    assert chain.app.txs.get(txmod.hashlib.sha256(pending[1]).digest()) is not None


def test_invalid_recheck_after_the_nonce_was_spent(chain: Chain) -> None:
    raw = chain.sign("alice", transfer(chain, 1), nonce=5)
    assert check(chain, raw).code == 0
    chain.block([chain.sign("alice", transfer(chain, 1), nonce=6)])
    response = check(chain, raw, recheck=True)
    assert response.code == errors.StaleNonce.code
    # Dropped from the mempool, so dropped from the cache.
    assert chain.app.txs.get(txmod.hashlib.sha256(raw).digest()) is None


def test_recheck_rebuilds_reservations_in_mempool_order(chain: Chain) -> None:
    a, b = chain.sign("alice", transfer(chain, 6_000_000)), chain.sign("alice", transfer(chain, 3_000_000))
    assert check(chain, a).code == check(chain, b).code == 0
    chain.block([chain.sign("bob", Transfer(recipient=chain.id("carol"), amount=1, memo=""))])
    assert check(chain, a, recheck=True).code == 0
    assert check(chain, b, recheck=True).code == 0
    assert next_nonce(chain, "alice") == 3
    assert check(chain, chain.sign("alice", transfer(chain, 1_000_001))).code == errors.InsufficientFunds.code


def test_the_cache_belongs_to_the_application() -> None:
    first, second = Chain(), Chain()
    assert first.app.txs is not second.app.txs


def test_cache_is_bounded_least_recent_first_out(chain: Chain) -> None:
    cache = TxCache(capacity=2)
    decoded = [txmod.decode_tx(chain.sign("alice", transfer(chain, n)), chain.chain_id, 65_536, cache)
               for n in (1, 2)]
    assert cache.get(decoded[0].digest) is decoded[0]  # now the most recently used
    third = txmod.decode_tx(chain.sign("alice", transfer(chain, 3)), chain.chain_id, 65_536, cache)
    assert len(cache) == 2
    assert cache.get(decoded[1].digest) is None
    assert cache.get(decoded[0].digest) is decoded[0] and cache.get(third.digest) is third


def test_invalid_reading_not_signed_by_its_meter() -> None:
    """A registered meter's key never changes: a reading it did not sign can never apply."""
    chain = market_chain()
    forged = reading(chain, "carol", SLOT, 0, 10, key_name="alice")
    response = check(chain, chain.sign("alice", SubmitReadings(readings=(forged,))))
    assert response.code == errors.BadReadingSignature.code


def test_readings_decided_by_the_block_are_admitted() -> None:
    """A slot that has not ended at the last block may have ended at the next; a meter may be registered meanwhile."""
    chain = market_chain()
    early = reading(chain, "carol", SLOT + 900, 0, 10)
    unknown = reading(chain, "nobody", SLOT, 0, 10)
    assert check(chain, chain.sign("alice", SubmitReadings(readings=(early, unknown)))).code == 0


def test_a_reading_checked_at_admission_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = market_chain()
    chain.block(dt=900)
    slot_end = chain.time - chain.time % 900
    raw = chain.sign("dso", SubmitReadings(readings=(reading(chain, "carol", slot_end, 0, 0),)))
    assert check(chain, raw).code == 0
    monkeypatch.setattr(txmod.crypto, "_verify", lambda *args: pytest.fail("a verified signature was checked again"))
    assert chain.block([raw]).tx_results[0].code == 0
