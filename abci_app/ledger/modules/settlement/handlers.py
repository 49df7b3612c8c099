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
    keeper.put_last_reading(state, meter.id, LastReading(reading.timestamp, reading.import_register_wh,
                                                         reading.export_register_wh))
    slot = reading.timestamp - params.slot_length_s
    counted = last.time >= slot
    if counted:
        keeper.put_slot_reading(state, slot, meter.id,
                                SlotReading(owner=meter.owner, imported_wh=imported, exported_wh=exported))
        keeper.mark_due(state, slot, meter.owner)
    ctx.events.append(event("reading", meter=meter.id, owner=meter.owner, slot=slot, imported_wh=imported,
                            exported_wh=exported, counted=counted))
