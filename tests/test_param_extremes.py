"""Parameters at their bounds and the largest participants the registry admits: no block step fails, no
transaction hits an internal error, nothing overflows, every invariant holds (docs/state.md, "Arithmetic
bounds")."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from abci_app.ledger import codec
from abci_app.ledger.invariants import violations
from abci_app.ledger.modules.market.msgs import PlaceOrder
from abci_app.ledger.modules.registry.msgs import MAX_CAPACITY_W
from abci_app.ledger.modules.settlement import Reading, SubmitReadings, reading_sign_bytes
from abci_app.ledger.modules.settlement.keys import RESERVE_ID
from abci_app.ledger.params import MAX_METERS, MAX_PRICE, Params
from tests.harness import GENESIS_TIME, ZONE_A, ZONE_B, Chain, default_app_state, events_of, seeded_key
from tests.market_harness import put_debt, state_of

DAY = 86_400
MAX_INT = codec.MAX_INT


def world(participants: int, meters_each: int, params: dict[str, int], balances: dict[int, int],
          fee: int) -> Chain:
    """Participants p0, p1, ... in zone-a (even) and zone-b (odd), each with ``meters_each`` meters of the
    largest capacity, both directions; the zone fees (own zone and across) at ``fee`` per DSO component."""
    keys = {name: seeded_key(name) for name in ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol")}
    state: dict[str, Any] = default_app_state(keys)
    state["params"].update(params)
    state["participants"] = []
    state["meters"] = []
    names = [f"p{i}" for i in range(participants)]
    for i, name in enumerate(names):
        key = seeded_key(name)
        keys[name] = key
        zone, dso = (ZONE_A, "dso-a") if i % 2 == 0 else (ZONE_B, "dso-b")
        state["participants"].append({"pubkey": key.pubkey.hex(), "role": "prosumer", "zone": zone, "dso": dso,
                                      "balance": balances.get(i, 0)})
        state["meters"] += [{"id": meter_id(name, m), "pubkey": seeded_key(f"meter-{name}-{m}").pubkey.hex(),
                             "owner_pubkey": key.pubkey.hex(), "import_capacity_w": MAX_CAPACITY_W,
                             "export_capacity_w": MAX_CAPACITY_W} for m in range(meters_each)]
    state["grid_fees"] = [{"dso": dso, "from": src, "to": dst, "fee": fee}
                          for dso, zone in (("dso-a", ZONE_A), ("dso-b", ZONE_B))
                          for src, dst in ((zone, zone), (ZONE_A, ZONE_B), (ZONE_B, ZONE_A))]
    chain = Chain(app_state=state, keys=keys)
    chain.block()
    return chain


def meter_id(name: str, index: int) -> str:
    return f"m-{name}-{index}"


def signed_reading(chain: Chain, name: str, index: int, timestamp: int, imported: int, exported: int) -> Reading:
    key = seeded_key(f"meter-{name}-{index}")
    mid = meter_id(name, index)
    return Reading(meter_id=mid, timestamp=timestamp, import_register_wh=imported, export_register_wh=exported,
                   signature=key.sign(reading_sign_bytes(chain.chain_id, mid, timestamp, imported, exported)))


def assert_sound(chain: Chain, responses: list[Any]) -> None:
    """No block step failed, no transaction met an internal error, money is conserved, invariants hold."""
    for response in responses:
        assert not events_of(response, "block_step.failed")
        assert all(result.code != 1 for result in response.tx_results), [r.log for r in response.tx_results]
    state = state_of(chain)
    assert violations(state) == []
    supply = chain.query("/supply")["total"]
    accounts = [chain.id(name) for name in chain.keys] + [RESERVE_ID]
    assert sum(chain.query(f"/account/{a}")["balance"] for a in accounts if _exists(chain, a)) == supply


def _exists(chain: Chain, account: str) -> bool:
    try:
        chain.query(f"/account/{account}")
    except LookupError:
        return False
    return True


def test_the_largest_participants_at_the_highest_prices_saturate_slot_totals_and_debt() -> None:
    """50 participants of 100 meters x 100 MW on day-long slots, every price at 10^9 per kWh (fees at half): one
    silent day bills each 2.4 x 10^11 Wh; the slot's totals pass 2^63 - 1 and saturate, a debt near the top is capped,
    and the pay fraction keeps the reserve's payments within its balance."""
    prices = {name: MAX_PRICE for name in ("max_price_per_kwh", "collateral_per_kwh", "balancing_buy_price",
                                            "balancing_sell_price", "supplier_tariff", "feed_in_tariff")}
    params = {**prices, "slot_length_s": DAY, "max_meters_per_participant": MAX_METERS, "tick_size": 1,
              "settlement_window_s": 60, "settlement_batch": 100_000, "max_tx_bytes": 1 << 20}
    chain = world(50, MAX_METERS, params, balances={0: 10**18, 1: 10**18, 2: 10**18}, fee=MAX_PRICE // 2)
    slot = GENESIS_TIME + DAY
    full = MAX_METERS * MAX_CAPACITY_W * DAY // 3_600  # 2.4 x 10^11 Wh: the slot's whole capacity
    # An order's quantity x price stays within 2^63 - 1 (code 21): 9 x 10^9 Wh at the highest price. The ask
    # plus the zone's fee is the highest price, so the bid crosses it.
    ask, bid = 9 * 10**9, 2 * 10**9
    responses = [chain.block([chain.sign("p0", PlaceOrder(side="ask", slot=slot, price=MAX_PRICE // 2, quantity_wh=ask,
                                                          tif="limit", valid_until=slot, client_order_id="",
                                                          origin="solar", accept_origins=())),
                              chain.sign("p2", PlaceOrder(side="bid", slot=slot, price=MAX_PRICE,
                                                          quantity_wh=bid, tif="limit", valid_until=slot,
                                                          client_order_id="", origin="", accept_origins=()))])]
    assert [r.code for r in responses[0].tx_results] == [0, 0]
    put_debt(chain, "p3", MAX_INT - 10)
    # Every meter stays silent: the substitutes bill the whole import capacity of the genesis day and the next.
    responses.append(chain.block(dt=slot + DAY + 61 - chain.time))
    responses.append(chain.block())
    assert_sound(chain, responses)
    genesis_day = chain.query(f"/settlement/{GENESIS_TIME}")
    assert genesis_day["complete"] and genesis_day["participants"] == 50
    assert (genesis_day["charges"], genesis_day["debt"], genesis_day["lpd_due"]) == (MAX_INT, MAX_INT, MAX_INT)
    assert chain.account("p3")["debt"] == MAX_INT
    report = chain.query(f"/settlement/{GENESIS_TIME}/{chain.id('p3')}")
    assert report["debt_added"] == 10 and report["charged"] == full * (MAX_PRICE + MAX_PRICE // 2) // 1_000
    # The reserve paid at most what it held: the operators, who bear the defaulters' loss, are owed (the
    # participants are owed nothing: nobody was long), none was overpaid.
    assert genesis_day["operators_numerator"] < genesis_day["operators_denominator"]
    assert chain.query("/reserve")["owes"] > 0
    traded = chain.query(f"/settlement/{slot}/{chain.id('p0')}")
    assert (traded["sold_wh"], traded["shortfall_wh"]) == (bid, full + bid)


BOUNDED = sorted(Params.BOUNDS)
PARAM_VALUES = {name: (low, high, getattr(Params(), name)) for name, (low, high) in Params.BOUNDS.items()}


def consistent(params: dict[str, int]) -> bool:
    return (params["min_price_per_kwh"] <= params["max_price_per_kwh"]
            and params["balancing_sell_price"] <= params["balancing_buy_price"])


extremes = st.fixed_dictionaries({name: st.sampled_from(PARAM_VALUES[name]) for name in BOUNDED}).filter(consistent)


@settings(max_examples=100, deadline=None)
@given(params=extremes, slot_length=st.sampled_from((300, DAY)), flows=st.lists(
    st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=2, max_size=2), silent=st.booleans())
def test_every_parameter_at_its_bounds_runs_a_traded_and_settled_slot(params: dict[str, int], slot_length: int,
                                                                      flows: list[tuple[int, int]],
                                                                      silent: bool) -> None:
    """Any mix of lowest, highest and default values (floor <= cap, sell <= buy): a trade at the highest and
    lowest admissible prices, readings at full capacity or none, two slots settled."""
    params = {**params, "slot_length_s": slot_length, "gate_closure_lead_s": min(params["gate_closure_lead_s"],
                                                                                   slot_length)}
    params["max_slot_ahead_s"] = max(params["max_slot_ahead_s"], 2 * slot_length)
    meters = min(2, params["max_meters_per_participant"])
    chain = world(2, meters, params, balances={0: MAX_INT // 4, 1: MAX_INT // 4}, fee=params["max_price_per_kwh"])
    slot = (chain.time // slot_length + 2) * slot_length
    capacity = meters * MAX_CAPACITY_W * slot_length // 3_600
    quantity = max(params["min_quantity_wh"], capacity // 3)
    tick = params["tick_size"]
    high = params["max_price_per_kwh"] // tick * tick
    low = -(-params["min_price_per_kwh"] // tick) * tick
    orders = [chain.sign("p0", PlaceOrder(side="ask", slot=slot, price=low, quantity_wh=quantity, tif="limit",
                                          valid_until=slot, client_order_id="", origin="solar", accept_origins=())),
              chain.sign("p1", PlaceOrder(side="bid", slot=slot, price=high, quantity_wh=quantity, tif="limit",
                                          valid_until=slot, client_order_id="", origin="", accept_origins=()))]
    responses = [chain.block(orders)]
    event(f"orders: codes {[r.code for r in responses[0].tx_results]}")
    slot_end = slot + slot_length
    responses.append(chain.block(dt=slot_end - chain.time))
    if not silent:
        # Each meter's share of the participant's flow (a percentage of what all its meters can carry).
        readings = [signed_reading(chain, f"p{p}", m, slot_end, imported * capacity // (100 * meters),
                                   exported * capacity // (100 * meters))
                    for p, (imported, exported) in enumerate(flows) for m in range(meters)]
        responses.append(chain.block([chain.sign("dso", SubmitReadings(readings=tuple(readings)))]))
    deadline = slot_end + params["settlement_window_s"]
    responses.append(chain.block(dt=deadline + 1 - chain.time))
    # A small batch spreads the settlement of the slots so far over many blocks.
    while not _settled(chain, slot):
        assert len(responses) < 200, "settlement made no progress"
        responses.append(chain.block())
    assert_sound(chain, responses)
    event(f"blocks to settle: {'1' if len(responses) <= 5 else 'several'}")


def _settled(chain: Chain, slot: int) -> bool:
    try:
        complete: bool = chain.query(f"/settlement/{slot}")["complete"]
    except LookupError:
        return False
    return complete
