"""set_grid_fees: DSOs publish their components of the zone-to-zone fee matrix (docs/market.md "Grid fees")."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.market.msgs import FeeEntry, SetGridFees
from tests.harness import ZONE_A, ZONE_B, Chain, events_of
from tests.market_harness import SLOT, market_rejected, money, order, place, trades

TEN_EUR = 10_000_000


pytestmark = pytest.mark.market


def fees(*entries: tuple[str, str, int]) -> SetGridFees:
    return SetGridFees(entries=tuple(FeeEntry(from_zone=a, to_zone=b, fee_per_kwh=f) for a, b, f in entries))


def matrix(chain: Chain) -> dict[tuple[str, str], int]:
    return {(f["from"], f["to"]): f["fee_per_kwh"] for f in chain.query("/fees")["fees"]}


def test_basic(chain: Chain) -> None:
    result = chain.deliver("dso", fees((ZONE_A, ZONE_A, 12_000), (ZONE_A, ZONE_B, 20_000)))
    assert result.code == 0, result.log
    assert events_of(result, "grid_fee.set") == [
        {"dso": chain.id("dso"), "from_zone": ZONE_A, "to_zone": ZONE_A, "fee_per_kwh": "12000"},
        {"dso": chain.id("dso"), "from_zone": ZONE_A, "to_zone": ZONE_B, "fee_per_kwh": "20000"},
    ]
    # fee(a,b) = dso-a's 20000 + dso-b's 15000
    assert matrix(chain) == {(ZONE_A, ZONE_A): 12_000, (ZONE_A, ZONE_B): 35_000, (ZONE_B, ZONE_A): 30_000,
                             (ZONE_B, ZONE_B): 10_000}
    components = chain.query("/fees")["components"]
    assert {"from_zone": ZONE_A, "to_zone": ZONE_B, "dso": chain.id("dso"), "fee_per_kwh": 20_000} in components
    assert {"from_zone": ZONE_A, "to_zone": ZONE_B, "dso": chain.id("dso_b"), "fee_per_kwh": 15_000} in components
    assert len(components) == 6


def test_basic_zero_removes_the_component(chain: Chain) -> None:
    assert chain.deliver("dso_b", fees((ZONE_A, ZONE_B, 0))).code == 0
    assert matrix(chain)[(ZONE_A, ZONE_B)] == 15_000
    assert [c["dso"] for c in chain.query("/fees")["components"]
            if (c["from_zone"], c["to_zone"]) == (ZONE_A, ZONE_B)] == [chain.id("dso")]


def test_basic_route_into_own_zone(chain: Chain) -> None:
    assert chain.deliver("dso", fees((ZONE_B, ZONE_A, 1_000))).code == 0
    assert matrix(chain)[(ZONE_B, ZONE_A)] == 16_000


def test_basic_fee_at_the_cap(chain: Chain) -> None:
    assert chain.deliver("dso", fees((ZONE_A, ZONE_A, 10_000_000))).code == 0


def test_basic_new_fee_applies_to_the_next_trade(chain: Chain) -> None:
    assert chain.deliver("dso", fees((ZONE_A, ZONE_A, 0))).code == 0
    place(chain, "alice", order("ask", 1_000, 240_000))
    place(chain, "bob", order("bid", 1_000, 250_000))
    # No fee inside zone a now: bob pays the ask's 240000 and nothing to the DSO.
    assert trades(chain) == [("bob", "alice", 1_000, 240_000, 0)]
    assert money(chain, "bob") == (TEN_EUR - 240_000, 20_000)
    assert money(chain, "dso") == (0, 0)


def test_basic_raised_fee_stops_a_resting_bid_crossing(chain: Chain) -> None:
    place(chain, "bob", order("bid", 1_000, 250_000))
    assert chain.deliver("dso", fees((ZONE_A, ZONE_A, 20_000))).code == 0
    # 240000 + 20000 > 250000: the ask rests instead of trading.
    place(chain, "alice", order("ask", 1_000, 240_000))
    assert trades(chain) == []
    place(chain, "erin", order("ask", 1_000, 230_000))
    assert trades(chain) == [("bob", "erin", 1_000, 230_000, 20_000)]


def test_basic_trade_fee_split_credited_to_each_dso(chain: Chain) -> None:
    assert chain.deliver("dso", fees((ZONE_B, ZONE_A, 15_001))).code == 0
    assert chain.deliver("dso_b", fees((ZONE_B, ZONE_A, 14_999))).code == 0
    place(chain, "carol", order("ask", 333, 220_000, origin="wind"))
    result = chain.deliver("bob", order("bid", 333, 250_000))
    assert result.code == 0, result.log
    trade = events_of(result, "trade")[0]
    # value floor(333 x 220000 / 1000) = 73260; shares floor(333 x 15001 / 1000) = 4995 and
    # floor(333 x 14999 / 1000) = 4994, rounded down separately: fee 9989 (not floor(333 x 30000 / 1000) = 9990).
    assert (trade["fee_per_kwh"], trade["value"], trade["fee"]) == ("30000", "73260", "9989")
    assert money(chain, "dso") == (4_995, 0)
    assert money(chain, "dso_b") == (4_994, 0)
    assert money(chain, "carol") == (TEN_EUR + 73_260, 6_660 + 73_260)
    # bob locked amount(333, 250000) + 6660 = 83250 + 6660, paid 73260 + 9989 = 83249.
    assert money(chain, "bob") == (TEN_EUR - 83_249, 6_660)
    assert chain.query(f"/position/{SLOT}/{chain.id('bob')}")["fees_paid"] == 9_989


def test_invalid_not_a_dso(chain: Chain) -> None:
    market_rejected(chain, "lpd", fees((ZONE_A, ZONE_A, 1)), errors.NotAuthorised)


def test_invalid_participant(chain: Chain) -> None:
    market_rejected(chain, "alice", fees((ZONE_A, ZONE_A, 1)), errors.NotAuthorised)


def test_invalid_zone_of_another_dso(chain: Chain) -> None:
    market_rejected(chain, "dso", fees((ZONE_B, ZONE_B, 1)), errors.WrongZone)


def test_invalid_unknown_zone(chain: Chain) -> None:
    market_rejected(chain, "dso", fees((ZONE_A, "zone-x", 1)), errors.UnknownZone)


def test_invalid_unknown_zone_both_ends(chain: Chain) -> None:
    market_rejected(chain, "dso", fees(("zone-x", "zone-y", 1)), errors.UnknownZone)


def test_invalid_above_cap(chain: Chain) -> None:
    market_rejected(chain, "dso", fees((ZONE_A, ZONE_A, 10_000_001)), errors.ValueOutOfRange)


def test_invalid_one_bad_entry_rejects_all(chain: Chain) -> None:
    market_rejected(chain, "dso", fees((ZONE_A, ZONE_A, 1), (ZONE_B, ZONE_B, 1)), errors.WrongZone)


@pytest.mark.parametrize("msg", [
    SetGridFees(entries=()),
    fees((ZONE_A, ZONE_A, 1), (ZONE_A, ZONE_A, 2)),
    fees(*[(ZONE_A, f"z{i}", 1) for i in range(65)]),
    fees((ZONE_A, "has space", 1)),
    fees(("", ZONE_A, 1)),
], ids=["empty", "duplicate-pair", "65-entries", "bad-zone-name", "empty-zone-name"])
def test_invalid_malformed_body(chain: Chain, msg: SetGridFees) -> None:
    market_rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_negative_fee(chain: Chain) -> None:
    market_rejected(chain, "dso", fees((ZONE_A, ZONE_A, -1)), errors.ValueOutOfRange, spends_nonce=False)


def test_basic_64_entries_is_the_limit(chain: Chain) -> None:
    # 64 distinct pairs need zones this chain does not serve: the stateless limit passes, the zones do not.
    market_rejected(chain, "dso", fees(*[(ZONE_A, f"z{i}", 1) for i in range(64)]), errors.UnknownZone)
