"""Settlement of a delivered slot, table-driven with hand-computed outcomes (docs/settlement.md).

Defaults of the market harness: collateral 20000/kWh, fees a->a 10000, b->a 30000; balancing
buy 600000, sell 50000 per kWh. Everybody starts with 10 EUR = 10000000.
"""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Deposit
from tests.harness import Chain, events_of
from tests.market_harness import acceptance, market_app_state, offer, order, place
from tests.settlement_harness import SLOT, SLOT_END, advance_to, baseline, reading, settle, submit

START = 10_000_000


def chain_with(**balances: int) -> Chain:
    state = market_app_state()
    state["meters"].append({"id": "m-alice-pv", "pubkey": _meter_pub("alice-pv"),
                            "owner_pubkey": state["meters"][0]["owner_pubkey"], "export_capacity_w": 10_000})
    for operator in state["operators"]:
        operator["balance"] = balances.get(operator["name"], 0)
    for participant, name in zip(state["participants"], ("alice", "bob", "carol", "dave", "erin"), strict=True):
        participant["balance"] = balances.get(name, START)
    chain = Chain(app_state=state)
    chain.block()
    return chain


def _meter_pub(name: str) -> str:
    from tests.harness import seeded_key
    return seeded_key(f"meter-{name}").pubkey.hex()


def carol_sells_bob_2kwh(chain: Chain) -> None:
    """Trade 2000 Wh at 220000 + fee 30000: bob pays 440000 + 60000; 40000 collateral each."""
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))


def lpd(chain: Chain) -> str:
    return min(chain.id("lpd"), chain.id("lpd_b"))


def report(chain: Chain, who: str) -> dict[str, int]:
    answer: dict[str, int] = chain.query(f"/settlement/{SLOT}/{chain.id(who)}")
    return answer


@pytest.mark.parametrize(("carol_export", "bob_import", "carol_after", "bob_after", "lpd_after"), [
    # full delivery: D = 0 for both; collateral released
    (2_000, 2_000, START + 440_000, START - 500_000, 1_000_000),
    # seller delivers half: carol D = -1000 -> pays amount(1000, 600000) = 600000
    (1_000, 2_000, START + 440_000 - 600_000, START - 500_000, 1_600_000),
    # buyer absorbs less: bob D = +500 -> LPD pays amount(500, 50000) = 25000
    (2_000, 1_500, START + 440_000, START - 500_000 + 25_000, 975_000),
    # seller sends no readings: carol D = -2000 -> pays 1200000
    (None, 2_000, START + 440_000 - 1_200_000, START - 500_000, 2_200_000),
])
def test_basic(carol_export: int | None, bob_import: int, carol_after: int, bob_after: int, lpd_after: int) -> None:
    chain = chain_with(**{"lpd-a": 1_000_000, "lpd-b": 1_000_000})
    carol_sells_bob_2kwh(chain)
    meters = ("bob",) if carol_export is None else ("bob", "carol")
    baseline(chain, meters)
    advance_to(chain, SLOT_END)
    assert submit(chain, reading(chain, "bob", SLOT_END, bob_import, 0)) == 0
    if carol_export is not None:
        assert submit(chain, reading(chain, "carol", SLOT_END, 0, carol_export)) == 0
    settle(chain)
    assert (chain.account("carol")["balance"], chain.account("carol")["locked"]) == (carol_after, 0)
    assert (chain.account("bob")["balance"], chain.account("bob")["locked"]) == (bob_after, 0)
    assert chain.query(f"/account/{lpd(chain)}")["balance"] == lpd_after
    assert chain.query(f"/settlement/{SLOT}")["complete"] is True
    assert chain.query("/supply")["total"] == 5 * START + 2_000_000


def test_basic_direct_trade_settles_like_a_book_trade() -> None:
    """carol's off-chain ask offer accepted by bob: the same obligations as carol_sells_bob_2kwh."""
    chain = chain_with(**{"lpd-a": 1_000_000, "lpd-b": 1_000_000})
    result = chain.deliver("bob", acceptance(chain, offer(chain, "carol", price=220_000, origin="wind"), "bob"))
    assert result.code == 0, result.log
    baseline(chain, ("bob", "carol"))
    advance_to(chain, SLOT_END)
    assert submit(chain, reading(chain, "bob", SLOT_END, 2_000, 0), reading(chain, "carol", SLOT_END, 0, 1_000)) == 0
    settle(chain)
    # carol delivered half: D = -1000 -> amount(1000, 600000) charged, as in the book-trade table above.
    assert (chain.account("carol")["balance"], chain.account("carol")["locked"]) == (START + 440_000 - 600_000, 0)
    assert (chain.account("bob")["balance"], chain.account("bob")["locked"]) == (START - 500_000, 0)
    assert (report(chain, "carol")["sold_wh"], report(chain, "bob")["fees_paid"]) == (2_000, 60_000)


def test_basic_report_fields() -> None:
    chain = chain_with()
    carol_sells_bob_2kwh(chain)
    baseline(chain, ("bob", "carol"))
    advance_to(chain, SLOT_END)
    assert submit(chain, reading(chain, "bob", SLOT_END, 2_000, 0), reading(chain, "carol", SLOT_END, 0, 1_000)) == 0
    settle(chain)
    assert report(chain, "carol") == {
        "slot": SLOT, "account": chain.id("carol"), "bought_wh": 0, "sold_wh": 2_000, "contracted_wh": 2_000,
        "imported_wh": 0, "exported_wh": 1_000, "measured_wh": 1_000, "deviation_wh": -1_000,
        "energy_paid": 0, "energy_received": 440_000, "fees_paid": 0, "balancing_charge": 600_000,
        "balancing_credit": 0, "collateral_released": 40_000, "collateral_used": 40_000,
        "paid_from_balance": 560_000, "debt_added": 0, "credit_unpaid": 0, "height": chain.height,
    }
    assert report(chain, "bob")["fees_paid"] == 60_000


def test_basic_prosumer_buys_and_sells_with_two_meters() -> None:
    chain = chain_with()
    place(chain, "alice", order("ask", 3_000, 240_000))
    place(chain, "bob", order("bid", 3_000, 260_000))  # 3000 at 240000 + 10000: alice receives 720000
    place(chain, "carol", order("ask", 1_000, 220_000, origin="wind"))
    place(chain, "alice", order("bid", 1_000, 260_000))  # 1000 at 220000 + 30000: alice pays 250000
    baseline(chain, ("alice", "alice-pv", "bob", "carol"))
    advance_to(chain, SLOT_END)
    assert submit(chain, reading(chain, "alice", SLOT_END, 1_000, 0), reading(chain, "alice-pv", SLOT_END, 0, 2_500),
                  reading(chain, "bob", SLOT_END, 3_000, 0), reading(chain, "carol", SLOT_END, 0, 1_000)) == 0
    settle(chain)
    # alice: C = 3000 - 1000 = 2000, M = 2500 - 1000 = 1500, D = -500 -> charge amount(500, 600000) = 300000
    alice = report(chain, "alice")
    assert (alice["contracted_wh"], alice["measured_wh"], alice["deviation_wh"], alice["balancing_charge"]) == (
        2_000, 1_500, -500, 300_000)
    assert chain.account("alice")["balance"] == START + 720_000 - 250_000 - 300_000
    assert chain.account("alice")["locked"] == 0


def test_basic_debt_when_charges_exceed_balance() -> None:
    chain = chain_with(carol=100_000, **{"lpd-a": 0, "lpd-b": 0})
    carol_sells_bob_2kwh(chain)  # carol: 100000 + 440000 = 540000, of which 40000 locked
    baseline(chain, ("bob",))
    advance_to(chain, SLOT_END)
    assert submit(chain, reading(chain, "bob", SLOT_END, 2_000, 0)) == 0
    settle(chain)
    # no readings: D = -2000, charge 1200000; 540000 paid (40000 of it collateral), 660000 debt
    carol = chain.account("carol")
    assert (carol["balance"], carol["locked"], carol["debt"]) == (0, 0, 660_000)
    assert report(chain, "carol")["debt_added"] == 660_000
    # debt blocks new orders
    result = chain.deliver("carol", order("ask", 1_000, 220_000, slot=SLOT + 3_600 * 2, valid_until=SLOT + 7_200))
    assert result.code == errors.AccountInDebt.code
    # a deposit repays the debt first
    result = chain.deliver("lpd", Deposit(account=chain.id("carol"), amount=1_000_000, reference="repay"))
    assert result.code == 0
    assert events_of(result, "debt.repaid") == [{"account": chain.id("carol"), "amount": "660000"}]
    carol = chain.account("carol")
    assert (carol["balance"], carol["debt"]) == (340_000, 0)
    assert chain.query(f"/account/{lpd(chain)}")["balance"] == 540_000 + 660_000


def test_basic_settles_in_batches() -> None:
    chain = chain_with()
    carol_sells_bob_2kwh(chain)
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "dave", order("bid", 1_000, 300_000))
    from abci_app.ledger.modules.gov import CastVote, ProposeParams
    from abci_app.ledger.modules.gov.records import ParamChange
    assert chain.deliver("dso", ProposeParams(changes=(ParamChange("settlement_batch", 1),), description="")).code == 0
    for voter in ("dso", "dso_b", "lpd"):
        assert chain.deliver(voter, CastVote(proposal_id=1, approve=True)).code == 0
    advance_to(chain, SLOT_END + 3_601)
    # four parties, one per block: the first block past the deadline settled one already
    settled = [events_of(chain.block(), "settlement.participant") for _ in range(3)]
    assert [len(s) for s in settled] == [1, 1, 1]
    assert chain.query(f"/settlement/{SLOT}")["participants"] == 4
    assert chain.query(f"/settlement/{SLOT}")["complete"] is True


def test_statement_lists_every_money_movement() -> None:
    chain = chain_with()
    carol_sells_bob_2kwh(chain)
    baseline(chain, ("bob", "carol"))
    advance_to(chain, SLOT_END)
    assert submit(chain, reading(chain, "bob", SLOT_END, 2_000, 0), reading(chain, "carol", SLOT_END, 0, 1_000)) == 0
    settle(chain)
    lines = chain.query(f"/statement/{chain.id('carol')}/0/{chain.time + 1}")["lines"]
    assert [(line["kind"], line["amount"]) for line in lines] == [("energy_sold", 440_000),
                                                                  ("balancing_charge", -600_000)]
    bob = chain.query(f"/statement/{chain.id('bob')}/0/{chain.time + 1}")["lines"]
    assert [(line["kind"], line["amount"]) for line in bob] == [("energy_bought", -440_000), ("grid_fee", -60_000)]
