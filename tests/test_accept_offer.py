"""accept_offer: a maker's signed off-chain offer and the taker's signed acceptance become one trade.

Hand-computed with the market harness (tests/market_harness.py): fee(a,a) = fee(b,b) = 10000,
fee(a,b) = fee(b,a) = 30000 (15000 to each DSO), collateral 20000/kWh, 5000 Wh per slot per meter
direction, 10 EUR per participant, amount(q, p) = floor(q x p / 1000). alice, bob and erin are in
zone a, carol and dave in zone b.
"""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from abci_app.ledger import errors
from abci_app.ledger.modules.market.direct import offer_sign_bytes
from abci_app.ledger.modules.market.msgs import AcceptOffer
from abci_app.ledger.modules.registry import Deactivate
from tests.harness import GENESIS_TIME, ZONE_A, ZONE_B, Chain, events_of, seeded_key
from tests.market_harness import (
    COLLATERAL,
    FEE_AA,
    FEE_AB,
    OFFER_PRICE,
    SLOT,
    acceptance,
    block_at,
    market_chain,
    market_rejected,
    money,
    offer,
    open_remaining,
    order,
    place,
    position,
    put_debt,
    trades,
)

TEN_EUR = 10_000_000
PRICE = OFFER_PRICE


pytestmark = pytest.mark.market


def accepted(chain: Chain, msg: AcceptOffer, sender: str) -> dict[str, str]:
    result = chain.deliver(sender, msg)
    assert result.code == 0, result.log
    return events_of(result, "trade")[0]


# -- basic ---------------------------------------------------------------------------------------------
def test_basic(chain: Chain) -> None:
    """An ask offer of alice (zone a) taken whole by bob (zone a): the book's trade, mechanism direct."""
    signed = offer(chain, "alice")
    result = chain.deliver("bob", acceptance(chain, signed, "bob"))
    assert result.code == 0, result.log
    assert [e.type for e in result.events] == ["order.placed", "order.placed", "order.filled", "order.filled",
                                               "trade", "offer.accepted"]
    placed = events_of(result, "order.placed")
    # The maker's order first, each with the offer id as its client reference; the bid's limit is all-in.
    assert [(p["account"], p["side"], p["price"], p["tif"], p["client_order_id"]) for p in placed] == [
        (chain.id("alice"), "ask", str(PRICE), "fok", signed.offer_id.hex()),
        (chain.id("bob"), "bid", str(PRICE + FEE_AA), "fok", signed.offer_id.hex()),
    ]
    trade = events_of(result, "trade")[0]
    assert (trade["mechanism"], trade["origin"], trade["price"], trade["fee_per_kwh"]) == (
        "direct", "solar", str(PRICE), str(FEE_AA))
    value, fee, collateral = 2_000 * PRICE // 1000, 2_000 * FEE_AA // 1000, 2_000 * COLLATERAL // 1000
    assert (trade["value"], trade["fee"]) == (str(value), str(fee))
    assert events_of(result, "offer.accepted") == [{
        "offer_id": signed.offer_id.hex(), "maker": chain.id("alice"), "taker": chain.id("bob"), "side": "ask",
        "slot": str(SLOT), "offer_quantity_wh": "2000", "quantity_wh": "2000", "offer_price": str(PRICE),
        "trade": trade["id"],
    }]
    assert money(chain, "bob") == (TEN_EUR - value - fee, collateral)
    assert money(chain, "alice") == (TEN_EUR + value, collateral + value)  # proceeds held until settlement
    assert chain.account("dso")["balance"] == fee
    assert trades(chain) == [("bob", "alice", 2_000, PRICE, FEE_AA)]
    # Nothing rests: the transient orders are filled and gone.
    assert open_remaining(chain, "alice") == [] and open_remaining(chain, "bob") == []
    assert (position(chain, "bob")["bought_wh"], position(chain, "bob")["collateral"]) == (2_000, collateral)
    assert (position(chain, "alice")["sold_wh"], position(chain, "alice")["bid_open_wh"]) == (2_000, 0)
    assert chain.query(f"/offer/{signed.offer_id.hex()}") == {
        "offer_id": signed.offer_id.hex(), "maker": chain.id("alice"), "taker": chain.id("bob"),
        "quantity_wh": 2_000, "trade": int(trade["id"]), "height": chain.app.committed.height,
        "time": chain.time,
    }


def test_basic_ask_across_zones(chain: Chain) -> None:
    """carol (zone b) sells to bob (zone a): the buyer pays the b->a fee, split between both DSOs."""
    trade = accepted(chain, acceptance(chain, offer(chain, "carol", origin="wind"), "bob", 1_000), "bob")
    assert (trade["price"], trade["fee_per_kwh"], trade["origin"], trade["quantity_wh"]) == (
        str(PRICE), str(FEE_AB), "wind", "1000")
    assert chain.account("dso")["balance"] == chain.account("dso_b")["balance"] == 1_000 * FEE_AB // 2 // 1000


def test_basic_bid_offer(chain: Chain) -> None:
    """dave (zone b) bids 300000 all-in; alice (zone a) sells: she receives it less the a->b fee."""
    trade = accepted(chain, acceptance(chain, offer(chain, "dave", "bid", 1_000, 300_000), "alice"), "alice")
    assert (trade["buyer"], trade["seller"], trade["price"], trade["fee_per_kwh"]) == (
        chain.id("dave"), chain.id("alice"), str(300_000 - FEE_AB), str(FEE_AB))
    # A seller accepting an any-origin bid claims no particular origin.
    assert trade["origin"] == "grid-mix"
    assert money(chain, "dave")[0] == TEN_EUR - 1_000 * 300_000 // 1000


def test_basic_bid_offer_insisting_on_an_origin(chain: Chain) -> None:
    trade = accepted(chain, acceptance(chain, offer(chain, "bob", "bid", 500, 260_000, origin="wind"), "erin"),
                     "erin")
    assert (trade["origin"], trade["price"], trade["seller"]) == ("wind", str(260_000 - FEE_AA), chain.id("erin"))


def test_basic_partial_acceptance_consumes_the_offer(chain: Chain) -> None:
    signed = offer(chain, "alice")
    trade = accepted(chain, acceptance(chain, signed, "bob", 500), "bob")
    assert trade["quantity_wh"] == "500"
    # The rest lapses: an offer is accepted once.
    market_rejected(chain, "erin", acceptance(chain, signed, "erin", 1_500), errors.OfferTaken)


def test_basic_in_call_auction_mode() -> None:
    """Direct trades are bilateral: they do not wait for the call auction."""
    chain = market_chain(mode=1)
    assert accepted(chain, acceptance(chain, offer(chain, "alice"), "bob"), "bob")["mechanism"] == "direct"


def test_basic_equal_offers_differ_by_salt(chain: Chain) -> None:
    accepted(chain, acceptance(chain, offer(chain, "alice", quantity_wh=1_000), "bob"), "bob")
    accepted(chain, acceptance(chain, offer(chain, "alice", quantity_wh=1_000, salt=b"\x01" * 16), "bob"), "bob")
    assert len(trades(chain)) == 2


def test_basic_offer_query_errors(chain: Chain) -> None:
    with pytest.raises(LookupError, match=r"code 101: offer 0+ has not been accepted"):
        chain.query(f"/offer/{'00' * 32}")
    for bad in ("00" * 31, "AB" * 32, "zz" * 32):
        with pytest.raises(LookupError, match=r"code 100: offer id .* is not 64 lowercase hex"):
            chain.query(f"/offer/{bad}")


def test_basic_valid_until_is_inclusive(chain: Chain) -> None:
    signed = offer(chain, "alice", valid_until=chain.time + 5)
    assert chain.deliver("bob", acceptance(chain, signed, "bob")).code == 0


# -- invalid: first acceptance wins ------------------------------------------------------------------------
def test_invalid_already_taken(chain: Chain) -> None:
    signed = offer(chain, "alice")
    accepted(chain, acceptance(chain, signed, "bob"), "bob")
    result = market_rejected(chain, "erin", acceptance(chain, signed, "erin"), errors.OfferTaken)
    assert "was accepted by " + chain.id("bob") in result.log


def test_invalid_same_acceptance_twice(chain: Chain) -> None:
    msg = acceptance(chain, offer(chain, "alice"), "bob")
    accepted(chain, msg, "bob")
    market_rejected(chain, "bob", msg, errors.OfferTaken)


def test_invalid_second_acceptance_in_the_same_block(chain: Chain) -> None:
    signed = offer(chain, "alice")
    results = chain.block([chain.sign("bob", acceptance(chain, signed, "bob")),
                           chain.sign("erin", acceptance(chain, signed, "erin"))]).tx_results
    assert [r.code for r in results] == [0, errors.OfferTaken.code]
    assert trades(chain) == [("bob", "alice", 2_000, PRICE, FEE_AA)]


# -- invalid: stateless (the transaction is refused before any state is read) -------------------------------
def test_invalid_offer_signature(chain: Chain) -> None:
    signed = offer(chain, "alice")
    forged = replace(signed, signature=chain.keys["erin"].sign(offer_sign_bytes(signed.body)))
    market_rejected(chain, "bob", acceptance(chain, forged, "bob"), errors.BadSignature, spends_nonce=False)


def test_invalid_acceptance_signature(chain: Chain) -> None:
    msg = acceptance(chain, offer(chain, "alice"), "bob")
    forged = replace(msg, acceptance=replace(msg.acceptance, signature=bytes(64)))
    market_rejected(chain, "bob", forged, errors.BadSignature, spends_nonce=False)


def test_invalid_changed_offer_after_acceptance(chain: Chain) -> None:
    """The acceptance names the offer id; a re-priced (and re-signed) offer is another offer."""
    signed = offer(chain, "alice")
    msg = acceptance(chain, signed, "bob")
    cheaper = offer(chain, "alice", price=PRICE - 100)
    market_rejected(chain, "bob", replace(msg, offer=cheaper), errors.MalformedBody, spends_nonce=False)


def test_invalid_maker_accepts_own_offer(chain: Chain) -> None:
    market_rejected(chain, "alice", acceptance(chain, offer(chain, "alice"), "alice"), errors.MalformedBody,
                    spends_nonce=False)


def test_invalid_quantity_above_offer(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice"), "bob", 2_001), errors.ValueOutOfRange,
                    spends_nonce=False)


def test_invalid_offer_fields(chain: Chain) -> None:
    for bad in (offer(chain, "alice", origin=""), offer(chain, "alice", "bid", origin="coal"),
                offer(chain, "alice", zone="not a zone")):
        market_rejected(chain, "bob", acceptance(chain, bad, "bob"), errors.MalformedBody, spends_nonce=False)


# -- invalid: who may accept ---------------------------------------------------------------------------------
def test_invalid_wrong_chain(chain: Chain) -> None:
    msg = acceptance(chain, offer(chain, "alice", chain_id="other-chain"), "bob")
    market_rejected(chain, "bob", msg, errors.WrongChainId)


def test_invalid_sent_by_someone_else(chain: Chain) -> None:
    market_rejected(chain, "erin", acceptance(chain, offer(chain, "alice"), "bob"), errors.NotAuthorised)


def test_invalid_unregistered_maker(chain: Chain) -> None:
    stranger = seeded_key("stranger")
    market_rejected(chain, "bob", acceptance(chain, offer(chain, stranger), "bob"), errors.UnknownAccount)


def test_invalid_operator_maker(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "dso", zone=ZONE_A), "bob"), errors.NotAuthorised)


def test_invalid_deactivated_maker(chain: Chain) -> None:
    signed = offer(chain, "alice")
    assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("alice"))).code == 0
    market_rejected(chain, "bob", acceptance(chain, signed, "bob"), errors.InactiveAccount)


def test_invalid_maker_in_debt(chain: Chain) -> None:
    put_debt(chain, "alice", 1)
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice"), "bob"), errors.AccountInDebt)


def test_invalid_taker_in_debt(chain: Chain) -> None:
    put_debt(chain, "bob", 1)
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice"), "bob"), errors.AccountInDebt)


def test_invalid_zone_not_the_makers(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice", zone=ZONE_B), "bob"), errors.WrongZone)


# -- invalid: the market's rules ------------------------------------------------------------------------------
def test_invalid_expired(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice", valid_until=chain.time), "bob"),
                    errors.OrderExpired)


def test_invalid_gate_closed(chain: Chain) -> None:
    block_at(chain, SLOT - 300)  # the gate of SLOT closes in this block
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice"), "bob"), errors.SlotClosed)


def test_invalid_misaligned_slot(chain: Chain) -> None:
    msg = acceptance(chain, offer(chain, "alice", slot=SLOT + 60, valid_until=SLOT), "bob")
    market_rejected(chain, "bob", msg, errors.MisalignedSlot)


def test_invalid_slot_too_far(chain: Chain) -> None:
    far = GENESIS_TIME + 100 * 86_400
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice", slot=far, valid_until=SLOT), "bob"),
                    errors.SlotTooFar)


def test_invalid_price_off_tick(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice", price=PRICE + 1), "bob"),
                    errors.PriceOffTick)


def test_invalid_price_above_cap(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice", "ask", 100, 10_000_100), "bob"),
                    errors.ValueOutOfRange)


def test_invalid_quantity_below_minimum(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice"), "bob", 99), errors.QuantityTooSmall)


def test_invalid_seller_capacity(chain: Chain) -> None:
    place(chain, "alice", order("ask", 4_000, 300_000))
    # 4000 Wh already offered on the book + 2000 Wh > 5000 Wh of export capacity.
    result = market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice"), "bob"), errors.CapacityExceeded)
    assert chain.id("alice") in result.log


def test_invalid_buyer_capacity(chain: Chain) -> None:
    market_rejected(chain, "bob", acceptance(chain, offer(chain, "carol", quantity_wh=6_000), "bob"),
                    errors.CapacityExceeded)


def test_invalid_buyer_funds(chain: Chain) -> None:
    # 5000 Wh at 1.99 EUR/kWh + 0.01 fee + 0.02 collateral = 10.15 EUR > bob's 10 EUR.
    result = market_rejected(chain, "bob", acceptance(chain, offer(chain, "alice", "ask", 5_000, 1_990_000), "bob"),
                             errors.InsufficientFunds)
    assert "the taker " + chain.id("bob") in result.log


def test_invalid_seller_funds(chain: Chain) -> None:
    place(chain, "alice", order("bid", 5_000, 1_970_000))  # locks 9.85 + 0.1 EUR: 0.05 EUR stay free
    # alice's ask needs 0.1 EUR of collateral for 5000 Wh.
    msg = acceptance(chain, offer(chain, "dave", "bid", 5_000, 300_000, slot=SLOT + 900, valid_until=SLOT), "alice")
    result = market_rejected(chain, "alice", msg, errors.InsufficientFunds)
    assert "the taker " + chain.id("alice") in result.log


def test_invalid_bid_does_not_cover_the_fee(chain: Chain) -> None:
    market_rejected(chain, "alice", acceptance(chain, offer(chain, "dave", "bid", 1_000, FEE_AB), "alice"),
                    errors.PriceBelowGridFee)
