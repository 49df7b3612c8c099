"""Property test of settlement: random trades and readings in one slot, then the slot settles.

Checked (docs/settlement.md): each settlement conserves money (balances still sum to /supply and
the participants' plus LPD's balance changes over the settlement blocks sum to zero), no lock
outlives the slot's settlement (every account's ``locked`` is 0 afterwards: no orders remain
open), no balance is negative, and two chains fed the same blocks agree on the app hash.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from abci_app.ledger.invariants import violations
from tests.harness import Chain
from tests.market_harness import market_chain, order, state_of
from tests.settlement_harness import SLOT, SLOT_END, baseline, reading, settle, submit

SELLERS = ("alice", "erin", "carol")
BUYERS = ("bob", "dave", "alice", "erin")
METERS = ("alice", "bob", "carol", "dave", "erin")

trade_plan = st.lists(st.tuples(st.sampled_from(SELLERS), st.sampled_from(BUYERS),
                                st.sampled_from((100, 500, 1_000, 2_000)),
                                st.sampled_from((200_000, 230_000, 260_000))), min_size=1, max_size=6)
flows = st.dictionaries(st.sampled_from(METERS), st.tuples(st.integers(0, 5_000), st.integers(0, 5_000)))


def balances(chain: Chain) -> dict[str, int]:
    return {name: chain.account(name)["balance"] for name in chain.keys if _exists(chain, name)}


def _exists(chain: Chain, name: str) -> bool:
    try:
        chain.account(name)
    except LookupError:
        return False
    return True


def play(plan: list[tuple[str, str, int, int]], readings: dict[str, tuple[int, int]]) -> Chain:
    chain = market_chain()
    for seller, buyer, quantity, price in plan:
        chain.deliver(seller, order("ask", quantity, price, origin="solar"))
        chain.deliver(buyer, order("bid", quantity, price + 30_000))
    baseline(chain, METERS)
    chain.block(dt=SLOT_END - chain.time)
    for meter, (imported, exported) in sorted(readings.items()):
        capacity = {"bob": (1, 0), "dave": (1, 0), "carol": (0, 1)}.get(meter, (1, 1))
        submit(chain, reading(chain, meter, SLOT_END, imported * capacity[0], exported * capacity[1]))
    return chain


@settings(max_examples=25, deadline=None)
@given(trade_plan, flows)
def test_settlement_conserves_money_and_releases_every_lock(plan: list[tuple[str, str, int, int]],
                                                           readings: dict[str, tuple[int, int]]) -> None:
    chain = play(plan, readings)
    twin = play(plan, readings)
    before = balances(chain)
    supply = chain.query("/supply")["total"]
    settle(chain)
    settle(twin)
    after = balances(chain)
    assert sum(after.values()) == sum(before.values()) == supply
    for name in after:
        account = chain.account(name)
        assert account["balance"] >= 0 and account["locked"] == 0, (name, account)
    if chain.query(f"/trades/slot/{SLOT}")["trades"]:
        assert chain.query(f"/settlement/{SLOT}")["complete"] is True
    assert chain.app.committed.app_hash == twin.app.committed.app_hash
    assert violations(state_of(chain)) == []
