"""cancel_order: the owner withdraws an open order and its whole lock returns (docs/market.md)."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.market.msgs import CancelOrder
from tests.harness import GENESIS_TIME, ZONE_A, Chain, events_of
from tests.market_harness import (
    SLOT,
    block_at,
    cancel,
    market_rejected,
    money,
    open_remaining,
    order,
    place,
    position,
)

TEN_EUR = 10_000_000


pytestmark = pytest.mark.market


@pytest.fixture
def chain(chain: Chain) -> Chain:
    place(chain, "bob", order("bid", 1_000, 250_000))  # order 1, locks 250000 + 20000
    return chain


def test_basic(chain: Chain) -> None:
    assert money(chain, "bob") == (TEN_EUR, 270_000)
    result = cancel(chain, "bob", 1)
    assert result.code == 0, result.log
    assert [e.type for e in result.events] == ["order.cancelled"]
    assert events_of(result, "order.cancelled") == [{
        "id": "1", "account": chain.id("bob"), "slot": str(SLOT), "side": "bid", "remaining_wh": "1000",
        "released": "270000", "reason": "owner",
    }]
    assert money(chain, "bob") == (TEN_EUR, 0)
    assert open_remaining(chain, "bob") == []
    assert position(chain, "bob")["bid_open_wh"] == 0
    assert chain.query(f"/book/{SLOT}/{ZONE_A}")["bids"] == []
    assert chain.query("/slots")["slots"] == []
    assert chain.account("bob")["nonce"] == 2


def test_basic_ask(chain: Chain) -> None:
    order_id = place(chain, "alice", order("ask", 2_000, 260_000))
    assert money(chain, "alice") == (TEN_EUR, 40_000)
    assert cancel(chain, "alice", order_id).code == 0
    assert money(chain, "alice") == (TEN_EUR, 0)


def test_basic_after_partial_fill_keeps_position_collateral(chain: Chain) -> None:
    place(chain, "bob", order("bid", 2_000, 250_000, slot=SLOT))  # order 2
    place(chain, "alice", order("ask", 1_500, 230_000))
    # 1000 Wh from order 1, 500 Wh from order 2 at 250000 all-in each.
    assert open_remaining(chain, "bob") == [1_500]
    result = cancel(chain, "bob", 2)
    assert result.code == 0, result.log
    # Remaining 1500 Wh: amount(1500, 250000) + amount(1500, 20000) = 375000 + 30000.
    assert events_of(result, "order.cancelled")[0]["released"] == "405000"
    assert events_of(result, "order.cancelled")[0]["remaining_wh"] == "1500"
    # 1500 Wh bought at 250000 all-in; their 30000 collateral stays locked until settlement.
    assert money(chain, "bob") == (TEN_EUR - 375_000, 30_000)
    assert position(chain, "bob")["collateral"] == 30_000


def test_invalid_not_owner(chain: Chain) -> None:
    market_rejected(chain, "alice", CancelOrder(order_id=1), errors.NotAuthorised)


def test_invalid_not_owner_operator(chain: Chain) -> None:
    market_rejected(chain, "dso", CancelOrder(order_id=1), errors.NotAuthorised)


def test_invalid_unknown_order(chain: Chain) -> None:
    market_rejected(chain, "bob", CancelOrder(order_id=99), errors.UnknownOrder)


def test_invalid_unknown_order_checked_before_owner(chain: Chain) -> None:
    market_rejected(chain, "alice", CancelOrder(order_id=99), errors.UnknownOrder)


def test_invalid_already_cancelled(chain: Chain) -> None:
    assert cancel(chain, "bob", 1).code == 0
    market_rejected(chain, "bob", CancelOrder(order_id=1), errors.UnknownOrder)


def test_invalid_already_filled(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    market_rejected(chain, "bob", CancelOrder(order_id=1), errors.UnknownOrder)


def test_invalid_already_expired(chain: Chain) -> None:
    block_at(chain, SLOT - 300)
    market_rejected(chain, "bob", CancelOrder(order_id=1), errors.UnknownOrder)


def test_invalid_ioc_remainder_is_gone(chain: Chain) -> None:
    result = chain.deliver("dave", order("bid", 1_000, 200_000, tif="ioc", valid_until=GENESIS_TIME + 100))
    assert result.code == 0 and events_of(result, "order.cancelled")[0]["reason"] == "ioc"
    market_rejected(chain, "dave", CancelOrder(order_id=2), errors.UnknownOrder)


@pytest.mark.parametrize("order_id", [0, -1])
def test_invalid_order_id_out_of_range(chain: Chain, order_id: int) -> None:
    market_rejected(chain, "bob", CancelOrder(order_id=order_id), errors.ValueOutOfRange, spends_nonce=False)
