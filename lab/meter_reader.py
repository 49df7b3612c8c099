"""A meter-data service for demo and test chains: signs and relays every meter's reading at each slot end.

Settlement bills a meter that has not reported a slot by its deadline its full
import capacity (a "substitute", docs/settlement.md), so a chain whose meters
stay silent drains its participants. The reader plays the smart meters and the
DSO's meter-data service of a chain that has no real ones (``gridledger demo``):

* each meter has a **profile**: its average import and export power for each
  hour of the day (UTC), e.g. a prosumer's PV exporting by day, a consumer's
  evening peak;
* a deterministic, seeded **jitter** of a few per cent per meter and slot
  (``random.Random`` seeded with a string, which hashes with SHA-512 and so
  does not depend on ``PYTHONHASHSEED``): the same seed reads the same day;
* at each slot end ``T`` (once a committed block's time is at least ``T``) it
  reads the meter's last accepted reading from the chain, adds the profile's
  energy of every slot since then (at most ``MAX_CATCH_UP_SLOTS``: older slots
  were settled with a substitute already, their energy is skipped anyway),
  signs the new cumulative registers with the meter's key and relays them all
  in one ``submit_readings`` transaction signed by the relayer (the DSO).

The profile never exceeds a meter's capacity: the ledger refuses a reading
whose energy is above capacity times the interval (code 86), so power is capped at the
registered capacity before it is turned into Wh.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.settlement.msgs import SubmitReadings
from abci_app.ledger.tx import encode_tx
from lab.scenario import Transport
from node.client.chain import CommitTimeout, QueryFailed
from node.client.readings import UnsignedReading, sign_reading
from node.rpc import NodeUnreachable, RpcError

HOURS = 24
QUIET_START_TRIES = 15
"""Failed tries at start before the reader says the node does not answer (30 s at the default retry)."""
MAX_CATCH_UP_SLOTS = 96
"""How many past slots one reading covers at most after a pause (a day of 15-minute slots)."""


class MeterReaderError(Exception):
    """A meter the reader cannot serve (unknown on the chain, no key, a profile that does not fit)."""


@dataclass(frozen=True)
class Profile:
    """Average power per hour of the day (UTC), W: what a meter imports and exports, before jitter."""

    import_w: tuple[int, ...]
    export_w: tuple[int, ...]
    jitter_percent: int = 10

    def __post_init__(self) -> None:
        if len(self.import_w) != HOURS or len(self.export_w) != HOURS:
            raise MeterReaderError("a profile gives 24 hourly values for import and for export")
        if min(*self.import_w, *self.export_w) < 0 or not 0 <= self.jitter_percent <= 100:
            raise MeterReaderError("profile powers are >= 0 W and the jitter is 0..100 %")


# A rooftop PV prosumer (10 kW export connection): a clear-sky day's shape, peak 5.6 kW at noon UTC,
# and the household's own small load, which the PV covers by day.
PV_PROSUMER = Profile(
    import_w=(350, 300, 300, 300, 300, 350, 400, 250, 100, 50, 50, 50,
              50, 50, 50, 100, 200, 400, 600, 700, 650, 550, 450, 400),
    export_w=(0, 0, 0, 0, 0, 0, 300, 1200, 2500, 3800, 4800, 5400,
              5600, 5400, 4800, 3800, 2500, 1200, 300, 0, 0, 0, 0, 0),
)
# A household without generation: base load, a morning and a larger evening peak.
CONSUMER = Profile(
    import_w=(300, 250, 250, 250, 250, 300, 800, 1200, 900, 500, 450, 500,
              600, 500, 450, 500, 800, 1500, 2000, 2000, 1600, 1100, 700, 400),
    export_w=(0,) * HOURS,
)


@dataclass(frozen=True)
class MeterSpec:
    """A meter the reader serves: its id on the chain, its signing key and its profile."""

    meter_id: str
    key: SigningKey
    profile: Profile


def slot_energy(profile: Profile, meter_id: str, seed: int, slot_start: int, slot_length_s: int,
                import_capacity_w: int, export_capacity_w: int) -> tuple[int, int]:
    """(imported, exported) Wh of one slot: the hour's power, jittered and capped at the capacities."""
    hour = slot_start % 86_400 // 3_600
    rng = random.Random(f"{seed}/{meter_id}/{slot_start}")
    jitter = profile.jitter_percent

    def energy(power_w: int, capacity_w: int) -> int:
        jittered = power_w * (100 + rng.randint(-jitter, jitter)) // 100
        return min(jittered, capacity_w) * slot_length_s // 3_600

    return energy(profile.import_w[hour], import_capacity_w), energy(profile.export_w[hour], export_capacity_w)


@dataclass(frozen=True)
class _Registers:
    time: int
    """When they were read (the last reading's slot end, or the registration)."""
    import_wh: int
    export_wh: int


class MeterReader:
    """Reads the meters at every slot end and relays their signed readings (see the module doc)."""

    def __init__(self, transport: Transport, relayer: SigningKey, meters: Sequence[MeterSpec], seed: int = 1,
                 log: Callable[[str], None] = lambda _line: None) -> None:
        if not meters:
            raise MeterReaderError("no meters to read")
        self.transport = transport
        self.relayer = relayer
        self.meters = tuple(sorted(meters, key=lambda m: m.meter_id))
        self.seed = seed
        self.log = log
        self.readings_sent = 0

    def chain(self) -> tuple[str, dict[str, Any]]:
        """The chain id and parameters."""
        return self.transport.query("/chain")["chain_id"], self.transport.query("/params")

    def next_slot_end(self, now: int, slot_length_s: int) -> int:
        """The first slot end after ``now``."""
        return (now // slot_length_s + 1) * slot_length_s

    def read(self, slot_end: int) -> int:
        """Relay every meter's reading at ``slot_end`` (not yet read there); the number of readings sent."""
        chain_id, params = self.chain()
        length = params["slot_length_s"]
        if slot_end % length:
            raise MeterReaderError(f"{slot_end} is not a slot end (slots are {length} s)")
        readings = []
        for meter in self.meters:
            registered = self.transport.query(f"/meter/{meter.meter_id}", optional=True)
            if registered is None:
                raise MeterReaderError(f"meter {meter.meter_id} is not registered on this chain")
            if not registered.get("active", True):
                continue
            last = self._registers(meter.meter_id, registered)
            if last.time >= slot_end:
                continue  # already read there (by us before a restart, or by someone else)
            imported, exported = self._energy_since(meter, registered, last.time, slot_end, length)
            unsigned = UnsignedReading(meter.meter_id, slot_end, last.import_wh + imported, last.export_wh + exported,
                                       meter.meter_id)
            readings.append(sign_reading(chain_id, unsigned, meter.key))
        if not readings:
            return 0
        nonce = self.transport.query(f"/next_nonce/{self.relayer.account}")["next_nonce"]
        raw = encode_tx(chain_id, SubmitReadings(readings=tuple(readings)), self.relayer, nonce)
        outcome = self.transport.submit([raw])[0]
        if outcome.code != 0:
            self.log(f"readings at {slot_end} refused: code {outcome.code}: {outcome.log}")
            return 0
        self.readings_sent += len(readings)
        self.log(f"{len(readings)} readings at slot end {slot_end} committed at height {outcome.height}")
        return len(readings)

    def _registers(self, meter_id: str, registered: Mapping[str, Any]) -> _Registers:
        last = self.transport.query(f"/reading/{meter_id}", optional=True)
        if last is None:
            return _Registers(registered["registered_at"], registered["import_register_wh"],
                              registered["export_register_wh"])
        return _Registers(last["time"], last["import_register_wh"], last["export_register_wh"])

    def _energy_since(self, meter: MeterSpec, registered: Mapping[str, Any], since: int, slot_end: int,
                      length: int) -> tuple[int, int]:
        """The profile's energy of the slots from ``since`` (or the last MAX_CATCH_UP_SLOTS) to ``slot_end``.

        A partial first slot (a meter registered mid-slot) counts from its whole-slot start after ``since``,
        so the energy never exceeds capacity times the interval the ledger checks it against.
        """
        first = max(-(-since // length) * length, slot_end - MAX_CATCH_UP_SLOTS * length)
        imported = exported = 0
        for start in range(first, slot_end, length):
            slot_import, slot_export = slot_energy(meter.profile, meter.meter_id, self.seed, start, length,
                                                   registered["import_capacity_w"], registered["export_capacity_w"])
            imported, exported = imported + slot_import, exported + slot_export
        return imported, exported

    def run(self, stop: threading.Event, retry_s: float = 2.0) -> None:
        """Read at every slot end until ``stop`` is set; waits for the node, logs and retries what fails.

        A node that does not answer yet at start is expected (the reader starts with it): that is logged
        only if it lasts (``QUIET_START_TRIES`` tries); a node lost later is logged at once.
        """
        failures = 0
        while not stop.is_set():
            try:
                now = self.transport.block_time()
                _, params = self.chain()
                slot_end = self.next_slot_end(now, params["slot_length_s"])
                # The slot that ended last may not be read yet (a start or restart mid-slot).
                self.read(slot_end - params["slot_length_s"])
                while not stop.is_set() and self.transport.block_time() < slot_end:
                    stop.wait(min(retry_s, 1.0))
                if not stop.is_set():
                    self.read(slot_end)
                failures = 0
            except (NodeUnreachable, RpcError, QueryFailed, CommitTimeout, TimeoutError) as exc:
                failures += 1
                if failures == (1 if self.readings_sent else QUIET_START_TRIES):
                    self.log(f"node not answering ({exc}); retrying every {retry_s:g} s")
                stop.wait(retry_s)
            except MeterReaderError as exc:
                self.log(f"stopped: {exc}")
                return
