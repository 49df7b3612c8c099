"""Execution of submit_readings (any account may relay; the meter's signature counts)."""

from __future__ import annotations

from abci_app.ledger import crypto, errors
from abci_app.ledger.events import event
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.modules.registry.records import Meter
from abci_app.ledger.modules.settlement import keeper
from abci_app.ledger.modules.settlement.msgs import Reading, SubmitReadings, reading_sign_bytes
from abci_app.ledger.modules.settlement.records import LastReading, SlotReading
from abci_app.ledger.msg import AdmitContext, TxContext
from abci_app.ledger.params import get_params


def admit_submit_readings(ctx: AdmitContext, msg: SubmitReadings) -> int:
    """Readings of registered meters must carry the meter's signature (a meter's key never changes)."""
    for reading in msg.readings:
        meter = registry.get_meter(ctx.state, reading.meter_id)
        if meter is not None:
            _check_reading_signature(ctx.verifier, ctx.chain_id, meter, reading)
    return 0


def _check_reading_signature(verifier: crypto.Verifier, chain_id: str, meter: Meter, reading: Reading) -> None:
    signed = reading_sign_bytes(chain_id, reading.meter_id, reading.timestamp, reading.import_register_wh,
                                reading.export_register_wh)
    # Rule: only the meter's own signature makes a reading valid.
    if not verifier.verify(meter.pubkey, reading.signature, signed):
        raise errors.BadReadingSignature(f"reading of meter {meter.id} at {reading.timestamp} is not signed by it")


def handle_submit_readings(ctx: TxContext, msg: SubmitReadings) -> None:
    for reading in msg.readings:
        _apply_reading(ctx, reading)


def _apply_reading(ctx: TxContext, reading: Reading) -> None:
    state = ctx.state
    params = get_params(state)
    meter = registry.get_meter(state, reading.meter_id)
    # Rule: readings come from registered, active meters.
    if meter is None or not meter.active:
        raise errors.UnknownMeter(f"meter {reading.meter_id} is not registered or deactivated")
    _check_reading_signature(ctx.verifier, ctx.chain_id, meter, reading)
    # Rule: readings are taken at slot ends.
    if reading.timestamp % params.slot_length_s != 0:
        raise errors.ReadingNotAtSlotEnd(f"{reading.timestamp} is not a multiple of {params.slot_length_s}")
    # Rule: a slot is read only after it has ended.
    if reading.timestamp > ctx.time:
        raise errors.ReadingTooEarly(f"slot ending {reading.timestamp} has not ended at {ctx.time}")
    # Rule: readings arrive before the slot's settlement deadline.
    if ctx.time > reading.timestamp + params.settlement_window_s:
        raise errors.ReadingTooLate(
            f"deadline for the slot ending {reading.timestamp} was {reading.timestamp + params.settlement_window_s}")
    last = keeper.last_reading(state, meter)
    # Rule: each meter reports each slot end once, in time order.
    if reading.timestamp <= last.time:
        raise errors.StaleReading(f"meter {meter.id} already reported up to {last.time}")
    imported = reading.import_register_wh - last.import_register_wh
    exported = reading.export_register_wh - last.export_register_wh
    # Rule: cumulative registers never go backwards.
    if imported < 0 or exported < 0:
        raise errors.RegisterBackwards(f"meter {meter.id}: a register is below its previous reading")
    interval = reading.timestamp - last.time
    # Rule: no more energy than the connection can carry in the interval.
    if imported * 3600 > meter.import_capacity_w * interval or exported * 3600 > meter.export_capacity_w * interval:
        raise errors.ReadingAboveCapacity(f"meter {meter.id}: {imported} Wh in / {exported} Wh out in {interval} s")
    known_through = keeper.accounted_through(state, meter)
    first_open_end = (known_through // params.slot_length_s + 1) * params.slot_length_s
    # Rule: a slot past its deadline is billed its substitute, never a later reading's share: while it
    # waits for the settlement to substitute it, the meter's next readings wait too.
    if ctx.time > first_open_end + params.settlement_window_s:
        raise errors.ReadingTooLate(
            f"meter {meter.id}: the slot ending {first_open_end} is past its deadline and awaits its substitute; "
            "submit again once it has settled")
    keeper.put_last_reading(state, meter.id, LastReading(reading.timestamp, reading.import_register_wh,
                                                         reading.export_register_wh))
    # Slots whose deadline passed without a reading were billed a substitute, never better for the owner
    # than the truth: they are skipped. Each slot still open gets the worst case the difference allows.
    shares = allocate(last.time, reading.timestamp, params.slot_length_s, imported, exported, known_through,
                      meter.import_capacity_w, meter.export_capacity_w)
    for slot, imported_share, exported_share in shares:
        keeper.put_slot_reading(state, slot, meter.id, SlotReading(owner=meter.owner, imported_wh=imported_share,
                                                                    exported_wh=exported_share))
        keeper.mark_due(state, slot, meter.owner)
    keeper.advance_meter(state, meter, reading.timestamp)
    covered = (reading.timestamp - last.time // params.slot_length_s * params.slot_length_s) // params.slot_length_s
    ctx.events.append(event("reading", meter=meter.id, owner=meter.owner, slot=reading.timestamp - params.slot_length_s,
                            imported_wh=imported, exported_wh=exported, slots=covered, allocated_slots=len(shares)))


def allocate(since: int, until: int, slot_length: int, imported: int, exported: int, known_through: int,
             import_capacity_w: int, export_capacity_w: int) -> list[tuple[int, int, int]]:
    """(slot, imported, exported) of each slot a register difference covers that ends after ``known_through``.

    The difference measured from ``since`` (the previous reading, or the registration) to ``until`` (a slot
    end) is exact when it covers one slot. Over several, how it split between them is unknown, so each slot
    gets the worst case for the meter's owner that the difference and the connection allow: as much import
    as could have flowed in that slot (all of it, up to its capacity over the slot's seconds), and as little
    export as is consistent with the rest of the interval exporting at full capacity. A slot is never billed
    better than the truth, so leaving out a reading never pays (docs/settlement.md); the shares may add up to
    more import and less export than were measured.
    """
    first, last = since // slot_length * slot_length, until - slot_length
    interval = until - since
    start = max(first, (known_through - 1) // slot_length * slot_length if known_through > 0 else first)
    shares = []
    for slot in range(start, last + slot_length, slot_length):
        if slot + slot_length <= known_through:
            continue
        seconds = min(slot + slot_length, until) - max(slot, since)
        if seconds == interval:
            shares.append((slot, imported, exported))
            continue
        most_in = min(imported, import_capacity_w * seconds // 3600)
        least_out = max(0, exported - export_capacity_w * (interval - seconds) // 3600)
        shares.append((slot, most_in, least_out))
    return shares
