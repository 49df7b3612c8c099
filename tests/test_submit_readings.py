"""submit_readings: signed cumulative meter readings and every reason to refuse one."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.registry import Deactivate
from abci_app.ledger.modules.settlement import Reading, SubmitReadings
from abci_app.ledger.modules.settlement import keeper as settlement_keeper
from tests.harness import Chain, events_of, rejected
from tests.market_harness import state_of
from tests.settlement_harness import DEADLINE, SLOT, SLOT_END, advance_to, reading, submit

pytestmark = pytest.mark.market


@pytest.fixture
def chain(chain: Chain) -> Chain:
    # Every meter reports every slot since genesis (so none settles with a substitute during a test), and
    # alice's 100 / 50 Wh fall in the slot before SLOT, which settles after the tests' last block.
    names = ("alice", "bob", "carol", "dave", "erin")
    advance_to(chain, SLOT - 900)
    assert submit(chain, *[reading(chain, name, SLOT - 900, 0, 0) for name in names]) == 0
    advance_to(chain, SLOT)
    others = [reading(chain, name, SLOT, 0, 0) for name in names[1:]]
    assert submit(chain, reading(chain, "alice", SLOT, 100, 50), *others) == 0
    advance_to(chain, SLOT_END)
    return chain


def test_basic(chain: Chain) -> None:
    result = chain.deliver("bob", SubmitReadings(readings=(reading(chain, "alice", SLOT_END, 1_100, 2_050),)))
    assert result.code == 0, result.log
    assert events_of(result, "reading") == [{"meter": "m-alice", "owner": chain.id("alice"), "slot": str(SLOT),
                                             "imported_wh": "1000", "exported_wh": "2000", "slots": "1",
                                             "allocated_slots": "1"}]
    assert chain.query("/reading/m-alice") == {"meter": "m-alice", "time": SLOT_END, "import_register_wh": 1_100,
                                               "export_register_wh": 2_050}


def test_basic_gap_gives_each_slot_the_worst_case(chain: Chain) -> None:
    """A missed reading never pays: 800 Wh over two slots could all have flowed in either, so each is billed
    800 Wh (alice's connection carries 5000 Wh a slot)."""
    advance_to(chain, SLOT_END + 900)
    result = chain.deliver("dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END + 900, 900, 50),)))
    assert result.code == 0
    assert {k: events_of(result, "reading")[0][k] for k in ("imported_wh", "slots", "allocated_slots")} == {
        "imported_wh": "800", "slots": "2", "allocated_slots": "2"}
    state = state_of(chain)
    for slot in (SLOT, SLOT + 900):
        share = settlement_keeper.get_slot_reading(state, slot, "m-alice")
        assert share is not None and (share.imported_wh, share.exported_wh) == (800, 0)


def test_basic_allocation_is_exact_for_one_slot_and_the_worst_case_for_several() -> None:
    from abci_app.ledger.modules.settlement.handlers import allocate
    # One slot (or the part of it after the registration): the whole difference.
    assert allocate(900, 1_800, 900, 1_000, 300, 900, 20_000, 20_000) == [(900, 1_000, 300)]
    assert allocate(100, 900, 900, 1_000, 300, 100, 20_000, 20_000) == [(0, 1_000, 300)]
    # A meter registered 100 s into slot 0, read at 2700 (2600 s) with a 4 kW connection both ways:
    # each slot gets all the import its seconds allow (800 s -> 888 Wh, 900 s -> 1000 Wh, capped by the
    # 1000 measured), and the export the rest of the interval at 4 kW could not have carried.
    assert allocate(100, 2_700, 900, 1_000, 2_000, 100, 4_000, 4_000) == [
        (0, 888, 2_000 - 2_000), (900, 1_000, 2_000 - 1_888), (1_800, 1_000, 2_000 - 1_888)]
    # The first slot was settled with a substitute (known through 900): it gets nothing.
    assert allocate(100, 2_700, 900, 1_000, 2_000, 900, 4_000, 4_000) == [(900, 1_000, 112), (1_800, 1_000, 112)]
    # A long gap lists only the slots after known_through.
    assert allocate(0, 900 * 10_000, 900, 10_001, 7, 900 * 9_998, 20_000, 20_000) == [
        (900 * 9_998, 5_000, 0), (900 * 9_999, 5_000, 0)]


def test_invalid_bad_signature(chain: Chain) -> None:
    forged = reading(chain, "alice", SLOT_END, 200, 50, key_name="bob")
    rejected(chain, "dso", SubmitReadings(readings=(forged,)), errors.BadReadingSignature, spends_nonce=True)


def test_invalid_unknown_meter(chain: Chain) -> None:
    good = reading(chain, "alice", SLOT_END, 200, 50)
    unknown = Reading("m-nobody", good.timestamp, 200, 50, good.signature)
    rejected(chain, "dso", SubmitReadings(readings=(unknown,)), errors.UnknownMeter, spends_nonce=True)


def test_invalid_deactivated_meter(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="meter", target="m-alice")).code == 0
    rejected(chain, "dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END, 200, 50),)),
             errors.UnknownMeter, spends_nonce=True)


def test_invalid_not_at_slot_end(chain: Chain) -> None:
    rejected(chain, "dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END - 60, 200, 50),)),
             errors.ReadingNotAtSlotEnd, spends_nonce=True)


def test_invalid_too_early(chain: Chain) -> None:
    rejected(chain, "dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END + 900, 200, 50),)),
             errors.ReadingTooEarly, spends_nonce=True)


def test_invalid_too_late(chain: Chain) -> None:
    advance_to(chain, DEADLINE + 1)
    rejected(chain, "dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END, 200, 50),)),
             errors.ReadingTooLate, spends_nonce=True)


def test_invalid_duplicate(chain: Chain) -> None:
    assert submit(chain, reading(chain, "alice", SLOT_END, 200, 50)) == 0
    rejected(chain, "dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END, 200, 50),)),
             errors.StaleReading, spends_nonce=True)


def test_invalid_register_backwards(chain: Chain) -> None:
    rejected(chain, "dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END, 99, 50),)),
             errors.RegisterBackwards, spends_nonce=True)


def test_invalid_above_capacity(chain: Chain) -> None:
    # 20 kW for 900 s is at most 5000 Wh; the baseline import register was 100.
    rejected(chain, "dso", SubmitReadings(readings=(reading(chain, "alice", SLOT_END, 5_101, 50),)),
             errors.ReadingAboveCapacity, spends_nonce=True)


def test_invalid_one_bad_reading_rejects_all(chain: Chain) -> None:
    good = reading(chain, "bob", SLOT_END, 10, 0)
    bad = reading(chain, "alice", SLOT_END, 99, 50)
    rejected(chain, "dso", SubmitReadings(readings=(good, bad)), errors.RegisterBackwards, spends_nonce=True)


@pytest.mark.parametrize("readings", [(), tuple([None] * 257)])
def test_invalid_count(chain: Chain, readings: tuple[Reading, ...]) -> None:
    sample = reading(chain, "alice", SLOT_END, 200, 50)
    msg = SubmitReadings(readings=tuple(sample for _ in readings))
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_signature_length(chain: Chain) -> None:
    sample = reading(chain, "alice", SLOT_END, 200, 50)
    short = Reading(sample.meter_id, sample.timestamp, 200, 50, sample.signature[:10])
    rejected(chain, "dso", SubmitReadings(readings=(short,)), errors.MalformedBody, spends_nonce=False)
