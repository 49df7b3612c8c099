"""Helpers for metering and settlement tests: signed readings and the clock of one traded slot."""

from __future__ import annotations

from abci_app.ledger.modules.settlement import Reading, SubmitReadings, reading_sign_bytes
from tests.harness import Chain, seeded_key
from tests.market_harness import SLOT

SLOT_END = SLOT + 900
DEADLINE = SLOT_END + 3_600


def reading(chain: Chain, meter: str, timestamp: int, import_wh: int, export_wh: int,
            key_name: str | None = None) -> Reading:
    """A reading of meter ``m-<meter>`` signed by its key (or by ``key_name``'s, to forge one)."""
    meter_id = f"m-{meter}"
    key = seeded_key(f"meter-{key_name or meter}")
    signature = key.sign(reading_sign_bytes(chain.chain_id, meter_id, timestamp, import_wh, export_wh))
    return Reading(meter_id=meter_id, timestamp=timestamp, import_register_wh=import_wh,
                   export_register_wh=export_wh, signature=signature)


def submit(chain: Chain, *readings: Reading, relay: str = "dso") -> int:
    result = chain.deliver(relay, SubmitReadings(readings=readings))
    return int(result.code)


def advance_to(chain: Chain, time: int) -> None:
    """Commit one empty block at exactly ``time``."""
    assert time > chain.time
    chain.block(dt=time - chain.time)


def baseline(chain: Chain, meters: tuple[str, ...]) -> None:
    """Registers at the slot start (all zero since genesis), so the slot's own readings count."""
    advance_to(chain, SLOT)
    for meter in meters:
        assert submit(chain, reading(chain, meter, SLOT, 0, 0)) == 0


def settle(chain: Chain) -> None:
    """Move past the slot's settlement deadline: the next block settles it."""
    advance_to(chain, DEADLINE + 1)


METERS = ("alice", "bob", "carol", "dave", "erin")
"""The market harness's meters (m-<name>), one per participant."""


class Registers:
    """Every meter's cumulative registers, so a test says what flowed in each slot and the readings follow.

    ``read(chain, slot_end, flows)`` adds each meter's (import, export) Wh of the slot ending at
    ``slot_end`` to its registers and submits one signed reading per meter (those in ``silent`` send none).
    """

    def __init__(self, meters: tuple[str, ...] = METERS) -> None:
        self.registers = {meter: [0, 0] for meter in meters}

    def read(self, chain: Chain, slot_end: int, flows: dict[str, tuple[int, int]] | None = None,
             silent: tuple[str, ...] = ()) -> None:
        flows = flows or {}
        readings = []
        for meter, registers in self.registers.items():
            imported, exported = flows.get(meter, (0, 0))
            registers[0] += imported
            registers[1] += exported
            if meter not in silent:
                readings.append(reading(chain, meter, slot_end, registers[0], registers[1]))
        if chain.time < slot_end:
            advance_to(chain, slot_end)
        assert submit(chain, *readings) == 0
