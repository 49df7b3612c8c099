"""Metering and settlement: signed meter readings, the delivery check, imbalance paid from collateral.

Readings (``submit_readings``): a meter signs cumulative import/export
registers (OBIS 1.8.0 / 2.8.0, Wh) at a slot end. A slot's flow is the
difference to the meter's previous reading; it counts for the slot only if the
previous reading (or the meter's registration) is at or after the slot's
start. After a gap the reading re-bases the registers and the slot counts as
zero flow (the energy of the unreported slots cannot be told apart).

Settlement (begin-block): at the first block after ``slot_end +
settlement_window_s`` every participant with a trade or a counted reading in
the slot is settled, at most ``settlement_batch`` per block, in account-id
order: contracted C = sold - bought, measured M = exported - imported,
deviation D = M - C. Trades were paid when they were made; D < 0 is bought from
the balancing LPD at ``balancing_buy_price`` (paid from the released
collateral first, then the free balance, the rest recorded as debt); D > 0 is
bought by the LPD at ``balancing_sell_price``. The slot's collateral is
released. Each party's result is stored as its settlement report.

Keys:
    rd/last/<meter id>                 LastReading (time and registers)
    rd/slot/<slot:be64>/<meter id>     SlotReading (the slot's counted flows)
    stl/due/<slot:be64>/<account id>   b"" (participants still to settle)
    stl/rep/<slot:be64>/<account id>   SettlementReport
    stl/acct/<account id>/<slot:be64>  b"" (reports of an account)
    stl/slot/<slot:be64>               SlotSettlement (running totals; ``complete`` at the end)
"""

from __future__ import annotations

from typing import ClassVar

from msgspec.structs import replace

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.market.book import Market
from abci_app.ledger.modules.market.types import amount
from abci_app.ledger.msg import Msg, TxContext, require_amount, require_name
from abci_app.ledger.state import Account, Meter, State, be64, unbe64
from abci_app.ledger.store import prefix_end
from abci_app.ledger.wire import I64, Record

MAX_READINGS = 256
READING_DOMAIN = "gridledger/reading"


# -- records ---------------------------------------------------------------------------------------
class Reading(Record, frozen=True):
    """One signed meter reading."""

    meter_id: str
    timestamp: I64
    """A slot end (unix seconds, a multiple of slot_length_s)."""
    import_register_wh: I64
    """Cumulative import register (OBIS 1.8.0), Wh."""
    export_register_wh: I64
    """Cumulative export register (OBIS 2.8.0), Wh."""
    signature: bytes
    """Ed25519 signature of the meter's key over ``reading_sign_bytes``."""


def reading_sign_bytes(chain_id: str, meter_id: str, timestamp: int, import_wh: int, export_wh: int) -> bytes:
    """What a meter signs: canonical msgpack of a domain tag, the chain and the values."""
    return codec.encode([READING_DOMAIN, chain_id, meter_id, timestamp, import_wh, export_wh])


class LastReading(Record, frozen=True):
    time: I64
    import_register_wh: I64
    export_register_wh: I64


class SlotReading(Record, frozen=True):
    owner: str
    imported_wh: I64
    exported_wh: I64


class SettlementReport(Record, frozen=True):
    """One participant's settlement of one slot (all money in the smallest unit)."""

    slot: I64
    account: str
    bought_wh: I64
    sold_wh: I64
    contracted_wh: I64
    """C = sold - bought."""
    imported_wh: I64
    exported_wh: I64
    measured_wh: I64
    """M = exported - imported."""
    deviation_wh: I64
    """D = M - C."""
    energy_paid: I64
    """Paid for energy bought (at trade time)."""
    energy_received: I64
    fees_paid: I64
    balancing_charge: I64
    """Shortfall -D at balancing_buy_price (0 if D >= 0)."""
    balancing_credit: I64
    """Surplus D at balancing_sell_price actually paid by the LPD."""
    collateral_released: I64
    """Collateral of the slot unlocked."""
    collateral_used: I64
    """Part of the charge paid out of that collateral."""
    paid_from_balance: I64
    """Part of the charge paid from the rest of the free balance."""
    debt_added: I64
    """Part of the charge left unpaid and recorded as debt."""
    credit_unpaid: I64
    """Part of the surplus credit the LPD could not pay (settled off-chain)."""
    height: I64


class SlotSettlement(Record, frozen=True):
    slot: I64
    participants: I64
    shortfall_wh: I64
    surplus_wh: I64
    charges: I64
    credits: I64
    debt: I64
    complete: bool
    height: I64


# -- submit_readings ----------------------------------------------------------------------------------
class SubmitReadings(Msg, frozen=True):
    """Relay signed meter readings (any registered account may relay; the meter's signature counts)."""

    TYPE: ClassVar[str] = "submit_readings"
    readings: tuple[Reading, ...]
    """1-256 readings, applied in order."""

    def validate_basic(self) -> None:
        if not 1 <= len(self.readings) <= MAX_READINGS:
            raise errors.MalformedBody(f"between 1 and {MAX_READINGS} readings")
        for reading in self.readings:
            require_name("meter_id", reading.meter_id)
            require_amount("timestamp", reading.timestamp, minimum=0)
            require_amount("import_register_wh", reading.import_register_wh, minimum=0)
            require_amount("export_register_wh", reading.export_register_wh, minimum=0)
            if len(reading.signature) != crypto.SIGNATURE_BYTES:
                raise errors.MalformedBody("a reading signature is 64 bytes")


def handle_submit_readings(ctx: TxContext, msg: SubmitReadings) -> None:
    for reading in msg.readings:
        _apply_reading(ctx, reading)


def _apply_reading(ctx: TxContext, reading: Reading) -> None:
    state = ctx.state
    params = state.get_params()
    meter = state.get_meter(reading.meter_id)
    # Rule: readings come from registered, active meters.
    if meter is None or not meter.active:
        raise errors.UnknownMeter(f"meter {reading.meter_id} is not registered or deactivated")
    signed = reading_sign_bytes(ctx.chain_id, reading.meter_id, reading.timestamp, reading.import_register_wh,
                                reading.export_register_wh)
    # Rule: only the meter's own signature makes a reading valid.
    if not crypto.verify(meter.pubkey, reading.signature, signed):
        raise errors.BadReadingSignature(f"reading of meter {meter.id} at {reading.timestamp} is not signed by it")
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
    last = _last_reading(state, meter)
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
    state.kv.set(b"rd/last/" + meter.id.encode(), LastReading(reading.timestamp, reading.import_register_wh,
                                                                 reading.export_register_wh).encode())
    slot = reading.timestamp - params.slot_length_s
    counted = last.time >= slot
    if counted:
        state.kv.set(b"rd/slot/" + be64(slot) + b"/" + meter.id.encode(),
                     SlotReading(owner=meter.owner, imported_wh=imported, exported_wh=exported).encode())
        mark_due(state, slot, meter.owner)
    ctx.events.append(event("reading", meter=meter.id, owner=meter.owner, slot=slot, imported_wh=imported,
                            exported_wh=exported, counted=counted))


def _last_reading(state: State, meter: Meter) -> LastReading:
    raw = state.kv.get(b"rd/last/" + meter.id.encode())
    if raw is not None:
        return LastReading.decode(raw)
    return LastReading(meter.registered_at, meter.import_register_wh, meter.export_register_wh)


def mark_due(state: State, slot: int, account_id: str) -> None:
    """``account_id`` has something to settle in ``slot`` (a trade or a counted reading)."""
    state.kv.set(b"stl/due/" + be64(slot) + b"/" + account_id.encode(), b"")


# -- settlement ------------------------------------------------------------------------------------------
def balancing_lpd(state: State) -> str:
    """The balancing party: the voting LPD operator with the lowest account id (docs/settlement.md)."""
    lpds = [op.account for op in state.iter_operators() if op.role == "lpd" and op.power > 0]
    if not lpds:
        lpds = [op.account for op in state.iter_operators() if op.role == "lpd"]
    assert lpds, "settlement needs an LPD operator"
    return min(lpds)


def on_block(state: State, height: int, time: int) -> list[Event]:
    """Settle due participants of slots past their deadline, oldest first, at most settlement_batch."""
    params = state.get_params()
    budget = params.settlement_batch
    events: list[Event] = []
    while budget > 0:
        due = _next_due(state)
        if due is None:
            break
        slot, account_id = due
        if time <= slot + params.slot_length_s + params.settlement_window_s:
            break
        state.kv.delete(b"stl/due/" + be64(slot) + b"/" + account_id.encode())
        events.append(settle_participant(state, slot, account_id, height, time))
        budget -= 1
        if _next_due_in_slot(state, slot) is None:
            events.append(_complete_slot(state, slot, height))
    return events


def _next_due(state: State) -> tuple[int, str] | None:
    for key, _ in state.kv.iterate(b"stl/due/", prefix_end(b"stl/due/")):
        rest = key[len(b"stl/due/"):]
        return unbe64(rest[:8]), rest[9:].decode()
    return None


def _next_due_in_slot(state: State, slot: int) -> bytes | None:
    prefix = b"stl/due/" + be64(slot) + b"/"
    for key, _ in state.kv.iterate(prefix, prefix_end(prefix)):
        return key
    return None


def settle_participant(state: State, slot: int, account_id: str, height: int, time: int) -> Event:
    params = state.get_params()
    market = Market(state)
    position = market.get_position(slot, account_id)
    imported = exported = 0
    for meter_id in state.meters_of(account_id):
        raw = state.kv.get(b"rd/slot/" + be64(slot) + b"/" + meter_id.encode())
        if raw is not None:
            flow = SlotReading.decode(raw)
            imported += flow.imported_wh
            exported += flow.exported_wh
    contracted = position.sold_wh - position.bought_wh
    measured = exported - imported
    deviation = measured - contracted
    # The slot's collateral is released first; the charge is then paid out of it, then the rest of the balance.
    if position.collateral:
        state.unlock(account_id, position.collateral)
    market.put_position(replace(position, collateral=0, bid_open_wh=0, ask_open_wh=0, bought_wh=0, sold_wh=0))
    lpd = balancing_lpd(state)
    charge = amount(-deviation, params.balancing_buy_price) if deviation < 0 else 0
    credit_due = amount(deviation, params.balancing_sell_price) if deviation > 0 else 0
    account = state.require_account(account_id)
    paid = min(charge, account.free)
    debt = charge - paid
    if paid:
        state.debit(account_id, paid)
        state.credit(lpd, paid)
        state.journal(account_id, time, height, "balancing_charge", -paid, f"slot {slot}")
        state.journal(lpd, time, height, "balancing_income", paid, f"slot {slot} {account_id}")
    if debt:
        account = state.require_account(account_id)
        state.put_account(replace(account, debt=account.debt + debt))
    credit = min(credit_due, state.require_account(lpd).free)
    if credit:
        state.debit(lpd, credit)
        state.credit(account_id, credit)
        state.journal(account_id, time, height, "balancing_credit", credit, f"slot {slot}")
        state.journal(lpd, time, height, "balancing_payout", -credit, f"slot {slot} {account_id}")
    report = SettlementReport(
        slot=slot, account=account_id, bought_wh=position.bought_wh, sold_wh=position.sold_wh,
        contracted_wh=contracted, imported_wh=imported, exported_wh=exported, measured_wh=measured,
        deviation_wh=deviation, energy_paid=position.paid, energy_received=position.received,
        fees_paid=position.fees_paid, balancing_charge=charge, balancing_credit=credit,
        collateral_released=position.collateral, collateral_used=min(paid, position.collateral),
        paid_from_balance=paid - min(paid, position.collateral), debt_added=debt, credit_unpaid=credit_due - credit,
        height=height,
    )
    state.kv.set(b"stl/rep/" + be64(slot) + b"/" + account_id.encode(), report.encode())
    state.kv.set(b"stl/acct/" + account_id.encode() + b"/" + be64(slot), b"")
    _add_to_slot(state, slot, report, height)
    return event("settlement.participant", slot=slot, account=account_id, contracted_wh=contracted,
                 measured_wh=measured, deviation_wh=deviation, balancing_charge=charge, balancing_credit=credit,
                 collateral_used=report.collateral_used, debt_added=debt)


def _add_to_slot(state: State, slot: int, report: SettlementReport, height: int) -> None:
    total = get_slot_settlement(state, slot) or SlotSettlement(slot, 0, 0, 0, 0, 0, 0, False, height)
    state.kv.set(b"stl/slot/" + be64(slot), replace(
        total, participants=total.participants + 1,
        shortfall_wh=total.shortfall_wh + max(0, -report.deviation_wh),
        surplus_wh=total.surplus_wh + max(0, report.deviation_wh),
        charges=total.charges + report.balancing_charge, credits=total.credits + report.balancing_credit,
        debt=total.debt + report.debt_added, height=height,
    ).encode())


def _complete_slot(state: State, slot: int, height: int) -> Event:
    total = get_slot_settlement(state, slot)
    assert total is not None
    total = replace(total, complete=True, height=height)
    state.kv.set(b"stl/slot/" + be64(slot), total.encode())
    return event("settlement.slot", slot=slot, participants=total.participants, shortfall_wh=total.shortfall_wh,
                 surplus_wh=total.surplus_wh, charges=total.charges, credits=total.credits, debt=total.debt)


def get_slot_settlement(state: State, slot: int) -> SlotSettlement | None:
    raw = state.kv.get(b"stl/slot/" + be64(slot))
    return SlotSettlement.decode(raw) if raw is not None else None


def get_report(state: State, slot: int, account_id: str) -> SettlementReport | None:
    raw = state.kv.get(b"stl/rep/" + be64(slot) + b"/" + account_id.encode())
    return SettlementReport.decode(raw) if raw is not None else None


def slot_reports(state: State, slot: int) -> list[SettlementReport]:
    prefix = b"stl/rep/" + be64(slot) + b"/"
    return [SettlementReport.decode(raw) for _, raw in state.kv.iterate(prefix, prefix_end(prefix))]


def account_reports(state: State, account_id: str, limit: int) -> list[SettlementReport]:
    prefix = b"stl/acct/" + account_id.encode() + b"/"
    slots = [unbe64(key[-8:]) for key, _ in state.kv.iterate(prefix, prefix_end(prefix))][-limit:]
    reports = [get_report(state, slot, account_id) for slot in slots]
    return [r for r in reports if r is not None]


def repay_debt(state: State, account: Account, time: int, height: int) -> int:
    """After a deposit: pay the account's debt to the balancing LPD from its free balance."""
    repay = min(account.debt, account.free)
    if repay == 0:
        return 0
    lpd = balancing_lpd(state)
    state.debit(account.id, repay)
    state.credit(lpd, repay)
    account = state.require_account(account.id)
    state.put_account(replace(account, debt=account.debt - repay))
    state.journal(account.id, time, height, "debt_repaid", -repay, lpd)
    state.journal(lpd, time, height, "debt_received", repay, account.id)
    return repay
