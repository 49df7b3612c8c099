"""An order as a person writes it, checked against the chain's parameters before anything is signed.

The ledger checks every rule again (docs/market.md); these checks exist so a
mistake is reported at once, with the fix, as an input error (exit code 2),
instead of a rejected transaction. Offline (``params`` None) only what needs no
chain is checked: the choices and the units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from abci_app.ledger.modules.market.msgs import PlaceOrder
from abci_app.ledger.modules.market.records import ASK, BID, ORIGINS, SIDES, TIME_IN_FORCE
from node.client.slots import SlotRules, iso, resolve_valid_until
from node.client.units import UnitError, format_price, parse_energy, parse_price, parse_time


@dataclass(frozen=True)
class OrderInput:
    side: str
    qty: str
    price: str
    slot: str
    valid_until: str | None = None
    tif: str = "limit"
    client_order_id: str = ""
    origin: str = ""
    accept: str = ""


def _choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UnitError(f"{what} {value!r}: choose one of {', '.join(allowed)}")
    return value


def rules_of(params: Mapping[str, Any]) -> SlotRules:
    return SlotRules(params["slot_length_s"], params["gate_closure_lead_s"], params["max_slot_ahead_s"])


def build_order(order: OrderInput, currency: str, exponent: int, params: Mapping[str, Any] | None,
                now: int) -> PlaceOrder:
    """The ``place_order`` message, or a UnitError naming what to change."""
    side = _choice("side", order.side.lower(), SIDES)
    tif = _choice("time in force", order.tif.lower(), TIME_IN_FORCE)
    origin = order.origin.lower()
    accepted = tuple(sorted({o.strip().lower() for o in order.accept.split(",") if o.strip()}))
    if side == ASK:
        if accepted:
            raise UnitError("--accept is for bids; an ask states its --origin")
        _choice("origin", origin, ORIGINS)
    else:
        if origin:
            raise UnitError("--origin is for asks; a bid lists the origins it takes with --accept")
        for name in accepted:
            _choice("accepted origin", name, ORIGINS)
    quantity = parse_energy(order.qty)
    price = parse_price(order.price, currency, exponent)
    if params is None:
        slot = parse_time(order.slot)
        valid_until = parse_time(order.valid_until) if order.valid_until is not None else slot
    else:
        rules = rules_of(params)
        slot = rules.check_open(rules.resolve(order.slot, now), now)
        valid_until = resolve_valid_until(order.valid_until, slot, rules, now)
        _check_against_params(params, quantity, price, valid_until, now, currency, exponent)
    return PlaceOrder(side=side, quantity_wh=quantity, price=price, slot=slot, valid_until=valid_until, tif=tif,
                      client_order_id=order.client_order_id, origin=origin if side == ASK else "",
                      accept_origins=accepted if side == BID else ())


def _check_against_params(params: Mapping[str, Any], quantity: int, price: int, valid_until: int, now: int,
                          currency: str, exponent: int) -> None:
    def money(value: int) -> str:
        return format_price(value, currency, exponent)

    tick = params["tick_size"]
    if price % tick:
        lower = price // tick * tick
        raise UnitError(f"price {money(price)} is not on the tick of {money(tick)}: "
                        f"use {money(lower)} or {money(lower + tick)}")
    if not params["min_price_per_kwh"] <= price <= params["max_price_per_kwh"]:
        raise UnitError(f"price {money(price)} is outside {money(params['min_price_per_kwh'])} .. "
                        f"{money(params['max_price_per_kwh'])}")
    if quantity < params["min_quantity_wh"]:
        raise UnitError(f"quantity {quantity} Wh is below the minimum of {params['min_quantity_wh']} Wh")
    if valid_until < now:
        raise UnitError(f"valid-until {iso(valid_until)} has passed (now {iso(now)}): use e.g. +15m")
