"""lab/meter_reader.py on an in-process chain: a day of 15-minute slots read, settled without a substitute,
PV exported by day only, the same registers for the same seed, and a meter the chain does not know refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lab.meter_reader import (
    CONSUMER,
    PV_PROSUMER,
    QUIET_START_TRIES,
    MeterReader,
    MeterReaderError,
    MeterSpec,
    Profile,
    slot_energy,
)
from node.rpc import NodeUnreachable
from tests.harness import GENESIS_TIME, Chain, seeded_key
from tests.test_scenario import ChainTransport

SLOT = 900
METERS = {"alice-meter": ("alice", PV_PROSUMER, 3_000, 10_000), "bob-meter": ("bob", CONSUMER, 11_000, 0)}


def demo_like_chain() -> Chain:
    chain = Chain()
    assert chain.app_state is not None
    chain.app_state["meters"] = [
        {"id": meter_id, "pubkey": seeded_key(meter_id).pubkey.hex(), "owner_pubkey": chain.keys[owner].pubkey.hex(),
         "import_capacity_w": imports, "export_capacity_w": exports}
        for meter_id, (owner, _profile, imports, exports) in METERS.items()]
    return Chain(app_state=chain.app_state)


def reader_of(chain: Chain, seed: int = 7) -> tuple[MeterReader, ChainTransport, list[str]]:
    transport, logged = ChainTransport(chain, block_dt=1), []
    meters = [MeterSpec(meter_id, seeded_key(meter_id), profile) for meter_id, (_o, profile, _i, _e) in METERS.items()]
    return MeterReader(transport, chain.keys["dso"], meters, seed=seed, log=logged.append), transport, logged


def read_day(chain: Chain, seed: int = 7) -> list[dict[str, Any]]:
    """Read every slot end of the chain's first day; the readings after each slot."""
    reader, transport, _ = reader_of(chain, seed)
    registers = []
    for slot_end in range(GENESIS_TIME + SLOT, GENESIS_TIME + 86_400 + SLOT, SLOT):
        transport.wait_block_time(slot_end)
        assert reader.read(slot_end) == 2
        registers.append({m: chain.query(f"/reading/{m}") for m in METERS})
    return registers


def test_basic_a_day_is_read_and_settled_without_a_substitute() -> None:
    chain = demo_like_chain()
    registers = read_day(chain)
    # Past the deadline of the day's last slot: every slot of the day is settled.
    chain.block(dt=3_600 + 60)
    chain.block()
    substituted = exported_by_hour = 0
    exports: dict[int, int] = {}
    for slot in range(GENESIS_TIME, GENESIS_TIME + 86_400, SLOT):
        for name in ("alice", "bob"):
            report = chain.query(f"/settlement/{slot}/{chain.id(name)}")
            substituted += report["substituted"]
            if name == "alice":
                exports[(slot - GENESIS_TIME) // 3_600] = exports.get((slot - GENESIS_TIME) // 3_600, 0) \
                    + report["exported_wh"]
    exported_by_hour = sum(exports.values())
    assert substituted == 0
    assert exports[0] == exports[3] == exports[22] == 0 and exports[12] > 4_000  # PV by day only (UTC hours)
    assert registers[-1]["alice-meter"]["export_register_wh"] == exported_by_hour > 30_000
    assert registers[-1]["bob-meter"]["import_register_wh"] > 15_000
    assert chain.account("bob")["debt"] == 0 and chain.account("alice")["debt"] == 0


def test_basic_the_same_seed_reads_the_same_day() -> None:
    first, second = read_day(demo_like_chain(), seed=3), read_day(demo_like_chain(), seed=3)
    assert first == second
    assert read_day(demo_like_chain(), seed=4)[-1] != first[-1]


def test_basic_a_pause_is_caught_up_in_one_reading() -> None:
    chain = demo_like_chain()
    reader, transport, _ = reader_of(chain)
    transport.wait_block_time(GENESIS_TIME + 4 * SLOT)
    assert reader.read(GENESIS_TIME + 4 * SLOT) == 2
    assert reader.read(GENESIS_TIME + 4 * SLOT) == 0  # read already: nothing is sent twice
    bob = chain.query("/reading/bob-meter")
    expected = sum(slot_energy(CONSUMER, "bob-meter", 7, GENESIS_TIME + k * SLOT, SLOT, 11_000, 0)[0]
                   for k in range(4))
    assert bob["import_register_wh"] == expected


def test_basic_run_reads_at_slot_ends_until_stopped() -> None:
    chain = demo_like_chain()
    reader, transport, _ = reader_of(chain)
    stop = threading.Event()
    original = transport.block_time

    def advancing() -> int:  # every look at the clock moves the in-process chain on by a block
        if chain.time < GENESIS_TIME + 3 * SLOT:
            chain.block(dt=60)
        else:
            stop.set()
        return original()

    transport.block_time = advancing  # type: ignore[method-assign]
    reader.run(stop, retry_s=0.0)
    assert chain.query("/reading/alice-meter")["time"] >= GENESIS_TIME + 2 * SLOT


def test_invalid_an_unknown_meter_is_refused() -> None:
    chain = Chain()
    transport = ChainTransport(chain)
    reader = MeterReader(transport, chain.keys["dso"], [MeterSpec("ghost", seeded_key("ghost"), CONSUMER)])
    transport.wait_block_time(GENESIS_TIME + SLOT)
    with pytest.raises(MeterReaderError, match="not registered"):
        reader.read(GENESIS_TIME + SLOT)


def test_invalid_a_misaligned_time_is_refused() -> None:
    chain = demo_like_chain()
    chain.block()
    reader, _, _ = reader_of(chain)
    with pytest.raises(MeterReaderError, match="not a slot end"):
        reader.read(GENESIS_TIME + 100)


def test_invalid_profiles() -> None:
    with pytest.raises(MeterReaderError):
        Profile(import_w=(1,) * 23, export_w=(0,) * 24)
    with pytest.raises(MeterReaderError):
        Profile(import_w=(-1,) * 24, export_w=(0,) * 24)


def test_basic_energy_is_capped_at_the_capacity() -> None:
    loud = Profile(import_w=(50_000,) * 24, export_w=(0,) * 24, jitter_percent=0)
    assert slot_energy(loud, "m", 1, GENESIS_TIME, SLOT, 11_000, 0) == (11_000 * SLOT // 3_600, 0)


def test_basic_a_node_not_up_yet_is_logged_only_if_it_lasts() -> None:
    chain = demo_like_chain()
    reader, transport, logged = reader_of(chain)
    stop, tries = threading.Event(), []

    def down() -> int:
        tries.append(1)
        if len(tries) >= QUIET_START_TRIES + 5:
            stop.set()
        raise NodeUnreachable("connection refused")

    transport.block_time = down  # type: ignore[method-assign]
    reader.run(stop, retry_s=0.0)
    assert len([line for line in logged if "not answering" in line]) == 1
    assert len(tries) == QUIET_START_TRIES + 5
