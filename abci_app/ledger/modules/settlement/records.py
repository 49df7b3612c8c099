"""Records of the settlement module (docs/settlement.md)."""

from __future__ import annotations

from abci_app.ledger.wire import I64, Record

MARKET, TARIFF = "market", "tariff"
"""A participant's regime in a slot: it traded (deviations from its trades are settled), or it did not (its
energy is supplied and taken at the default tariffs)."""
MEASURE, CHARGE, PAY = 0, 1, 2
"""Phases of a slot's settlement: measure every participant, charge them, pay the creditors."""


class LastReading(Record, frozen=True):
    time: I64
    import_register_wh: I64
    export_register_wh: I64


class SlotReading(Record, frozen=True):
    """A meter's energy in one slot: its share of a reading, or the substitute for a missing one."""

    owner: str
    imported_wh: I64
    exported_wh: I64
    substituted: bool = False
    """No reading covered the slot by its deadline: the worst case for the owner was billed."""


class SettlementReport(Record, frozen=True):
    """One participant's settlement of one slot (energy in Wh, money in the smallest unit)."""

    slot: I64
    account: str
    regime: str
    """market (it traded in the slot) | tariff (it did not)."""
    bought_wh: I64
    sold_wh: I64
    contracted_wh: I64
    """C = sold - bought."""
    imported_wh: I64
    exported_wh: I64
    measured_wh: I64
    """M = exported - imported (substitutes included)."""
    deviation_wh: I64
    """D = M - C."""
    substituted: bool
    """Part of the measured energy is a substitute for a missing reading."""
    energy_paid: I64
    """Paid for energy bought (at trade time)."""
    energy_received: I64
    fees_paid: I64
    price_high: I64
    """The dearer of its average buy and sell prices per kWh, rounded up (0 without trades)."""
    price_low: I64
    """The cheaper of its average buy and sell prices per kWh, rounded down (0 without trades)."""
    shortfall_wh: I64
    """Market regime: -D if D < 0 (delivered less or consumed more than contracted)."""
    surplus_wh: I64
    """Market regime: D if D > 0."""
    netted_wh: I64
    """The part of the shortfall or surplus offset inside the community (a shortfall's netted part is charged
    at least the reference price; a surplus is paid min(own price, balancing sell price) either way)."""
    supplied_wh: I64
    """Tariff regime: net import, at the supplier tariff."""
    fed_in_wh: I64
    """Tariff regime: net export, at the feed-in tariff."""
    unmatched_import_wh: I64
    """Import not covered by energy bought: it pays the zone's grid fee as network charge."""
    balancing_charge: I64
    """Shortfall at max(own price, reference price, balancing sell price) for the netted part, max(own price,
    balancing buy price) for the rest."""
    supply_charge: I64
    network_charge: I64
    charged: I64
    """balancing_charge + supply_charge + network_charge."""
    collateral_released: I64
    """What the slot's position held (collateral, and a seller's proceeds), released when it was charged."""
    collateral_used: I64
    """Part of the charge paid out of the released collateral."""
    paid_from_balance: I64
    """Part of the charge paid from the rest of the free balance."""
    debt_added: I64
    """Part of the charge left unpaid: the account's debt to the balancing reserve."""
    debt_written_off: I64
    """Part of the charge beyond a debt of 2^63 - 1, more than any money that can exist (docs/state.md)."""
    balancing_credit_due: I64
    """Surplus at min(own price, reference price) for the netted part, min(own price, balancing sell price)
    for the rest."""
    feed_in_due: I64
    credit_paid: I64
    """What the reserve paid of the credits due (in full unless it lacked funds)."""
    credit_owed: I64
    """What it could not pay: owed to the account and paid first when the reserve has funds."""
    height: I64


class SlotSettlement(Record, frozen=True):
    """A slot's settlement: its phase, running totals and the outcome."""

    slot: I64
    phase: I64
    """0 measure, 1 charge, 2 pay (docs/settlement.md "When a slot settles")."""
    participants: I64
    shortfall_wh: I64
    """Market regime, summed."""
    surplus_wh: I64
    traded_wh: I64
    """Energy traded in the slot (for the reference price)."""
    traded_value: I64
    """Money paid for that energy."""
    reference_price: I64
    """traded_value per kWh traded, rounded down: the price of the deviations netted inside the community."""
    netted_wh: I64
    """min(shortfall, surplus): offset inside the community."""
    balancing_bought_wh: I64
    """Net shortfall the LPD supplied at the balancing buy price."""
    balancing_sold_wh: I64
    """Net surplus the LPD took at the balancing sell price."""
    supplied_wh: I64
    fed_in_wh: I64
    charges: I64
    """Everything charged to participants (balancing, supply, network)."""
    collected: I64
    """What they paid of it."""
    debt: I64
    """What they could not pay."""
    credits_due: I64
    """Participants' balancing and feed-in credits."""
    lpd_due: I64
    """What the reserve owes the LPD: supply charges plus the net shortfall at the balancing buy price."""
    lpd_owes: I64
    """What the LPD owes the reserve: feed-in plus the net surplus at the balancing sell price."""
    dso_due: I64
    """Network charges due to the DSOs."""
    paid: I64
    """What the reserve paid to its creditors for this slot."""
    owed: I64
    """What it could not: recorded as owed."""
    pay_numerator: I64
    pay_denominator: I64
    """Every participant the reserve owes for the slot (balancing and feed-in credits) gets
    due x numerator // denominator (the same fraction; 1 unless the reserve is short)."""
    operators_numerator: I64
    operators_denominator: I64
    """Every operator it owes for the slot (the DSOs' network charges, the LPD's supply and balancing) gets
    due x numerator // denominator of what the participants left (operators bear a defaulter's loss)."""
    complete: bool
    height: I64


class Owed(Record, frozen=True):
    """An amount a debtor (the balancing reserve, or the LPD to the reserve) could not pay for a slot."""

    debtor: str
    creditor: str
    slot: I64
    amount: I64
    reason: str
    """balancing_credit | feed_in | network_charge | lpd_settlement | reserve_settlement."""
