"""Property tests of settlement over random workloads, in both matching modes (docs/settlement.md).

Random trades in one slot, random deliveries and consumption, random silent meters; then the slot and the
next settle. Checked on every example:

* money is conserved: the balances (participants, operators, the reserve) sum to the supply;
* no lock outlives the settlement, no balance is negative, every module invariant holds;
* nobody gains by breaking a promise: a party short of its contract pays per missing kWh at least its own
  trade price, and at least the balancing buy price for what the LPD had to supply;
* the honest counterparty is unaffected: a party that delivered or consumed exactly its contract ends the
  same whatever the others delivered;
* the outcome does not depend on account ids: the same workload with every participant's key (hence id and
  settlement order) changed gives every participant the same balance;
* two chains fed the same blocks agree on the app hash.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from abci_app.ledger.invariants import violations
from abci_app.ledger.modules.market.records import amount
from abci_app.ledger.modules.settlement.keys import RESERVE_ID
from tests.harness import Chain, seeded_key
from tests.market_harness import SLOT, market_app_state, order, state_of
from tests.settlement_harness import METERS, SLOT_END, advance_to, reading, submit

SELLERS = ("alice", "erin", "carol")
BUYERS = ("bob", "dave", "alice", "erin")
NAMES = ("alice", "bob", "carol", "dave", "erin")
CAPACITY = {"alice": (5_000, 5_000), "bob": (5_000, 0), "carol": (0, 5_000), "dave": (5_000, 0),
            "erin": (5_000, 5_000)}
"""Wh per slot each meter can import / export (20 kW x 900 s)."""

trade_plan = st.lists(st.tuples(st.sampled_from(SELLERS), st.sampled_from(BUYERS),
                                st.sampled_from((100, 500, 1_000, 2_000)),
                                st.sampled_from((200_000, 230_000, 260_000, 900_000))), min_size=1, max_size=5)
deliveries = st.fixed_dictionaries({name: st.tuples(st.integers(0, 100), st.integers(0, 100)) for name in NAMES})
"""Per participant: import and export as a percentage of its meter's capacity (then capped by it)."""
silent = st.sets(st.sampled_from(NAMES), max_size=2)


def make_chain(mode: int, key_suffix: str) -> Chain:
    keys = {name: seeded_key(name + key_suffix) for name in NAMES}
    state = copy.deepcopy(market_app_state(mode))
    by_old = {seeded_key(name).pubkey.hex(): keys[name].pubkey.hex() for name in NAMES}
    for entry in state["participants"]:
        entry["pubkey"] = by_old[entry["pubkey"]]
    for entry in state["meters"]:
        entry["owner_pubkey"] = by_old[entry["owner_pubkey"]]
    for operator in state["operators"]:
        operator["balance"] = 2_000_000 if operator["role"] == "lpd" else 0
    chain = Chain(app_state=state)
    for name in NAMES:
        chain.keys[name] = keys[name]
    chain.block()
    return chain


def play(mode: int, plan: list[tuple[str, str, int, int]], flows: dict[str, tuple[int, int]],
         quiet: frozenset[str], key_suffix: str = "") -> Chain:
    chain = make_chain(mode, key_suffix)
    for seller, buyer, quantity, price in plan:
        if seller != buyer:
            chain.deliver(seller, order("ask", quantity, price))
            chain.deliver(buyer, order("bid", quantity, price + 30_000))
    advance_to(chain, SLOT)
    assert submit(chain, *[reading(chain, name, SLOT, 0, 0) for name in METERS]) == 0
    readings = []
    for name in METERS:
        imported = CAPACITY[name][0] * flows[name][0] // 100
        exported = CAPACITY[name][1] * flows[name][1] // 100
        if name not in quiet:
            readings.append(reading(chain, name, SLOT_END, imported, exported))
    advance_to(chain, SLOT_END)
    if readings:
        assert submit(chain, *readings) == 0
    advance_to(chain, SLOT_END + 3_601)
    while not chain.query(f"/settlement/{SLOT}")["complete"]:
        chain.block(dt=1)
    return chain


def balances(chain: Chain) -> dict[str, int]:
    return {name: chain.account(name)["balance"] for name in NAMES}


def all_balances(chain: Chain) -> int:
    operators = [op["account"] for op in chain.query("/operators")["operators"]]
    accounts = [chain.id(name) for name in NAMES] + operators + [RESERVE_ID]
    return sum(chain.query(f"/account/{account}")["balance"] for account in accounts)


def reports(chain: Chain) -> dict[str, Any]:
    return {name: chain.query(f"/settlement/{SLOT}/{chain.id(name)}") for name in NAMES
            if _has_report(chain, name)}


def _has_report(chain: Chain, name: str) -> bool:
    try:
        chain.query(f"/settlement/{SLOT}/{chain.id(name)}")
    except LookupError:
        return False
    return True


def check_one_world(chain: Chain) -> None:
    assert all_balances(chain) == chain.query("/supply")["total"]
    for name in NAMES:
        account = chain.account(name)
        assert account["balance"] >= 0 and account["locked"] == 0, (name, account)
    assert violations(state_of(chain)) == []
    params = chain.query("/params")
    total = chain.query(f"/settlement/{SLOT}")
    for name, report in reports(chain).items():
        if report["shortfall_wh"]:
            event("a party fell short")
            # Failing to deliver (or consuming more) never pays: at least its own price on every missing kWh,
            # and the balancing buy price on the part the LPD supplied.
            assert report["balancing_charge"] >= amount(report["shortfall_wh"], report["price_high"]), name
            external = report["shortfall_wh"] - report["shortfall_wh"] * total["netted_wh"] // total["shortfall_wh"]
            assert report["balancing_charge"] >= amount(external, params["balancing_buy_price"]), name
        if report["surplus_wh"]:
            assert report["balancing_credit_due"] <= amount(
                report["surplus_wh"], min(report["price_low"], params["balancing_sell_price"])), name


@settings(max_examples=200, deadline=None)
@given(st.sampled_from((0, 1)), trade_plan, deliveries, silent)
def test_settlement_conserves_money_and_rewards_no_broken_promise(
        mode: int, plan: list[tuple[str, str, int, int]], flows: dict[str, tuple[int, int]],
        quiet: set[str]) -> None:
    chain = play(mode, plan, flows, frozenset(quiet))
    twin = play(mode, plan, flows, frozenset(quiet))
    check_one_world(chain)
    assert chain.app.committed.app_hash == twin.app.committed.app_hash


@settings(max_examples=200, deadline=None)
@given(st.sampled_from((0, 1)), trade_plan, deliveries, deliveries, st.sampled_from(NAMES))
def test_honest_party_is_unaffected_by_what_others_deliver(
        mode: int, plan: list[tuple[str, str, int, int]], flows: dict[str, tuple[int, int]],
        other_flows: dict[str, tuple[int, int]], honest: str) -> None:
    first = play(mode, plan, flows, frozenset())
    contract = first.query(f"/settlement/{SLOT}/{first.id(honest)}") if _has_report(first, honest) else None
    if contract is None or not (contract["bought_wh"] or contract["sold_wh"]):
        return
    # The honest party delivers exactly its contract (no unmatched import); everyone else at random.
    exact = (contract["bought_wh"], contract["sold_wh"])
    if exact[0] > CAPACITY[honest][0] or exact[1] > CAPACITY[honest][1]:
        return
    as_percent = (exact[0] * 100 // CAPACITY[honest][0] if CAPACITY[honest][0] else 0,
                  exact[1] * 100 // CAPACITY[honest][1] if CAPACITY[honest][1] else 0)
    if (CAPACITY[honest][0] * as_percent[0] // 100, CAPACITY[honest][1] * as_percent[1] // 100) != exact:
        return
    event("compared an honest party across two worlds")
    worlds = [play(mode, plan, {**f, honest: as_percent}, frozenset()) for f in (flows, other_flows)]
    outcomes = [w.account(honest)["balance"] for w in worlds]
    assert outcomes[0] == outcomes[1], (honest, exact, outcomes)
    for world in worlds:
        report = world.query(f"/settlement/{SLOT}/{world.id(honest)}")
        assert report["deviation_wh"] == 0 and report["charged"] == 0 and report["credit_paid"] == 0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from((0, 1)), trade_plan, deliveries, silent)
def test_outcome_does_not_depend_on_account_ids(mode: int, plan: list[tuple[str, str, int, int]],
                                                flows: dict[str, tuple[int, int]], quiet: set[str]) -> None:
    original = play(mode, plan, flows, frozenset(quiet))
    renamed = play(mode, plan, flows, frozenset(quiet), key_suffix="-renamed")
    assert sorted(original.id(n) for n in NAMES) != sorted(renamed.id(n) for n in NAMES)
    assert balances(original) == balances(renamed)
