"""Property tests of the market: random orders, cancels, fee changes and block-time jumps in both modes.

A hypothesis state machine drives two in-process chains with the same bytes and block times and
checks after every block (docs/market.md "Money held while an order is open"):

* every account's ``locked`` equals its open orders' locks plus the collateral of its positions,
  each open order locks exactly ``required_lock(remaining)``, and ``locked <= balance``;
* the balances sum to ``/supply`` (trades, fees and locks only move money);
* random off-chain offers are accepted (direct trades), some twice, some late, some by their maker,
  and no offer is accepted more than once;
* every trade respects both limits: ``price + fee_per_kwh <= bid limit`` and ``price >= ask limit``,
  the bid accepts the ask's origin, buyer and seller differ; in call mode all trades of a zone's
  clearing share the cleared price;
* no open order belongs to a closed slot or is past its ``valid_until``; positions' open
  quantities equal the open orders' remaining quantities;
* both chains return the same FinalizeBlock response (app hash, codes, events) at every height,
  and no transaction ends in an internal error.
"""

from __future__ import annotations

from collections import defaultdict
from random import Random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import event as hyp_event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from abci_app.ledger.invariants import violations
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.bank import keeper as bank
from abci_app.ledger.modules.market.direct import (
    Acceptance,
    OfferBody,
    SignedAcceptance,
    SignedOffer,
    accept_sign_bytes,
    offer_sign_bytes,
)
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.msgs import AcceptOffer, CancelOrder, FeeEntry, SetGridFees
from abci_app.ledger.modules.market.records import ORIGINS, TIME_IN_FORCE, Order
from abci_app.ledger.params import get_params
from abci_app.ledger.store import prefix_end
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import ZONE_A, ZONE_B, Chain
from tests.market_harness import market_chain, order, state_of

PARTICIPANTS = ("alice", "bob", "carol", "dave", "erin")
DSO_ZONES = {"dso": ZONE_A, "dso_b": ZONE_B}
PRICES = (*range(180_000, 300_001, 10_000), 250_050)  # one price off tick: rejected with 64
QUANTITIES = (100, 300, 1_000, 1_000, 2_500, 5_100)  # 5100 exceeds any meter's slot capacity
TIME_STEPS = (1, 5, 60, 300, 900, 3_600)
CODE_INTERNAL = 1


def open_orders(chain: Chain) -> list[Order]:
    kv = state_of(chain).kv
    return [Order.decode(raw) for _, raw in kv.iterate(b"mkt/order/", prefix_end(b"mkt/order/"))]


def attributes(event: Any) -> dict[str, str]:
    return {a.key: a.value for a in event.attributes}


class MarketMachine(RuleBasedStateMachine):
    MODE = 0

    def __init__(self) -> None:
        super().__init__()
        self.a = market_chain(self.MODE)
        self.b = market_chain(self.MODE)
        self.limits: dict[int, tuple[str, int, tuple[str, ...]]] = {}  # order id -> (side, price, accepted)
        self.offers: list[SignedOffer] = []  # off-chain offers made so far (accepted or not)
        self.accepted_offers: set[str] = set()  # ids of offers an offer.accepted event named

    # -- driving both chains ----------------------------------------------------------------------
    def run_block(self, txs: list[bytes], dt: int) -> None:
        responses = [chain.block(list(txs), dt) for chain in (self.a, self.b)]
        first, second = responses
        assert first.app_hash == second.app_hash, f"app hash diverged at height {self.a.height}"
        assert first.SerializeToString(deterministic=True) == second.SerializeToString(deterministic=True)
        for result in first.tx_results:
            hyp_event(f"tx code {result.code}")
            assert result.code != CODE_INTERNAL, f"internal error: {result.log}"
            if result.code != 0:
                assert not result.events
        events = list(first.events) + [e for r in first.tx_results for e in r.events]
        self.check_events(events)

    def check_events(self, events: list[abci.Event]) -> None:
        cleared: dict[tuple[str, str, str], int] = {}
        call_prices: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        for raw in events:
            attrs = attributes(raw)
            if raw.type == "order.placed":
                accepted = tuple(filter(None, attrs["accept_origins"].split(",")))
                self.limits[int(attrs["id"])] = (attrs["side"], int(attrs["price"]), accepted)
            elif raw.type == "trade":
                bid_side, bid_limit, accepted = self.limits[int(attrs["bid_order"])]
                ask_side, ask_limit, _ = self.limits[int(attrs["ask_order"])]
                price, fee = int(attrs["price"]), int(attrs["fee_per_kwh"])
                assert (bid_side, ask_side) == ("bid", "ask")
                assert price + fee <= bid_limit, attrs
                assert price >= ask_limit, attrs
                assert attrs["buyer"] != attrs["seller"]
                assert not accepted or attrs["origin"] in accepted
                assert int(attrs["value"]) == int(attrs["quantity_wh"]) * price // 1000
                hyp_event(f"trade ({attrs['mechanism']})")
                if attrs["mechanism"] == "call":
                    # Zones clear together; each (seller zone, origin) class has one price.
                    call_prices[(attrs["slot"], attrs["seller_zone"], attrs["origin"])].add(price)
            elif raw.type == "offer.accepted":
                # First acceptance wins: an offer is accepted at most once, for at most its quantity.
                assert attrs["offer_id"] not in self.accepted_offers, attrs
                self.accepted_offers.add(attrs["offer_id"])
                assert 0 < int(attrs["quantity_wh"]) <= int(attrs["offer_quantity_wh"])
            elif raw.type == "market.cleared":
                for item in attrs["prices"].split(","):
                    origin, class_price = item.split(":")
                    cleared[(attrs["slot"], attrs["zone"], origin)] = int(class_price)
            hyp_event(f"event {raw.type}")
        # Pay-as-clear: every trade of one zone's and origin's clearing is at the cleared price.
        for slot_zone, prices in call_prices.items():
            assert prices == {cleared[slot_zone]}, (slot_zone, prices, cleared)

    def sign(self, who: str, msg: Any) -> bytes:
        raw = self.a.sign(who, msg)
        self.b.nonces[self.b.id(who)] = self.a.nonces[self.a.id(who)]
        return raw

    def open_slots(self) -> list[int]:
        """The next slots whose gates are still open at the next block (5 s on)."""
        first = (self.a.time + 5 + 300) // 900 * 900 + 900
        return [first, first + 900, first + 1_800]

    # -- one rule: a Random seeded by hypothesis picks each block's content ------------------------
    # (hypothesis's own draws lean to the first choice of every list, which here would be alice
    # bidding the lowest price again and again; a seeded Random spreads the orders evenly while a
    # failure stays reproducible from the seeds hypothesis prints.)
    @rule(seed=st.integers(0, 2**32 - 1))
    def step(self, seed: int) -> None:
        rnd = Random(seed)
        action = rnd.choices(("place", "accept", "cancel", "fee", "time", "gate"), weights=(12, 3, 2, 1, 2, 2))[0]
        if action == "place":
            self.place_orders(rnd)
        elif action == "accept":
            self.accept_offers(rnd)
        elif action == "cancel":
            self.cancel_order(rnd)
        elif action == "fee":
            self.set_fee(rnd)
        elif action == "time":
            self.run_block([], rnd.choice(TIME_STEPS))
        else:
            self.close_first_gate(rnd)

    def place_orders(self, rnd: Random) -> None:
        """A block of 1 to 4 random orders: both sides, every tif, prices around the fees, some invalid."""
        dt = rnd.choice((1, 5, 30))
        txs = []
        for _ in range(rnd.randint(1, 4)):
            side = rnd.choice(("bid", "ask"))
            first, *later = self.open_slots()
            slot = rnd.choice((first, first, first, *later))
            valid_until = rnd.choice((slot, slot, slot, self.a.time + dt, self.a.time + 600))
            tifs = TIME_IN_FORCE if self.MODE == 0 else ("limit", "limit", "limit", "post_only", "ioc")
            accept = tuple(sorted(rnd.sample(ORIGINS[:3], rnd.choice((0, 0, 0, 0, 1, 2))))) if side == "bid" else ()
            msg = order(side, rnd.choice(QUANTITIES), rnd.choice(PRICES), slot=slot, valid_until=valid_until,
                        tif=rnd.choice(tifs), origin=rnd.choice(ORIGINS) if side == "ask" else "", accept=accept)
            txs.append(self.sign(rnd.choice(PARTICIPANTS), msg))
        self.run_block(txs, dt)

    def accept_offers(self, rnd: Random) -> None:
        """A block of one or two acceptances of a new or an earlier off-chain offer (direct trades).

        Takers race: the same offer may be accepted twice in one block or again later (code 75),
        accepted in part, after its gate or expiry, or by its own maker (refused statelessly).
        """
        dt = rnd.choice((1, 5, 30))
        txs = []
        for _ in range(rnd.randint(1, 2)):
            if self.offers and rnd.random() < 0.4:
                signed = rnd.choice(self.offers)
            else:
                signed = self.new_offer(rnd, dt)
                self.offers.append(signed)
            taker = rnd.choice(PARTICIPANTS)
            key = self.a.keys[taker]
            quantity = rnd.choice((signed.body.quantity_wh, signed.body.quantity_wh, 100, 1_000))
            body = Acceptance(chain_id=self.a.chain_id, offer_id=signed.offer_id, taker=key.account,
                              taker_pubkey=key.pubkey, quantity_wh=min(quantity, signed.body.quantity_wh))
            msg = AcceptOffer(offer=signed, acceptance=SignedAcceptance(body=body,
                                                                        signature=key.sign(accept_sign_bytes(body))))
            txs.append(self.sign(taker, msg))
        self.run_block(txs, dt)

    def new_offer(self, rnd: Random, dt: int) -> SignedOffer:
        maker = rnd.choice(PARTICIPANTS)
        key = self.a.keys[maker]
        side = rnd.choice(("bid", "ask"))
        slot = rnd.choice(self.open_slots())
        origin = rnd.choice(ORIGINS) if side == "ask" else rnd.choice(("", "", ORIGINS[0]))
        body = OfferBody(chain_id=self.a.chain_id, maker=key.account, maker_pubkey=key.pubkey, side=side,
                         quantity_wh=rnd.choice(QUANTITIES), price=rnd.choice(PRICES), slot=slot,
                         valid_until=rnd.choice((slot, self.a.time + dt, self.a.time)),
                         zone=self.a.account(maker)["zone"], origin=origin, salt=rnd.randbytes(16))
        return SignedOffer(body=body, signature=key.sign(offer_sign_bytes(body)))

    def cancel_order(self, rnd: Random) -> None:
        """Usually the owner cancels an open order; sometimes anyone tries any id."""
        orders = open_orders(self.a)
        names = {self.a.id(n): n for n in PARTICIPANTS}
        if orders and rnd.random() < 0.8:
            target = rnd.choice(orders)
            who, order_id = names[target.owner], target.id
        else:
            who, order_id = rnd.choice(PARTICIPANTS), rnd.randint(1, len(self.limits) + 2)
        self.run_block([self.sign(who, CancelOrder(order_id=order_id))], 5)

    def set_fee(self, rnd: Random) -> None:
        """A DSO changes one of its components (raising or lowering fees under resting orders)."""
        dso = rnd.choice(sorted(DSO_ZONES))
        own, other = DSO_ZONES[dso], rnd.choice((ZONE_A, ZONE_B))
        route = rnd.choice(((other, own), (own, other)))
        fee = rnd.choice((0, 5_000, 10_000, 15_000, 40_000))
        msg = SetGridFees(entries=(FeeEntry(from_zone=route[0], to_zone=route[1], fee_per_kwh=fee),))
        self.run_block([self.sign(dso, msg)], 5)

    def close_first_gate(self, rnd: Random) -> None:
        """Jump to (or past) the gate closure of the earliest slot with open orders."""
        slots = self.a.query("/slots")["slots"]
        target = slots[0] - 300 + rnd.choice((0, 0, 1, 900)) if slots else self.a.time + 900
        self.run_block([], max(1, target - self.a.time))

    # -- invariants -------------------------------------------------------------------------------
    @invariant()
    def every_module_invariant_holds(self) -> None:
        assert violations(state_of(self.a)) == []

    @invariant()
    def locks_are_what_orders_and_positions_require(self) -> None:
        state = state_of(self.a)
        market = Market(state)
        orders = open_orders(self.a)
        expected: dict[str, int] = defaultdict(int)
        open_wh: dict[tuple[int, str, str], int] = defaultdict(int)
        for o in orders:
            assert o.locked == o.required_lock(o.remaining_wh), o
            assert 0 < o.remaining_wh <= o.quantity_wh
            expected[o.owner] += o.locked
            open_wh[(o.slot, o.owner, o.side)] += o.remaining_wh
        for p in market.iter_positions():
            expected[p.account] += p.collateral
            assert p.bid_open_wh == open_wh.pop((p.slot, p.account, "bid"), 0), p
            assert p.ask_open_wh == open_wh.pop((p.slot, p.account, "ask"), 0), p
        assert not open_wh, f"open orders without a position: {open_wh}"
        total = 0
        for account in auth.iter_accounts(state):
            assert account.locked == expected.get(account.id, 0), account
            assert 0 <= account.locked <= account.balance, account
            total += account.balance
        assert total == bank.get_supply(state) == self.a.query("/supply")["total"]

    @invariant()
    def no_open_order_outlives_its_gate_or_validity(self) -> None:
        params = get_params(state_of(self.a))
        for o in open_orders(self.a):
            assert o.slot - params.gate_closure_lead_s > self.a.time, o
            assert o.valid_until >= self.a.time, o

    @invariant()
    def same_state_on_both_chains(self) -> None:
        assert self.a.app.committed.app_hash == self.b.app.committed.app_hash
        assert dict(self.a.app.committed.iterate(b"mkt/", None)) == dict(self.b.app.committed.iterate(b"mkt/", None))


class CallAuctionMachine(MarketMachine):
    MODE = 1


SETTINGS = settings(max_examples=60, stateful_step_count=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MarketMachine.TestCase.settings = SETTINGS
CallAuctionMachine.TestCase.settings = SETTINGS
TestContinuousMarket = MarketMachine.TestCase
TestCallAuctionMarket = CallAuctionMachine.TestCase
