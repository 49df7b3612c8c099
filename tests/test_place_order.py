"""place_order: the placement rules of docs/market.md with their codes, locks, events and continuous matching.

Every expected number is computed by hand from the rules (amount(q, p) = floor(q x p / 1000)) with the
market harness: fee(a,a) = fee(b,b) = 10000, fee(a,b) = fee(b,a) = 30000 (15000 to each DSO), collateral
20000/kWh, 5000 Wh of capacity per slot per meter direction, 10 EUR per participant. The fixture's chain is at
GENESIS + 5; every ``deliver`` is a new block 5 s later, so the first order is placed at GENESIS + 10.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from abci_app.ledger import errors
from abci_app.ledger.genesis import GenesisError
from abci_app.ledger.modules.market.msgs import PlaceOrder
from abci_app.ledger.modules.registry import Deactivate
from tests.harness import GENESIS_TIME, ZONE_A, Chain, events_of
from tests.market_harness import (
    SLOT,
    block_at,
    cancel,
    deliver_at,
    market_app_state,
    market_chain,
    market_rejected,
    money,
    open_remaining,
    order,
    place,
    position,
    put_debt,
    trades,
)

PARTICIPANTS = ("alice", "bob", "carol", "dave", "erin")
TEN_EUR = 10_000_000


pytestmark = pytest.mark.market


@pytest.fixture
def call_chain() -> Chain:
    return market_chain(mode=1)


# -- basic -------------------------------------------------------------------------------------
def test_basic(chain: Chain) -> None:
    result = chain.deliver("alice", order("ask", 2_000, 240_000, client_order_id="a-1"))
    assert result.code == 0, result.log
    assert events_of(result, "order.placed") == [{
        "id": "1", "account": chain.id("alice"), "side": "ask", "slot": str(SLOT), "zone": ZONE_A,
        "price": "240000", "quantity_wh": "2000", "tif": "limit", "valid_until": str(SLOT),
        "client_order_id": "a-1", "origin": "solar", "accept_origins": "", "locked": "40000",
    }]
    assert [e.type for e in result.events] == ["order.placed"]
    # An ask locks only its collateral: amount(2000, 20000) = 40000.
    assert money(chain, "alice") == (TEN_EUR, 40_000)
    assert chain.query("/order/1") == {
        "id": 1, "owner": chain.id("alice"), "side": "ask", "zone": ZONE_A, "slot": SLOT, "price": 240_000,
        "quantity_wh": 2_000, "remaining_wh": 2_000, "valid_until": SLOT, "tif": "limit",
        "client_order_id": "a-1", "origin": "solar", "accept_origins": [], "collateral_per_kwh": 20_000,
        "locked": 40_000, "placed_at": GENESIS_TIME + 10,
    }
    assert position(chain, "alice")["ask_open_wh"] == 2_000
    assert chain.query(f"/book/{SLOT}/{ZONE_A}")["asks"] == [{"price": 240_000, "quantity_wh": 2_000, "orders": 1}]
    assert chain.account("alice")["nonce"] == 1


def test_basic_bid_locks_all_in_price_and_collateral(chain: Chain) -> None:
    result = chain.deliver("bob", order("bid", 4_000, 260_000, accept=("solar", "wind")))
    assert result.code == 0, result.log
    # amount(4000, 260000) + amount(4000, 20000) = 1040000 + 80000
    assert events_of(result, "order.placed")[0]["locked"] == "1120000"
    assert events_of(result, "order.placed")[0]["accept_origins"] == "solar,wind"
    assert money(chain, "bob") == (TEN_EUR, 1_120_000)
    assert chain.account("bob")["free"] == TEN_EUR - 1_120_000
    assert position(chain, "bob")["bid_open_wh"] == 4_000


def test_basic_bid_lock_rounds_each_amount_down(chain: Chain) -> None:
    place(chain, "bob", order("bid", 333, 250_100))
    # floor(333 x 250100 / 1000) = floor(83283.3) = 83283; floor(333 x 20000 / 1000) = 6660
    assert money(chain, "bob") == (TEN_EUR, 83_283 + 6_660)


def test_basic_collateral_rate_rounds_down() -> None:
    chain = market_chain(collateral_per_kwh=12_345)
    place(chain, "alice", order("ask", 333, 240_000))
    # floor(333 x 12345 / 1000) = floor(4110.885) = 4110
    assert money(chain, "alice") == (TEN_EUR, 4_110)
    assert chain.query("/order/1")["collateral_per_kwh"] == 12_345


def test_basic_price_at_the_cap_and_minimum_quantity(chain: Chain) -> None:
    place(chain, "alice", order("ask", 100, 10_000_000))
    assert money(chain, "alice") == (TEN_EUR, 2_000)


def test_basic_crossing_order_events_in_order(chain: Chain) -> None:
    place(chain, "alice", order("ask", 2_000, 240_000))
    result = chain.deliver("bob", order("bid", 1_000, 250_000))
    assert result.code == 0, result.log
    assert [e.type for e in result.events] == ["order.placed", "order.filled", "order.filled", "trade"]
    assert events_of(result, "order.filled") == [
        {"id": "2", "account": chain.id("bob"), "trade": "1", "quantity_wh": "1000", "remaining_wh": "0",
         "full": "true"},
        {"id": "1", "account": chain.id("alice"), "trade": "1", "quantity_wh": "1000", "remaining_wh": "1000",
         "full": "false"},
    ]
    assert events_of(result, "trade") == [{
        "id": "1", "slot": str(SLOT), "buyer": chain.id("bob"), "seller": chain.id("alice"),
        "buyer_zone": ZONE_A, "seller_zone": ZONE_A, "quantity_wh": "1000", "price": "240000",
        "fee_per_kwh": "10000", "value": "240000", "fee": "10000", "origin": "solar", "mechanism": "continuous",
        "bid_order": "2", "ask_order": "1",
    }]


def test_basic_worked_example_of_the_docs(chain: Chain) -> None:
    """docs/market.md "Worked example", number by number."""
    supply = chain.query("/supply")
    place(chain, "alice", order("ask", 2_000, 240_000))
    assert money(chain, "alice") == (TEN_EUR, 40_000)
    place(chain, "carol", order("ask", 3_000, 220_000, origin="wind"))
    assert money(chain, "carol") == (TEN_EUR, 60_000)
    result = chain.deliver("bob", order("bid", 4_000, 260_000))
    assert result.code == 0, result.log
    assert events_of(result, "order.placed")[0]["locked"] == "1120000"
    assert trades(chain) == [("bob", "alice", 2_000, 240_000, 10_000), ("bob", "carol", 2_000, 220_000, 30_000)]
    # bob: 480000 + 20000 + 440000 + 60000 paid; 80000 collateral stays locked.
    assert money(chain, "bob") == (9_000_000, 80_000)
    assert money(chain, "alice") == (10_480_000, 40_000 + 480_000)
    # carol: 20000 for the resting 1000 Wh + 40000 position collateral + her 440000 proceeds, held until settlement.
    assert money(chain, "carol") == (10_440_000, 60_000 + 440_000)
    assert money(chain, "dso") == (50_000, 0)
    assert money(chain, "dso_b") == (30_000, 0)
    assert chain.query("/supply") == supply
    assert position(chain, "bob") == {
        "slot": SLOT, "account": chain.id("bob"), "bid_open_wh": 0, "ask_open_wh": 0, "bought_wh": 4_000,
        "sold_wh": 0, "paid": 920_000, "received": 0, "fees_paid": 80_000, "collateral": 80_000,
    }
    assert position(chain, "alice") == {
        "slot": SLOT, "account": chain.id("alice"), "bid_open_wh": 0, "ask_open_wh": 0, "bought_wh": 0,
        "sold_wh": 2_000, "paid": 0, "received": 480_000, "fees_paid": 0, "collateral": 40_000 + 480_000,
    }
    assert position(chain, "carol") == {
        "slot": SLOT, "account": chain.id("carol"), "bid_open_wh": 0, "ask_open_wh": 1_000, "bought_wh": 0,
        "sold_wh": 2_000, "paid": 0, "received": 440_000, "fees_paid": 0, "collateral": 40_000 + 440_000,
    }
    assert open_remaining(chain, "bob") == []
    assert chain.query("/order/2")["locked"] == 20_000
    # 4. gate closure releases carol's remaining 20000.
    response = block_at(chain, SLOT - 300)
    assert events_of(response, "order.expired") == [{
        "id": "2", "account": chain.id("carol"), "slot": str(SLOT), "side": "ask", "remaining_wh": "1000",
        "released": "20000", "reason": "gate_closure",
    }]
    assert money(chain, "carol") == (10_440_000, 40_000 + 440_000)


# -- stateless checks (nothing written, not even the nonce) ------------------------------------------------
@pytest.mark.parametrize(("signer", "msg"), [
    ("bob", order("buy", 1_000, 250_000)),
    ("bob", order("bid", 1_000, 250_000, tif="gtc")),
    ("bob", order("bid", 1_000, 250_000, tif="")),
    ("bob", order("bid", 1_000, 250_000, origin="solar")),
    ("alice", order("ask", 1_000, 250_000, origin="")),
    ("alice", order("ask", 1_000, 250_000, origin="coal")),
    ("alice", order("ask", 1_000, 250_000, accept=("solar",))),
    ("bob", order("bid", 1_000, 250_000, accept=("wind", "solar"))),
    ("bob", order("bid", 1_000, 250_000, accept=("solar", "solar"))),
    ("bob", order("bid", 1_000, 250_000, accept=("coal",))),
    ("bob", order("bid", 1_000, 250_000, client_order_id="has space")),
    ("bob", order("bid", 1_000, 250_000, client_order_id="-starts-with-dash")),
    ("bob", order("bid", 1_000, 250_000, client_order_id="x" * 65)),
], ids=["side", "tif", "empty-tif", "origin-on-bid", "ask-without-origin", "unknown-origin",
        "accept-origins-on-ask", "accept-origins-unsorted", "accept-origins-duplicate", "accept-origins-unknown",
        "client-order-id-space", "client-order-id-dash", "client-order-id-too-long"])
def test_invalid_malformed_body(chain: Chain, signer: str, msg: PlaceOrder) -> None:
    market_rejected(chain, signer, msg, errors.MalformedBody, spends_nonce=False)


@pytest.mark.parametrize("msg", [
    order("bid", 0, 250_000),
    order("bid", -100, 250_000),
    order("bid", 1_000, -250_000),
    order("bid", 1_000, 250_000, slot=-900),
    order("bid", 1_000, 250_000, valid_until=-1),
    order("bid", 10**13, 10**7),  # quantity x price above 2^63 - 1
], ids=["quantity-zero", "quantity-negative", "price-negative", "slot-negative",
        "valid-until-negative", "money-overflow"])
def test_invalid_value_out_of_range_stateless(chain: Chain, msg: PlaceOrder) -> None:
    market_rejected(chain, "bob", msg, errors.ValueOutOfRange, spends_nonce=False)


def test_basic_price_zero_at_the_default_floor(chain: Chain) -> None:
    """The price floor is a parameter, 0 by default: a PV glut can be offered for nothing."""
    place(chain, "alice", order("ask", 1_000, 0))


def test_invalid_price_below_the_floor() -> None:
    chain = market_chain(min_price_per_kwh=10_000)
    market_rejected(chain, "alice", order("ask", 1_000, 9_900), errors.ValueOutOfRange)


# -- rule 1: who may trade ----------------------------------------------------------------------------------
@pytest.mark.parametrize("operator", ["dso", "lpd"])
def test_invalid_not_a_participant(chain: Chain, operator: str) -> None:
    market_rejected(chain, operator, order("bid", 1_000, 250_000), errors.NotAuthorised)


def test_invalid_account_in_debt(chain: Chain) -> None:
    put_debt(chain, "bob", 120_000)
    market_rejected(chain, "bob", order("bid", 1_000, 250_000), errors.AccountInDebt)


# -- rule 2: slot ---------------------------------------------------------------------------------------------
def test_invalid_misaligned_slot(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 1_000, 250_000, slot=SLOT + 60), errors.MisalignedSlot)


def test_invalid_misaligned_slot_checked_before_too_far(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 1_000, 250_000, slot=GENESIS_TIME + 10**6 + 1),
                    errors.MisalignedSlot)


def test_invalid_slot_closed_in_the_gate_closure_block(chain: Chain) -> None:
    block_at(chain, SLOT - 305)
    # Delivered at SLOT - 300: gate closure itself, so the gate is closed.
    market_rejected(chain, "bob", order("bid", 1_000, 250_000), errors.SlotClosed, closes_through=SLOT)


def test_basic_last_block_before_gate_closure(chain: Chain) -> None:
    result = deliver_at(chain, "bob", order("bid", 1_000, 250_000), SLOT - 301)
    assert result.code == 0, result.log


def test_invalid_slot_in_the_past(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 1_000, 250_000, slot=GENESIS_TIME), errors.SlotClosed)


def test_invalid_slot_closed_checked_before_valid_until(chain: Chain) -> None:
    msg = order("bid", 1_000, 250_000, slot=GENESIS_TIME, valid_until=GENESIS_TIME)
    market_rejected(chain, "bob", msg, errors.SlotClosed)


def test_invalid_slot_too_far(chain: Chain) -> None:
    block_at(chain, GENESIS_TIME + 895)
    # Delivered at GENESIS + 900: GENESIS + 900 + 172800 is the last slot allowed.
    market_rejected(chain, "bob", order("bid", 1_000, 250_000, slot=GENESIS_TIME + 174_600,
                                        valid_until=GENESIS_TIME + 174_600), errors.SlotTooFar)


def test_basic_slot_at_the_horizon(chain: Chain) -> None:
    block_at(chain, GENESIS_TIME + 895)
    slot = GENESIS_TIME + 173_700
    result = chain.deliver("bob", order("bid", 1_000, 250_000, slot=slot, valid_until=slot))
    assert result.code == 0, result.log


# -- rule 3: valid_until ------------------------------------------------------------------------------------
def test_invalid_valid_until_before_block_time(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 1_000, 250_000, valid_until=GENESIS_TIME + 9), errors.OrderExpired)


def test_invalid_valid_until_checked_before_tick(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 1_000, 250_050, valid_until=GENESIS_TIME + 9), errors.OrderExpired)


def test_basic_valid_until_equal_to_block_time(chain: Chain) -> None:
    result = chain.deliver("bob", order("bid", 1_000, 250_000, valid_until=GENESIS_TIME + 10))
    assert result.code == 0, result.log


# -- rules 4 and 5: price and quantity ------------------------------------------------------------------------
def test_invalid_price_off_tick(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 1_000, 250_050), errors.PriceOffTick)


def test_invalid_price_above_cap(chain: Chain) -> None:
    market_rejected(chain, "alice", order("ask", 1_000, 10_000_100), errors.ValueOutOfRange)


def test_invalid_price_off_tick_checked_before_cap(chain: Chain) -> None:
    market_rejected(chain, "alice", order("ask", 1_000, 10_000_050), errors.PriceOffTick)


def test_invalid_quantity_too_small(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 99, 250_000), errors.QuantityTooSmall)


# -- rule 6: time in force in call-auction mode -------------------------------------------------------------------
@pytest.mark.parametrize("tif", ["ioc", "fok"])
def test_invalid_time_in_force_in_call_mode(call_chain: Chain, tif: str) -> None:
    market_rejected(call_chain, "bob", order("bid", 1_000, 250_000, tif=tif), errors.UnsupportedTimeInForce)


def test_basic_post_only_in_call_mode_rests_like_limit(call_chain: Chain) -> None:
    place(call_chain, "alice", order("ask", 1_000, 240_000))
    place(call_chain, "bob", order("bid", 1_000, 260_000, tif="post_only"))
    assert trades(call_chain) == []
    assert open_remaining(call_chain, "bob") == [1_000]


# -- rule 7: capacity -------------------------------------------------------------------------------------------
def test_invalid_capacity_single_ask(chain: Chain) -> None:
    # 20 kW export x 900 s = 5000 Wh per slot.
    market_rejected(chain, "alice", order("ask", 5_100, 240_000), errors.CapacityExceeded)


def test_basic_capacity_exactly_used(chain: Chain) -> None:
    place(chain, "alice", order("ask", 5_000, 240_000))
    place(chain, "alice", order("ask", 5_000, 240_000, slot=SLOT + 900, valid_until=SLOT + 900))
    place(chain, "bob", order("bid", 5_000, 200_000))


def test_invalid_capacity_with_open_orders(chain: Chain) -> None:
    place(chain, "alice", order("ask", 3_000, 240_000))
    place(chain, "alice", order("ask", 1_900, 250_000))
    market_rejected(chain, "alice", order("ask", 200, 260_000), errors.CapacityExceeded)
    place(chain, "alice", order("ask", 100, 260_000))


def test_invalid_capacity_with_energy_sold(chain: Chain) -> None:
    place(chain, "alice", order("ask", 3_000, 240_000))
    place(chain, "bob", order("bid", 3_000, 250_000))
    assert position(chain, "alice")["sold_wh"] == 3_000
    market_rejected(chain, "alice", order("ask", 2_100, 240_000), errors.CapacityExceeded)
    place(chain, "alice", order("ask", 2_000, 240_000))


def test_invalid_capacity_with_energy_bought(chain: Chain) -> None:
    place(chain, "alice", order("ask", 2_000, 240_000))
    place(chain, "bob", order("bid", 2_000, 250_000))
    place(chain, "bob", order("bid", 2_000, 200_000))
    market_rejected(chain, "bob", order("bid", 1_100, 200_000), errors.CapacityExceeded)


def test_invalid_capacity_bid_without_import(chain: Chain) -> None:
    market_rejected(chain, "carol", order("bid", 100, 250_000), errors.CapacityExceeded)


def test_invalid_capacity_ask_without_export(chain: Chain) -> None:
    market_rejected(chain, "bob", order("ask", 100, 250_000), errors.CapacityExceeded)


def test_invalid_capacity_of_a_deactivated_meter(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="meter", target="m-alice")).code == 0
    market_rejected(chain, "alice", order("ask", 100, 250_000), errors.CapacityExceeded)


def test_basic_capacity_released_by_cancel(chain: Chain) -> None:
    order_id = place(chain, "alice", order("ask", 5_000, 240_000))
    assert cancel(chain, "alice", order_id).code == 0
    place(chain, "alice", order("ask", 5_000, 240_000))


# -- rule 8: open orders ------------------------------------------------------------------------------------------
def test_invalid_too_many_open_orders() -> None:
    chain = market_chain(max_open_orders=2)
    place(chain, "alice", order("ask", 100, 240_000))
    place(chain, "alice", order("ask", 100, 240_000, slot=SLOT + 900, valid_until=SLOT + 900))
    market_rejected(chain, "alice", order("ask", 100, 240_000), errors.TooManyOpenOrders)
    # Rule 7 comes first.
    market_rejected(chain, "alice", order("ask", 5_000, 240_000), errors.CapacityExceeded)
    # Filled orders are no longer open.
    place(chain, "bob", order("bid", 100, 250_000))
    place(chain, "alice", order("ask", 100, 240_000))


# -- rule 9: self-trade ------------------------------------------------------------------------------------------
def test_invalid_self_trade(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    market_rejected(chain, "alice", order("bid", 1_000, 250_000), errors.SelfTrade)


def test_invalid_self_trade_even_if_matching_would_not_reach_it(chain: Chain) -> None:
    place(chain, "erin", order("ask", 1_000, 230_000))
    place(chain, "alice", order("ask", 1_000, 240_000))
    # bob would fill from erin first, but the rule rejects any crossing of the owner's own order.
    market_rejected(chain, "alice", order("bid", 1_000, 260_000), errors.SelfTrade)


def test_invalid_self_trade_incoming_ask(chain: Chain) -> None:
    place(chain, "alice", order("bid", 1_000, 250_000))
    market_rejected(chain, "alice", order("ask", 1_000, 240_000), errors.SelfTrade)


def test_basic_own_orders_that_do_not_cross(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    # 249900 < 240000 + fee(a,a) 10000: no crossing, so no self-trade.
    place(chain, "alice", order("bid", 1_000, 249_900))
    # Another slot never counts.
    place(chain, "alice", order("bid", 1_000, 300_000, slot=SLOT + 900, valid_until=SLOT + 900))


# -- rule 10: funds -------------------------------------------------------------------------------------------------
def test_invalid_insufficient_funds(chain: Chain) -> None:
    # amount(5000, 2000000) + amount(5000, 20000) = 10100000 > 10000000
    market_rejected(chain, "bob", order("bid", 5_000, 2_000_000), errors.InsufficientFunds)


def test_basic_whole_free_balance(chain: Chain) -> None:
    # amount(5000, 1980000) + amount(5000, 20000) = 9900000 + 100000
    place(chain, "bob", order("bid", 5_000, 1_980_000))
    assert money(chain, "bob") == (TEN_EUR, TEN_EUR)


# -- continuous double auction: table of hand-computed fills -----------------------------------------------------
Trade = tuple[str, str, int, int, int]


@dataclass(frozen=True)
class Case:
    resting: tuple[tuple[str, PlaceOrder], ...]
    incoming: tuple[str, PlaceOrder]
    trades: tuple[Trade, ...]
    """(buyer, seller, quantity_wh, energy price, fee per kWh) in execution order."""
    open_after: dict[str, list[int]] = field(default_factory=dict)
    """Remaining Wh of each participant's open orders afterwards (participants not named: none)."""


CASES = {
    "partial-fill-of-resting-ask": Case(
        (("alice", order("ask", 3_000, 240_000)),),
        ("bob", order("bid", 1_000, 250_000)),
        (("bob", "alice", 1_000, 240_000, 10_000),),
        {"alice": [2_000]},
    ),
    "bid-walks-levels-across-zones": Case(
        (("alice", order("ask", 1_000, 240_000)), ("erin", order("ask", 1_000, 230_000)),
         ("carol", order("ask", 2_000, 200_000, origin="wind"))),
        ("bob", order("bid", 3_500, 250_000)),
        # effective for bob in zone a: carol 230000, erin 240000, alice 250000
        (("bob", "carol", 2_000, 200_000, 30_000), ("bob", "erin", 1_000, 230_000, 10_000),
         ("bob", "alice", 500, 240_000, 10_000)),
        {"alice": [500]},
    ),
    "bid-remainder-rests-at-first-non-crossing-ask": Case(
        (("alice", order("ask", 1_000, 240_000)), ("erin", order("ask", 1_000, 245_000))),
        ("bob", order("bid", 2_500, 250_000)),
        (("bob", "alice", 1_000, 240_000, 10_000),),
        {"bob": [1_500], "erin": [1_000]},
    ),
    "ioc-fills-and-drops-the-rest": Case(
        (("alice", order("ask", 1_000, 240_000)),),
        ("bob", order("bid", 3_000, 250_000, tif="ioc")),
        (("bob", "alice", 1_000, 240_000, 10_000),),
    ),
    "ioc-without-crossing-is-dropped": Case(
        (("alice", order("ask", 1_000, 250_000)),),
        ("bob", order("bid", 1_000, 250_000, tif="ioc")),
        (),
        {"alice": [1_000]},
    ),
    "fok-filled-in-full": Case(
        (("alice", order("ask", 1_000, 240_000)), ("erin", order("ask", 2_000, 240_000))),
        ("bob", order("bid", 3_000, 250_000, tif="fok")),
        (("bob", "alice", 1_000, 240_000, 10_000), ("bob", "erin", 2_000, 240_000, 10_000)),
    ),
    "post-only-rests": Case(
        (("alice", order("ask", 1_000, 240_000)),),
        ("bob", order("bid", 1_000, 249_900, tif="post_only")),
        (),
        {"alice": [1_000], "bob": [1_000]},
    ),
    "tie-on-price-goes-to-earlier-order": Case(
        (("erin", order("ask", 1_000, 240_000)), ("alice", order("ask", 1_000, 240_000))),
        ("bob", order("bid", 1_000, 250_000)),
        (("bob", "erin", 1_000, 240_000, 10_000),),
        {"alice": [1_000]},
    ),
    "tie-on-effective-price-across-zones-goes-to-earlier-order": Case(
        (("alice", order("ask", 2_000, 240_000)), ("carol", order("ask", 3_000, 220_000, origin="wind"))),
        ("bob", order("bid", 4_000, 260_000)),
        (("bob", "alice", 2_000, 240_000, 10_000), ("bob", "carol", 2_000, 220_000, 30_000)),
        {"carol": [1_000]},
    ),
    "same-nominal-price-local-ask-wins-for-zone-a": Case(
        (("carol", order("ask", 1_000, 240_000)), ("alice", order("ask", 1_000, 240_000))),
        ("bob", order("bid", 1_000, 280_000)),
        (("bob", "alice", 1_000, 240_000, 10_000),),
        {"carol": [1_000]},
    ),
    "same-nominal-price-local-ask-wins-for-zone-b": Case(
        (("alice", order("ask", 1_000, 240_000)), ("carol", order("ask", 1_000, 240_000))),
        ("dave", order("bid", 1_000, 280_000)),
        (("dave", "carol", 1_000, 240_000, 10_000),),
        {"alice": [1_000]},
    ),
    "origin-restriction-passes-over-cheaper-ask": Case(
        (("alice", order("ask", 1_000, 230_000, origin="solar")),
         ("erin", order("ask", 1_000, 240_000, origin="wind"))),
        ("bob", order("bid", 1_000, 250_000, accept=("wind",))),
        (("bob", "erin", 1_000, 240_000, 10_000),),
        {"alice": [1_000]},
    ),
    "origin-restriction-bid-passed-over-by-incoming-ask": Case(
        (("bob", order("bid", 1_000, 260_000, accept=("wind",))), ("dave", order("bid", 1_000, 250_000))),
        ("alice", order("ask", 1_000, 200_000, origin="solar")),
        # dave in zone b: 250000 - fee(a,b) 30000 = 220000 for alice
        (("dave", "alice", 1_000, 220_000, 30_000),),
        {"bob": [1_000]},
    ),
    "ask-against-bids-across-zones-price-is-bid-minus-fee": Case(
        (("dave", order("bid", 1_000, 260_000)), ("bob", order("bid", 1_000, 250_000))),
        ("alice", order("ask", 2_000, 200_000)),
        # for alice in zone a: bob 250000 - 10000 = 240000, dave 260000 - 30000 = 230000
        (("bob", "alice", 1_000, 240_000, 10_000), ("dave", "alice", 1_000, 230_000, 30_000)),
    ),
    "ask-partially-fills-resting-bid": Case(
        (("bob", order("bid", 3_000, 250_000)),),
        ("alice", order("ask", 1_000, 230_000)),
        (("bob", "alice", 1_000, 240_000, 10_000),),
        {"bob": [2_000]},
    ),
    "ask-stops-at-first-non-crossing-bid": Case(
        (("bob", order("bid", 1_000, 250_000)), ("dave", order("bid", 1_000, 250_000))),
        ("alice", order("ask", 2_000, 230_000)),
        # dave: 250000 - 30000 = 220000 < 230000
        (("bob", "alice", 1_000, 240_000, 10_000),),
        {"alice": [1_000], "dave": [1_000]},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_continuous_matching(chain: Chain, case: Case) -> None:
    for who, msg in case.resting:
        place(chain, who, msg)
    place(chain, *case.incoming)
    assert trades(chain) == list(case.trades)
    for name in PARTICIPANTS:
        assert open_remaining(chain, name) == case.open_after.get(name, []), name
    # Whatever happened, each account's lock is its open orders' plus its position's collateral.
    for name in PARTICIPANTS:
        orders = chain.query(f"/orders/{chain.id(name)}")["orders"]
        assert money(chain, name)[1] == sum(o["locked"] for o in orders) + position(chain, name)["collateral"]


def test_invalid_fok_not_filled_in_full(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "erin", order("ask", 1_000, 245_000))  # effective 255000: does not cross
    market_rejected(chain, "bob", order("bid", 3_000, 250_000, tif="fok"), errors.FillOrKillUnfilled)


def test_invalid_fok_on_empty_book(chain: Chain) -> None:
    market_rejected(chain, "bob", order("bid", 100, 250_000, tif="fok"), errors.FillOrKillUnfilled)


def test_invalid_post_only_would_take(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    market_rejected(chain, "bob", order("bid", 1_000, 250_000, tif="post_only"), errors.PostOnlyWouldTake)


def test_invalid_post_only_ask_would_take(chain: Chain) -> None:
    place(chain, "dave", order("bid", 1_000, 250_000))
    # For alice in zone a, dave's bid is worth 250000 - 30000 = 220000.
    market_rejected(chain, "alice", order("ask", 1_000, 220_000, tif="post_only"), errors.PostOnlyWouldTake)
    place(chain, "alice", order("ask", 1_000, 220_100, tif="post_only"))


# -- money after fills --------------------------------------------------------------------------------------------
def test_money_ioc_remainder_released(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    result = chain.deliver("bob", order("bid", 3_000, 250_000, tif="ioc"))
    assert [e.type for e in result.events] == ["order.placed", "order.filled", "order.filled", "trade",
                                                "order.cancelled"]
    # Remaining 2000 Wh: amount(2000, 250000) + amount(2000, 20000) = 500000 + 40000.
    assert events_of(result, "order.cancelled") == [{
        "id": "2", "account": chain.id("bob"), "slot": str(SLOT), "side": "bid", "remaining_wh": "2000",
        "released": "540000", "reason": "ioc",
    }]
    assert money(chain, "bob") == (TEN_EUR - 250_000, 20_000)
    assert position(chain, "bob")["bid_open_wh"] == 0
    assert money(chain, "alice") == (TEN_EUR + 240_000, 20_000 + 240_000)


def test_money_partial_fill_of_resting_bid(chain: Chain) -> None:
    place(chain, "bob", order("bid", 3_000, 250_000))
    assert money(chain, "bob") == (TEN_EUR, 810_000)
    place(chain, "alice", order("ask", 1_000, 230_000))
    # bob pays his all-in limit 250000 for 1 kWh; his order keeps 2000 Wh locked (500000 + 40000)
    # and 20000 collateral moves to his position.
    assert money(chain, "bob") == (TEN_EUR - 250_000, 540_000 + 20_000)
    assert chain.query("/order/1")["locked"] == 540_000
    assert position(chain, "bob") == {
        "slot": SLOT, "account": chain.id("bob"), "bid_open_wh": 2_000, "ask_open_wh": 0, "bought_wh": 1_000,
        "sold_wh": 0, "paid": 240_000, "received": 0, "fees_paid": 10_000, "collateral": 20_000,
    }
    assert money(chain, "alice") == (TEN_EUR + 240_000, 20_000 + 240_000)
    assert money(chain, "dso") == (10_000, 0)


def test_money_incoming_ask_across_zones(chain: Chain) -> None:
    place(chain, "dave", order("bid", 1_000, 260_000))
    place(chain, "bob", order("bid", 1_000, 250_000))
    place(chain, "alice", order("ask", 2_000, 200_000))
    assert money(chain, "alice") == (TEN_EUR + 240_000 + 230_000, 40_000 + 240_000 + 230_000)
    assert money(chain, "bob") == (TEN_EUR - 250_000, 20_000)
    assert money(chain, "dave") == (TEN_EUR - 260_000, 20_000)
    assert money(chain, "dso") == (10_000 + 15_000, 0)
    assert money(chain, "dso_b") == (15_000, 0)


def test_money_fill_at_lower_price_returns_the_difference(chain: Chain) -> None:
    place(chain, "alice", order("ask", 2_000, 200_000))
    place(chain, "bob", order("bid", 2_000, 300_000))
    # bob locked 600000 + 40000, paid 400000 + 20000; 40000 collateral stays locked.
    assert money(chain, "bob") == (TEN_EUR - 420_000, 40_000)


# -- expiry ------------------------------------------------------------------------------------------------------
def test_expiry_valid_until(chain: Chain) -> None:
    place(chain, "bob", order("bid", 1_000, 250_000, valid_until=GENESIS_TIME + 20))
    assert not events_of(block_at(chain, GENESIS_TIME + 20), "order.expired")
    response = block_at(chain, GENESIS_TIME + 21)
    assert events_of(response, "order.expired") == [{
        "id": "1", "account": chain.id("bob"), "slot": str(SLOT), "side": "bid", "remaining_wh": "1000",
        "released": "270000", "reason": "valid_until",
    }]
    assert money(chain, "bob") == (TEN_EUR, 0)
    assert open_remaining(chain, "bob") == []
    assert chain.query(f"/book/{SLOT}/{ZONE_A}")["bids"] == []
    assert position(chain, "bob")["bid_open_wh"] == 0
    assert chain.query("/slots")["slots"] == []


def test_expiry_valid_until_order_still_trades_at_its_last_second(chain: Chain) -> None:
    place(chain, "bob", order("bid", 1_000, 250_000, valid_until=GENESIS_TIME + 20))
    result = deliver_at(chain, "alice", order("ask", 1_000, 240_000), GENESIS_TIME + 20)
    assert result.code == 0, result.log
    assert trades(chain) == [("bob", "alice", 1_000, 240_000, 10_000)]


def test_expiry_valid_until_oldest_first_then_by_id(chain: Chain) -> None:
    place(chain, "bob", order("bid", 1_000, 200_000, valid_until=GENESIS_TIME + 40))
    place(chain, "dave", order("bid", 1_000, 200_000, valid_until=GENESIS_TIME + 30))
    place(chain, "erin", order("bid", 1_000, 200_000, valid_until=GENESIS_TIME + 40))
    response = block_at(chain, GENESIS_TIME + 100)
    assert [e["id"] for e in events_of(response, "order.expired")] == ["2", "1", "3"]


def test_expiry_gate_closure(chain: Chain) -> None:
    place(chain, "bob", order("bid", 1_000, 200_000))
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "dave", order("bid", 1_000, 200_000, slot=SLOT + 900, valid_until=SLOT + 900))
    assert not events_of(block_at(chain, SLOT - 301), "order.expired")
    response = block_at(chain, SLOT - 300)
    assert events_of(response, "order.expired") == [
        {"id": "1", "account": chain.id("bob"), "slot": str(SLOT), "side": "bid", "remaining_wh": "1000",
         "released": "220000", "reason": "gate_closure"},
        {"id": "2", "account": chain.id("alice"), "slot": str(SLOT), "side": "ask", "remaining_wh": "1000",
         "released": "20000", "reason": "gate_closure"},
    ]
    assert money(chain, "bob") == (TEN_EUR, 0)
    assert money(chain, "alice") == (TEN_EUR, 0)
    assert money(chain, "dave") == (TEN_EUR, 220_000)
    assert chain.query("/slots") == {"slots": [SLOT + 900], "closed_through": SLOT}
    assert chain.query(f"/book/{SLOT}/{ZONE_A}") == {"slot": SLOT, "zone": ZONE_A, "bids": [], "asks": []}


def test_expiry_valid_until_before_gate_closure_in_the_same_block(chain: Chain) -> None:
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "bob", order("bid", 1_000, 200_000, valid_until=SLOT - 310))
    response = block_at(chain, SLOT - 300)
    assert [(e["id"], e["reason"]) for e in events_of(response, "order.expired")] == [
        ("2", "valid_until"), ("1", "gate_closure")]


def test_expiry_gate_closure_after_a_time_jump_over_several_slots(chain: Chain) -> None:
    far = SLOT + 86_400  # valid_until beyond the jump, so only gate closure expires them
    place(chain, "bob", order("bid", 1_000, 200_000, valid_until=far))
    place(chain, "dave", order("bid", 1_000, 200_000, slot=SLOT + 900, valid_until=far))
    response = block_at(chain, SLOT + 3_600)
    assert [(e["id"], e["reason"]) for e in events_of(response, "order.expired")] == [
        ("1", "gate_closure"), ("2", "gate_closure")]
    # dave's lock is released. (His balance is not the point here: the jump also settled three slots in
    # which his meter sent no readings, billed at their substitute, docs/settlement.md.)
    assert money(chain, "dave")[1] == 0


# -- slot lengths fixed at genesis --------------------------------------------------------------------------------
@pytest.mark.parametrize(("slot_length", "capacity_wh"), [(1_800, 10_000), (3_600, 20_000)])
def test_slot_length(slot_length: int, capacity_wh: int) -> None:
    chain = market_chain(slot_length_s=slot_length)
    assert chain.query("/params")["slot_length_s"] == slot_length
    # SLOT = GENESIS + 3600 is a multiple of both; GENESIS + 900 of neither.
    market_rejected(chain, "alice", order("ask", 100, 240_000, slot=GENESIS_TIME + 900), errors.MisalignedSlot)
    # 20 kW x slot length
    market_rejected(chain, "alice", order("ask", capacity_wh + 100, 240_000), errors.CapacityExceeded)
    place(chain, "alice", order("ask", capacity_wh, 240_000))
    place(chain, "bob", order("bid", capacity_wh, 200_000))


@pytest.mark.parametrize(("slot_length", "capacity_wh"), [(10, 55), (15, 83), (30, 166), (60, 333)])
def test_short_slot_lengths_for_replays(slot_length: int, capacity_wh: int) -> None:
    """Replay chains use slots of 10 s to a minute; alignment and capacity scale with them (floor of W x s / 3600)."""
    chain = market_chain(slot_length_s=slot_length, min_quantity_wh=1, gate_closure_lead_s=2)
    assert chain.query("/params")["slot_length_s"] == slot_length
    # (Each delivery is a block; its clock step settles short slots, so only the codes are compared here.)
    assert chain.deliver("alice", order("ask", 10, 240_000, slot=SLOT + 5)).code == errors.MisalignedSlot.code
    assert chain.deliver("alice", order("ask", capacity_wh + 1, 240_000)).code == errors.CapacityExceeded.code
    place(chain, "alice", order("ask", capacity_wh, 240_000))
    result = chain.deliver("bob", order("bid", capacity_wh, 250_000))
    assert result.code == 0, result.log
    (trade,) = events_of(result, "trade")
    assert int(trade["quantity_wh"]) == capacity_wh and int(trade["price"]) == 240_000


@pytest.mark.parametrize("slot_length", [0, 5, 9, 25, 45, 90, 1_000, 420, 900.0, 2 * 86_400])
def test_invalid_slot_length_at_genesis(slot_length: object) -> None:
    state = market_app_state(slot_length_s=slot_length)  # type: ignore[arg-type]
    with pytest.raises(GenesisError):
        Chain(app_state=state)


def test_invalid_matching_mode_at_genesis() -> None:
    with pytest.raises(GenesisError):
        Chain(app_state=market_app_state(mode=2))
