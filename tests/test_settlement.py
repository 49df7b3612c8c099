"""Settlement of delivered slots, with hand-computed outcomes (docs/settlement.md, "Worked examples").

Defaults of the market harness: collateral 20000/kWh, fees a->a = b->b = 10000, a<->b 30000; balancing buy
600000, sell 50000; supplier tariff 300000, feed-in 80000 per kWh. Participants start with 10 EUR
(10000000), operators with nothing unless a test funds them. Every meter reports every slot unless a test
says otherwise (tests.settlement_harness.Registers).
"""

from __future__ import annotations

from typing import Any

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.gov import CastVote, ParamChange, ProposeParams
from abci_app.ledger.modules.registry import Deactivate
from abci_app.ledger.modules.settlement.keys import RESERVE_ID
from tests.harness import Chain, events_of
from tests.market_harness import acceptance, market_app_state, offer, order, place
from tests.settlement_harness import SLOT, SLOT_END, Registers, advance_to, reading, submit

START = 10_000_000
SLOT_2 = SLOT + 900


def chain_with(**balances: int) -> Chain:
    state = market_app_state()
    for operator in state["operators"]:
        operator["balance"] = balances.get(operator["name"], 0)
    for participant, name in zip(state["participants"], ("alice", "bob", "carol", "dave", "erin"), strict=True):
        participant["balance"] = balances.get(name, START)
    chain = Chain(app_state=state)
    chain.block()
    return chain


def lpd(chain: Chain) -> str:
    """The balancing LPD: the voting LPD with the lowest account id."""
    return min(chain.id("lpd"), chain.id("lpd_b"))


def balance(chain: Chain, who: str) -> int:
    account_id = chain.id(who) if who in chain.keys else who
    return int(chain.query(f"/account/{account_id}")["balance"])


def report(chain: Chain, who: str, slot: int = SLOT) -> Any:
    return chain.query(f"/settlement/{slot}/{chain.id(who)}")


def deliver(chain: Chain, registers: Registers, flows: dict[str, tuple[int, int]], *,
            silent: tuple[str, ...] = ()) -> Registers:
    """Baseline readings at the slot's start, the slot's flows at its end, then settle it."""
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, flows, silent=silent)
    settle(chain, SLOT)
    return registers


def settle(chain: Chain, slot: int) -> None:
    """Blocks until the slot's settlement completes (the first block past its deadline starts it)."""
    advance_to(chain, max(chain.time + 1, slot + 900 + 3_600 + 1))
    for _ in range(20):
        total = chain.query(f"/settlement/{slot}") if _settled(chain, slot) else None
        if total is not None and total["complete"]:
            return
        chain.block(dt=1)
    raise AssertionError(f"slot {slot} did not settle")


def _settled(chain: Chain, slot: int) -> bool:
    try:
        chain.query(f"/settlement/{slot}")
    except LookupError:
        return False
    return True


# -- market regime ---------------------------------------------------------------------------------------
def test_basic_full_delivery_changes_nothing() -> None:
    chain = chain_with()
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))  # 2000 at 220000 + 30000 from zone b
    deliver(chain, Registers(), {"carol": (0, 2_000), "bob": (2_000, 0)})
    assert (balance(chain, "carol"), balance(chain, "bob")) == (START + 440_000, START - 500_000)
    assert chain.account("carol")["locked"] == chain.account("bob")["locked"] == 0
    assert balance(chain, lpd(chain)) == balance(chain, RESERVE_ID) == 0
    assert (report(chain, "carol")["charged"], report(chain, "bob")["charged"]) == (0, 0)


def test_basic_non_delivery_never_pays() -> None:
    """The review's case: sold at 900000 and delivered nothing. Before: +300000 for not delivering."""
    chain = chain_with()
    place(chain, "alice", order("ask", 1_000, 900_000))
    place(chain, "bob", order("bid", 1_000, 910_000))  # 900000 + fee 10000
    deliver(chain, Registers(), {"bob": (1_000, 0)})
    # alice: C = 1000, M = 0, D = -1000; nobody is long, so all of it is the LPD's net shortfall, charged at
    # max(her own price 900000, balancing 600000) = 900000: exactly what she received.
    alice = report(chain, "alice")
    assert (alice["shortfall_wh"], alice["price_high"], alice["balancing_charge"]) == (1_000, 900_000, 900_000)
    assert balance(chain, "alice") == START
    assert balance(chain, "bob") == START - 910_000  # unaffected
    # The reserve pays the LPD the balancing price for the energy it supplied and keeps the rest.
    assert (balance(chain, lpd(chain)), balance(chain, RESERVE_ID)) == (600_000, 300_000)
    total = chain.query(f"/settlement/{SLOT}")
    assert (total["balancing_bought_wh"], total["netted_wh"], total["lpd_due"]) == (1_000, 0, 600_000)


def test_basic_seller_delivers_half() -> None:
    chain = chain_with()
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))
    deliver(chain, Registers(), {"carol": (0, 1_000), "bob": (2_000, 0)})
    # carol: D = -1000 at max(220000, 600000): 600000.
    assert balance(chain, "carol") == START + 440_000 - 600_000
    assert balance(chain, "bob") == START - 500_000
    assert (balance(chain, lpd(chain)), balance(chain, RESERVE_ID)) == (600_000, 0)


def test_basic_offsetting_deviations_are_netted() -> None:
    """The review's case: seller 1000 Wh short, buyer 1000 Wh under-consuming. Before: the LPD kept 550000."""
    chain = chain_with()
    place(chain, "carol", order("ask", 1_000, 220_000, origin="wind"))
    place(chain, "dave", order("bid", 1_000, 230_000))  # zone b: 220000 + 10000
    deliver(chain, Registers(), {})
    # shortfall 1000 (carol) and surplus 1000 (dave) offset: no balancing energy. Reference price 220000.
    total = chain.query(f"/settlement/{SLOT}")
    assert (total["netted_wh"], total["reference_price"], total["balancing_bought_wh"]) == (1_000, 220_000, 0)
    assert report(chain, "carol")["balancing_charge"] == 220_000
    assert report(chain, "dave")["balancing_credit_due"] == 50_000  # min(220000, 50000)
    assert balance(chain, "carol") == START
    assert balance(chain, "dave") == START - 230_000 + 50_000
    assert (balance(chain, lpd(chain)), balance(chain, RESERVE_ID)) == (0, 170_000)


def test_basic_buyer_absorbs_less() -> None:
    chain = chain_with(**{"lpd-a": 1_000_000, "lpd-b": 1_000_000})
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))
    deliver(chain, Registers(), {"carol": (0, 2_000), "bob": (1_500, 0)})
    # bob: D = +500, paid min(his 220000, 50000) per kWh = 25000; the LPD takes the net surplus at 50000.
    assert balance(chain, "bob") == START - 500_000 + 25_000
    assert balance(chain, lpd(chain)) == 1_000_000 - 25_000
    assert report(chain, "bob")["credit_paid"] == 25_000


def test_basic_over_consumption_pays_the_network_too() -> None:
    chain = chain_with()
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "bob", order("bid", 1_000, 260_000))  # 240000 + 10000
    deliver(chain, Registers(), {"alice": (0, 1_000), "bob": (1_500, 0)})
    # bob: D = -500 at max(240000, 600000) = 300000, and 500 Wh of import not bought: 500 x 10000 = 5000 to
    # dso-a.
    bob = report(chain, "bob")
    assert (bob["balancing_charge"], bob["unmatched_import_wh"], bob["network_charge"]) == (300_000, 500, 5_000)
    assert balance(chain, "bob") == START - 250_000 - 305_000
    assert balance(chain, "dso") == 10_000 + 5_000  # the trade's fee, then the network charge


def test_basic_direct_trade_settles_like_a_book_trade() -> None:
    chain = chain_with()
    result = chain.deliver("bob", acceptance(chain, offer(chain, "carol", price=220_000, origin="wind"), "bob"))
    assert result.code == 0, result.log
    deliver(chain, Registers(), {"carol": (0, 1_000), "bob": (2_000, 0)})
    assert balance(chain, "carol") == START + 440_000 - 600_000
    assert balance(chain, "bob") == START - 500_000
    assert (report(chain, "carol")["sold_wh"], report(chain, "bob")["fees_paid"]) == (2_000, 60_000)


# -- tariff regime and silent meters ----------------------------------------------------------------------
def test_basic_energy_outside_the_market_is_billed_like_a_bill() -> None:
    chain = chain_with(**{"lpd-a": 1_000_000, "lpd-b": 1_000_000})
    deliver(chain, Registers(), {"bob": (1_500, 0), "erin": (0, 2_000)})
    # bob: no trades, 1500 Wh in: supply 1500 x 300000 = 450000 and network 1500 x 10000 = 15000.
    bob = report(chain, "bob")
    assert (bob["regime"], bob["supply_charge"], bob["network_charge"]) == ("tariff", 450_000, 15_000)
    assert balance(chain, "bob") == START - 465_000
    # erin: 2000 Wh out: feed-in 2000 x 80000 = 160000, bought by the LPD.
    assert report(chain, "erin")["feed_in_due"] == 160_000
    assert balance(chain, "erin") == START + 160_000
    # The LPD: +450000 supply, -160000 feed-in; dso-a +15000.
    assert balance(chain, lpd(chain)) == 1_000_000 + 450_000 - 160_000
    assert balance(chain, "dso") == 15_000


def test_basic_silent_meter_within_the_window_is_billed_when_it_reports() -> None:
    chain = chain_with()
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"bob": (1_500, 0)}, silent=("bob",))
    # 3000 Wh since SLOT: either slot could have drawn all of it (20 kW x 900 s = 5000 Wh), so each is
    # billed 3000 Wh, the worst case: a reading left out never pays.
    registers.read(chain, SLOT_END + 900, {"bob": (1_500, 0)})
    settle(chain, SLOT)
    settle(chain, SLOT_2)
    for slot in (SLOT, SLOT_2):
        bob = report(chain, "bob", slot)
        assert (bob["imported_wh"], bob["substituted"], bob["charged"]) == (3_000, False, 930_000)
    assert balance(chain, "bob") == START - 2 * 930_000


def test_basic_silent_meter_past_the_deadline_pays_the_substitute() -> None:
    """The review's case: a skipped reading used to be free energy (and the next one was not counted)."""
    chain = chain_with()
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"bob": (1_500, 0)}, silent=("bob",))
    settle(chain, SLOT)
    # Slot 1 settled without bob's reading: 20 kW x 900 s = 5000 Wh in, nothing out.
    bob = report(chain, "bob")
    assert (bob["imported_wh"], bob["substituted"], bob["supply_charge"], bob["network_charge"]) == (
        5_000, True, 1_500_000, 50_000)
    # bob reports at the end of slot 2: 3000 Wh since SLOT, all of which slot 2 could have drawn: it is billed
    # 3000 Wh (slot 1 was billed its substitute).
    registers.read(chain, SLOT_END + 900, {"bob": (1_500, 0)})
    settle(chain, SLOT_2)
    assert report(chain, "bob", SLOT_2)["imported_wh"] == 3_000
    assert balance(chain, "bob") == START - 1_550_000 - 930_000



def _two_slot_seller(skip_first_reading: bool) -> Chain:
    """carol sells 1000 Wh in each of two slots and exports nothing in the first, 2000 Wh in the second."""
    chain = chain_with()
    for slot in (SLOT, SLOT_2):
        place(chain, "carol", order("ask", 1_000, 220_000, origin="wind", slot=slot, valid_until=slot))
        place(chain, "dave", order("bid", 1_000, 230_000, slot=slot, valid_until=slot))
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"dave": (1_000, 0)}, silent=("carol",) if skip_first_reading else ())
    registers.read(chain, SLOT_END + 900, {"carol": (0, 2_000), "dave": (1_000, 0)})
    settle(chain, SLOT)
    settle(chain, SLOT_2)
    return chain


def test_invalid_gain_leaving_out_a_reading_cannot_move_energy_between_slots() -> None:
    """Averaged over the two slots, carol's 2000 Wh would cover both sales; she may not choose that by
    leaving out the first slot's reading: each slot gets the worst case, here no export in either."""
    honest, skipping = _two_slot_seller(False), _two_slot_seller(True)
    assert (report(honest, "carol")["exported_wh"], report(honest, "carol", SLOT_2)["exported_wh"]) == (0, 2_000)
    assert (report(skipping, "carol")["exported_wh"], report(skipping, "carol", SLOT_2)["exported_wh"]) == (0, 0)
    assert balance(skipping, "carol") < balance(honest, "carol")
    # dave, who consumed what he bought, is untouched either way.
    assert balance(skipping, "dave") == balance(honest, "dave")


def test_invalid_reading_while_an_earlier_slot_awaits_its_substitute() -> None:
    """Past a slot's deadline its substitute stands: a later reading cannot reach it first, even while the
    settlement works through a backlog one meter per block."""
    chain = chain_with()
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "dave", order("bid", 2_000, 230_000))
    set_settlement_batch(chain, 1)
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"dave": (2_000, 0)}, silent=("alice", "bob", "carol"))
    advance_to(chain, SLOT_END + 3_601)
    codes = []
    while not codes or codes[-1] != 0:  # carol's relay retries every block until the reading is accepted
        codes.append(submit(chain, reading(chain, "carol", SLOT_END + 900, 0, 4_000), relay="carol"))
        chain.block(dt=1)
    assert len(codes) > 1 and set(codes[:-1]) == {errors.ReadingTooLate.code}
    settle(chain, SLOT)
    carol = report(chain, "carol")
    # Accepted only once the slot had its substitute, which the reading did not replace.
    assert (carol["substituted"], carol["exported_wh"], carol["charged"]) == (True, 0, 1_200_000)

def test_basic_deactivated_meter_gets_no_substitute() -> None:
    chain = chain_with()
    registers = Registers()
    registers.read(chain, SLOT)
    assert chain.deliver("dso", Deactivate(kind="meter", target="m-bob")).code == 0
    registers.read(chain, SLOT_END, silent=("bob",))
    settle(chain, SLOT)
    with pytest.raises(LookupError):
        report(chain, "bob")
    assert balance(chain, "bob") == START


def set_settlement_batch(chain: Chain, batch: int) -> None:
    assert chain.deliver("dso", ProposeParams(changes=(ParamChange("settlement_batch", batch),),
                                              description="")).code == 0
    for voter in ("dso", "dso_b", "lpd"):
        assert chain.deliver(voter, CastVote(proposal_id=1, approve=True)).code == 0


def test_invalid_escape_proceeds_and_collateral_held_until_the_seller_is_charged() -> None:
    """A seller that does not deliver cannot move the sale's proceeds or collateral out first, not even
    between the blocks of a settlement spread out by a small settlement_batch."""
    chain = chain_with()
    assert chain.deliver("carol", Transfer(recipient=chain.id("alice"), amount=START - 40_000, memo="")).code == 0
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "dave", order("bid", 2_000, 230_000))
    set_settlement_batch(chain, 1)
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"dave": (2_000, 0)})
    assert chain.account("carol")["locked"] == 40_000 + 440_000
    advance_to(chain, SLOT_END + 3_601)
    escaped = 0
    while not _settled(chain, SLOT) or not chain.query(f"/settlement/{SLOT}")["complete"]:
        account = chain.account("carol")
        free = int(account["balance"]) - int(account["locked"])
        if free > 0 and chain.deliver("carol", Transfer(recipient=chain.id("alice"), amount=free, memo="")).code == 0:
            escaped += free
        chain.block(dt=1)
    assert escaped == 0
    carol = report(chain, "carol")
    assert (carol["charged"], carol["collateral_used"], carol["debt_added"]) == (1_200_000, 480_000, 720_000)


def test_basic_released_proceeds_repay_earlier_debt() -> None:
    """What a position held and its charge did not take is money the seller receives: it repays debt first."""
    chain = chain_with()
    following = SLOT + 900
    assert chain.deliver("carol", Transfer(recipient=chain.id("alice"), amount=START - 60_000, memo="")).code == 0
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "dave", order("bid", 2_000, 230_000))
    place(chain, "carol", order("ask", 1_000, 220_000, origin="wind", slot=following, valid_until=following))
    place(chain, "dave", order("bid", 1_000, 230_000, slot=following, valid_until=following))
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"dave": (2_000, 0)})  # carol delivers nothing in SLOT ...
    registers.read(chain, SLOT_END + 900, {"carol": (0, 1_000), "dave": (1_000, 0)})  # ... and all in the next
    settle(chain, SLOT)
    assert chain.account("carol")["debt"] == 1_200_000 - 480_000
    settle(chain, following)
    # The next slot charges her nothing: its 20000 collateral and 220000 proceeds repay her debt.
    assert report(chain, "carol", following)["charged"] == 0
    assert (chain.account("carol")["debt"], chain.account("carol")["locked"]) == (720_000 - 240_000, 0)


# -- debt -------------------------------------------------------------------------------------------------
def test_basic_debt_blocks_money_leaving_and_any_credit_repays_it() -> None:
    chain = chain_with()
    # carol keeps only the collateral her ask locks.
    assert chain.deliver("carol", Transfer(recipient=chain.id("alice"), amount=START - 40_000, memo="")).code == 0
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "dave", order("bid", 2_000, 230_000))
    registers = deliver(chain, Registers(), {"dave": (2_000, 0)})
    # carol delivers nothing: 2000 x 600000 = 1200000; she pays what was held for the slot, her 40000
    # collateral and the 440000 she received (she could not move it before settlement), and owes 720000.
    carol = report(chain, "carol")
    assert (carol["charged"], carol["collateral_used"], carol["paid_from_balance"], carol["debt_added"]) == (
        1_200_000, 480_000, 0, 720_000)
    assert (balance(chain, "carol"), chain.account("carol")["debt"]) == (0, 720_000)
    # The reserve could pay the LPD only 480000 of its 1200000: the rest is owed, on chain.
    assert balance(chain, lpd(chain)) == 480_000
    assert [(o["creditor"], o["amount"]) for o in chain.query(f"/owed/{RESERVE_ID}")["owed"]] == [
        (lpd(chain), 720_000)]
    # Debt: no withdrawal, no transfer, no order.
    for msg in (Withdraw(amount=1, agent=chain.id("lpd"), reference=""),
                Transfer(recipient=chain.id("bob"), amount=1, memo=""),
                order("ask", 1_000, 220_000, slot=SLOT + 7_200, valid_until=SLOT + 7_200, origin="wind")):
        assert chain.deliver("carol", msg).code == errors.AccountInDebt.code
    # Any money she receives repays first.
    result = chain.deliver("alice", Transfer(recipient=chain.id("carol"), amount=1_000_000, memo=""))
    assert events_of(result, "debt.repaid") == [{"account": chain.id("carol"), "amount": "720000"}]
    assert (balance(chain, "carol"), chain.account("carol")["debt"]) == (280_000, 0)
    assert balance(chain, RESERVE_ID) == 720_000
    # At the next slot's settlement the reserve pays its older debt to the LPD first.
    registers.read(chain, SLOT_END + 900)
    settle(chain, SLOT_2)
    assert balance(chain, lpd(chain)) == 1_200_000
    assert chain.query(f"/owed/{RESERVE_ID}")["owed"] == []


def test_basic_deposit_repays_debt_first() -> None:
    chain = chain_with(carol=40_000)
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "dave", order("bid", 2_000, 230_000))
    deliver(chain, Registers(), {"dave": (2_000, 0)})
    result = chain.deliver("lpd", Deposit(account=chain.id("carol"), amount=1_000_000, reference="repay"))
    assert events_of(result, "debt.repaid") == [{"account": chain.id("carol"), "amount": "720000"}]
    assert chain.account("carol")["debt"] == 0


# -- the LPD and the reserve -------------------------------------------------------------------------------
def test_basic_unsold_export_with_a_funded_lpd() -> None:
    chain = chain_with(**{"lpd-a": 1_000_000, "lpd-b": 1_000_000})
    deliver(chain, Registers(), {"erin": (0, 2_000)})
    assert balance(chain, "erin") == START + 160_000
    assert balance(chain, lpd(chain)) == 1_000_000 - 160_000
    assert chain.query(f"/owed/{lpd(chain)}")["owed"] == []


def test_basic_unsold_export_with_an_empty_lpd_is_owed_on_chain_and_paid_later() -> None:
    """The review's case: with an empty LPD nothing used to be recorded as owed."""
    chain = chain_with()
    registers = deliver(chain, Registers(), {"erin": (0, 2_000)})
    assert balance(chain, "erin") == START
    assert report(chain, "erin")["credit_owed"] == 160_000
    assert [(o["creditor"], o["amount"], o["reason"]) for o in chain.query(f"/owed/{lpd(chain)}")["owed"]] == [
        (RESERVE_ID, 160_000, "reserve_settlement")]
    assert [(o["creditor"], o["amount"], o["reason"]) for o in chain.query(f"/owed/{RESERVE_ID}")["owed"]] == [
        (chain.id("erin"), 160_000, "feed_in")]
    # The LPD receives money; at the next slot's settlement it pays first, and erin is paid.
    assert chain.deliver("lpd_b", Deposit(account=lpd(chain), amount=500_000, reference="funds")).code == 0
    registers.read(chain, SLOT_END + 900)
    settle(chain, SLOT_2)
    assert balance(chain, "erin") == START + 160_000
    assert chain.query(f"/owed/{RESERVE_ID}")["owed"] == chain.query(f"/owed/{lpd(chain)}")["owed"] == []
    assert report(chain, "erin")["credit_paid"] == 160_000


def test_basic_unpaid_credits_are_shared_whatever_the_account_ids() -> None:
    chain = chain_with(**{"lpd-a": 100_000, "lpd-b": 100_000})
    deliver(chain, Registers(), {"erin": (0, 2_000), "alice": (0, 2_000)})
    # The LPD owes 320000 of feed-in and pays the 100000 it has; the reserve pays both exporters the same
    # fraction, 100000 / 320000: 50000 each, 110000 each owed.
    for who in ("erin", "alice"):
        assert balance(chain, who) == START + 50_000
        assert report(chain, who)["credit_owed"] == 110_000



@pytest.mark.parametrize("bob_balance", [START, 0])
def test_basic_an_exporter_is_paid_whether_or_not_an_importer_pays(bob_balance: int) -> None:
    """erin's feed-in is the LPD's to pay; bob's unpaid supply is the LPD's loss, not erin's."""
    chain = chain_with(bob=bob_balance, **{"lpd-a": 1_000_000, "lpd-b": 1_000_000})
    deliver(chain, Registers(), {"erin": (0, 2_000), "bob": (2_000, 0)})
    assert (report(chain, "erin")["credit_paid"], report(chain, "erin")["credit_owed"]) == (160_000, 0)
    bob_paid = 600_000 + 20_000 if bob_balance else 0  # 2000 Wh of supply and network charge
    # The LPD paid erin's 160000 and received what bob paid for his supply (all of it, or nothing).
    assert balance(chain, lpd(chain)) == 1_000_000 - 160_000 + (600_000 if bob_paid else 0)
    owed_to_lpd = [o["amount"] for o in chain.query(f"/owed/{RESERVE_ID}")["owed"] if o["creditor"] == lpd(chain)]
    assert owed_to_lpd == ([] if bob_paid else [600_000])


def test_basic_an_operators_earlier_claim_waits_for_this_slots_exporter() -> None:
    """The reserve's earlier debt to the LPD (bob never paid) does not take erin's feed-in of a later slot."""
    chain = chain_with(bob=0, **{"lpd-a": 1_000_000, "lpd-b": 1_000_000})
    registers = deliver(chain, Registers(), {"bob": (2_000, 0)})
    owed = chain.query(f"/owed/{RESERVE_ID}")["owed"]
    assert sorted(o["reason"] for o in owed) == ["lpd_settlement", "network_charge"]
    registers.read(chain, SLOT_END + 900, {"erin": (0, 2_000)})
    settle(chain, SLOT_2)
    erin = report(chain, "erin", SLOT_2)
    assert (erin["credit_paid"], erin["credit_owed"]) == (160_000, 0)


# -- phases, reports, statements ------------------------------------------------------------------------------
def test_basic_settles_in_batches() -> None:
    chain = chain_with()
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))
    assert chain.deliver("dso", ProposeParams(changes=(ParamChange("settlement_batch", 1),), description="")).code == 0
    for voter in ("dso", "dso_b", "lpd"):
        assert chain.deliver(voter, CastVote(proposal_id=1, approve=True)).code == 0
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"carol": (0, 2_000), "bob": (2_000, 0)})
    advance_to(chain, SLOT_END + 3_601)
    # One unit of work per block: a participant measured or charged, a meter substituted, a creditor paid.
    # The slots since genesis settle first (five participants each, all with zero energy), then SLOT.
    charged_per_block = []
    while not _settled(chain, SLOT) or not chain.query(f"/settlement/{SLOT}")["complete"]:
        charged_per_block.append(len(events_of(chain.block(dt=1), "settlement.participant")))
    assert max(charged_per_block) == 1
    assert sum(charged_per_block) == 5 * 5  # five slots (4 since genesis, then SLOT) of five participants
    assert chain.query(f"/settlement/{SLOT}")["participants"] == 5


def test_basic_report_fields() -> None:
    chain = chain_with()
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))
    deliver(chain, Registers(), {"carol": (0, 1_000), "bob": (2_000, 0)})
    assert report(chain, "carol") == {
        "slot": SLOT, "account": chain.id("carol"), "regime": "market", "bought_wh": 0, "sold_wh": 2_000,
        "contracted_wh": 2_000, "imported_wh": 0, "exported_wh": 1_000, "measured_wh": 1_000,
        "deviation_wh": -1_000, "substituted": False, "energy_paid": 0, "energy_received": 440_000, "fees_paid": 0,
        "price_high": 220_000, "price_low": 220_000, "shortfall_wh": 1_000, "surplus_wh": 0, "netted_wh": 0,
        "supplied_wh": 0, "fed_in_wh": 0, "unmatched_import_wh": 0, "balancing_charge": 600_000,
        "supply_charge": 0, "network_charge": 0, "charged": 600_000, "collateral_released": 480_000,
        "collateral_used": 480_000, "paid_from_balance": 120_000, "debt_added": 0, "debt_written_off": 0,
        "balancing_credit_due": 0, "feed_in_due": 0,
        "credit_paid": 0, "credit_owed": 0, "height": report(chain, "carol")["height"],
    }


def test_statement_lists_every_money_movement() -> None:
    chain = chain_with()
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))
    deliver(chain, Registers(), {"carol": (0, 1_000), "bob": (2_000, 0)})
    lines = chain.query(f"/statement/{chain.id('carol')}/0/{chain.time + 1}")["lines"]
    assert [(line["kind"], line["amount"]) for line in lines] == [("energy_sold", 440_000),
                                                                  ("balancing_charge", -600_000)]
    bob = chain.query(f"/statement/{chain.id('bob')}/0/{chain.time + 1}")["lines"]
    assert [(line["kind"], line["amount"]) for line in bob] == [("energy_bought", -440_000), ("grid_fee", -60_000)]
    reserve = chain.query(f"/statement/{RESERVE_ID}/0/{chain.time + 1}")["lines"]
    assert [(line["kind"], line["amount"]) for line in reserve] == [("settlement_collected", 600_000),
                                                                    ("lpd_settlement_paid", -600_000)]
