"""Chain parameters: one record every module reads, changed only by governance (``propose_params``).

Key: ``params`` -> ``Params`` (absent: the defaults).
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgspec.structs import replace

from abci_app.ledger import errors
from abci_app.ledger.state import State
from abci_app.ledger.wire import I64, Record

PARAMS_KEY = b"params"
MAX_PRICE = 1_000_000_000
"""Upper bound of every price-like parameter, in money per kWh (1,000 EUR/kWh at exponent 6).

Worst case it is derived from (docs/state.md, "Arithmetic bounds"): a participant has at most
MAX_METERS meters of at most 10^8 W each, so at most 2.4 x 10^11 Wh in a slot of a day; every
money amount of one participant and slot (energy, route fees of up to two DSO components, the
balancing charge, the supplier tariff, collateral) then stays below 2.4 x 10^8 kWh x 5 x MAX_PRICE
= 1.2 x 10^18, under 2^63 - 1 = 9.2 x 10^18."""
MAX_METERS = 100
"""Upper bound of ``max_meters_per_participant``."""


class Params(Record, frozen=True):
    """Chain parameters, changed only by governance (``propose_params``)."""

    currency: str = "EUR"
    """Settlement currency symbol (fixed at genesis)."""
    currency_exponent: I64 = 6
    """Decimal places of the smallest unit: 6 means micro-euro (fixed at genesis)."""
    max_tx_bytes: I64 = 65_536
    """Largest transaction accepted, in bytes."""
    voting_period_s: I64 = 86_400
    """How long a governance proposal stays open, in seconds of block time."""
    max_meters_per_participant: I64 = 16
    """Cap on registered meters of one participant."""
    # -- market (docs/market.md) --
    slot_length_s: I64 = 900
    """Length of a delivery slot in seconds; slots start at multiples of it (fixed at genesis)."""
    gate_closure_lead_s: I64 = 300
    """A slot's book closes this many seconds before the slot starts."""
    max_slot_ahead_s: I64 = 172_800
    """Orders may name slots starting at most this far after the block time."""
    tick_size: I64 = 100
    """Limit prices are multiples of this (money per kWh; 100 = 0.01 ct/kWh at exponent 6)."""
    min_quantity_wh: I64 = 100
    """Smallest order quantity in Wh."""
    max_price_per_kwh: I64 = 10_000_000
    """Highest limit price (money per kWh; 10 EUR/kWh at exponent 6)."""
    min_price_per_kwh: I64 = 0
    """Lowest limit price and call-auction price (money per kWh); 0 lets a midday PV glut clear at zero."""
    max_open_orders: I64 = 200
    """Open orders one account may hold at a time."""
    collateral_per_kwh: I64 = 20_000
    """Stability collateral both sides lock per kWh traded, until the slot is settled."""
    matching_mode: I64 = 0
    """0: continuous double auction (pay-as-bid); 1: uniform-price call auction per zone at gate closure."""
    # -- settlement (docs/settlement.md) --
    settlement_window_s: I64 = 3_600
    """Meter readings for a slot are accepted until slot end plus this; the slot settles after it."""
    balancing_buy_price: I64 = 600_000
    """Price per kWh a party pays the LPD for a shortfall (delivered or absorbed less than contracted)."""
    balancing_sell_price: I64 = 50_000
    """Price per kWh the LPD pays a party for a surplus."""
    settlement_batch: I64 = 200
    """Participants settled per block at most; a larger slot settles over several blocks."""
    supplier_tariff: I64 = 300_000
    """Price per kWh of energy a participant without a trade in the slot imports: the LPD supplies it as the
    default supplier."""
    feed_in_tariff: I64 = 80_000
    """Price per kWh the LPD pays for energy a participant without a trade in the slot exports."""

    # Parameters fixed at genesis: changing them later would reinterpret stored amounts and slots.
    IMMUTABLE: ClassVar[tuple[str, ...]] = ("currency", "currency_exponent", "slot_length_s")
    # Inclusive bounds for every changeable parameter.
    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "max_tx_bytes": (256, 1 << 20),
        "voting_period_s": (60, 365 * 86_400),
        "max_meters_per_participant": (1, MAX_METERS),
        "gate_closure_lead_s": (0, 86_400),
        "max_slot_ahead_s": (3_600, 31 * 86_400),
        "tick_size": (1, MAX_PRICE),
        "min_quantity_wh": (1, 1_000_000_000),
        "max_price_per_kwh": (1, MAX_PRICE),
        "min_price_per_kwh": (0, MAX_PRICE),
        "max_open_orders": (1, 10_000),
        "collateral_per_kwh": (0, MAX_PRICE),
        "matching_mode": (0, 1),
        "settlement_window_s": (60, 7 * 86_400),
        "balancing_buy_price": (0, MAX_PRICE),
        "balancing_sell_price": (0, MAX_PRICE),
        "settlement_batch": (1, 100_000),
        "supplier_tariff": (0, MAX_PRICE),
        "feed_in_tariff": (0, MAX_PRICE),
    }
    # Slot lengths a chain may choose at genesis: whole minutes that divide a day, or 10-30 s dividing a
    # minute. Markets settle in 5 to 60 minutes; the shorter lengths are for replays and experiments, where
    # a short slot stands for an hour so that a day plays in minutes (docs/scenarios.md). Below 10 s a slot
    # would span too few blocks for orders and readings to land before its gate and deadline.
    SLOT_LENGTHS: ClassVar[tuple[int, ...]] = (
        10, 12, 15, 20, 30, *(s for s in range(60, 86_401, 60) if 86_400 % s == 0))
    SLOT_LENGTH_RULE: ClassVar[str] = "slot_length_s must divide a day and be whole minutes or 10, 12, 15, 20 or 30 s"


def get_params(state: State) -> Params:
    return state.get(PARAMS_KEY, Params) or Params()


def put_params(state: State, params: Params) -> None:
    state.put(PARAMS_KEY, params)


def check_param_change(name: str, value: int) -> None:
    """Rules of one parameter change (a proposal's, or a genesis override of a changeable parameter)."""
    # Rule: the parameter exists.
    if name not in Params.__struct_fields__:
        raise errors.UnknownParam(f"no parameter named {name!r}")
    # Rule: currency and slot length are fixed at genesis.
    if name in Params.IMMUTABLE:
        raise errors.NotAuthorised(f"parameter {name} is fixed at genesis")
    low, high = Params.BOUNDS[name]
    # Rule: every changeable parameter stays within its documented bounds.
    if not low <= value <= high:
        raise errors.ValueOutOfRange(f"{name} must be between {low} and {high}")


def params_from_genesis(overrides: dict[str, Any]) -> Params:
    """The defaults with a genesis's ``params`` overrides, each checked as a proposal's would be."""
    params = Params()
    for name in sorted(overrides):
        value = overrides[name]
        if name in Params.IMMUTABLE and name in Params.__struct_fields__:
            # Rule: a fixed parameter has the type of its default.
            if type(value) is not type(getattr(params, name)):
                raise errors.MalformedBody(f"parameter {name} has the wrong type")
            # Rule: slots divide a day, and are whole minutes or a short length dividing a minute.
            if name == "slot_length_s" and value not in Params.SLOT_LENGTHS:
                raise errors.ValueOutOfRange(Params.SLOT_LENGTH_RULE)
        else:
            # Rule: a changeable parameter is an integer within its bounds.
            if type(value) is not int:
                raise errors.MalformedBody(f"parameter {name} must be an integer")
            check_param_change(name, value)
        params = replace(params, **{name: value})
    return params


def check_params_consistent(params: Params) -> None:
    """Rules between parameters (genesis, a proposal when sent, and again when it passes)."""
    # Rule: the price floor is not above the cap.
    if params.min_price_per_kwh > params.max_price_per_kwh:
        raise errors.ValueOutOfRange(f"min_price_per_kwh {params.min_price_per_kwh} is above max_price_per_kwh "
                                     f"{params.max_price_per_kwh}")
    # Rule: the LPD never buys surplus dearer than it sells shortfall, so netting deviations cannot lose money.
    if params.balancing_sell_price > params.balancing_buy_price:
        raise errors.ValueOutOfRange(f"balancing_sell_price {params.balancing_sell_price} is above "
                                     f"balancing_buy_price {params.balancing_buy_price}")
