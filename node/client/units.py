"""Human units in, integers on the wire.

Energy: ``1500Wh``, ``1.5kWh``, ``2MWh`` -> Wh. Money: ``12.50EUR`` (the chain's
currency symbol, or no symbol) -> smallest unit. Price: ``0.12EUR/kWh`` ->
smallest unit per kWh. Input more precise than the integer unit, or with an
unknown or missing unit where one is required, is rejected: silently rounding
someone's order would be worse than refusing it.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

ENERGY_UNITS = {"Wh": 1, "kWh": 1_000, "MWh": 1_000_000}
_NUMBER = r"(?P<number>[0-9]+(?:\.[0-9]+)?)"


class UnitError(ValueError):
    """A quantity the CLI will not guess at."""


def _exact(number: Decimal, scale: int, text: str, unit: str) -> int:
    value = number * scale
    if value != value.to_integral_value():
        raise UnitError(f"{text!r} is more precise than 1 {unit}")
    return int(value)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise UnitError(f"{text!r} is not a number") from exc


def parse_energy(text: str) -> int:
    """``1.5kWh`` -> 1500 (Wh). A unit is required."""
    match = re.fullmatch(_NUMBER + r"\s*(?P<unit>Wh|kWh|MWh)", text.strip())
    if match is None:
        raise UnitError(f"energy {text!r}: write a number with Wh, kWh or MWh, e.g. 1.5kWh or 1500Wh")
    return _exact(_decimal(match["number"]), ENERGY_UNITS[match["unit"]], text, "Wh")


def parse_money(text: str, currency: str, exponent: int) -> int:
    """``12.5EUR`` or ``12.5`` -> 12_500_000 (with exponent 6)."""
    match = re.fullmatch(_NUMBER + r"\s*(?P<unit>[A-Za-z]+)?", text.strip())
    if match is None:
        raise UnitError(f"amount {text!r}: write a number with an optional {currency}, e.g. 12.50{currency}")
    if match["unit"] is not None and match["unit"] != currency:
        raise UnitError(f"amount {text!r}: this chain settles in {currency}")
    return _exact(_decimal(match["number"]), 10**exponent, text, f"{currency} smallest unit (1e-{exponent})")


def parse_price(text: str, currency: str, exponent: int) -> int:
    """``0.12EUR/kWh`` -> 120_000 (smallest unit per kWh, exponent 6). Both units are required."""
    match = re.fullmatch(_NUMBER + r"\s*(?P<cur>[A-Za-z]+)/(?P<unit>Wh|kWh|MWh)", text.strip())
    if match is None:
        raise UnitError(f"price {text!r}: write e.g. 0.12{currency}/kWh")
    if match["cur"] != currency:
        raise UnitError(f"price {text!r}: this chain settles in {currency}")
    per_kwh = _decimal(match["number"]) * 10**exponent * ENERGY_UNITS["kWh"] / ENERGY_UNITS[match["unit"]]
    return _exact(per_kwh, 1, text, f"{currency} smallest unit per kWh")


def format_money(amount: int, currency: str, exponent: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole}.{frac:0{exponent}d} {currency}" if exponent else f"{sign}{whole} {currency}"


def format_energy(wh: int) -> str:
    if abs(wh) >= 1_000:
        whole, frac = divmod(abs(wh), 1_000)
        return f"{'-' if wh < 0 else ''}{whole}.{frac:03d} kWh"
    return f"{wh} Wh"


POWER_UNITS = {"W": 1, "kW": 1_000, "MW": 1_000_000}


def parse_power(text: str) -> int:
    """``11kW`` -> 11000 (W). A unit is required."""
    match = re.fullmatch(_NUMBER + r"\s*(?P<unit>W|kW|MW)", text.strip())
    if match is None:
        raise UnitError(f"power {text!r}: write a number with W, kW or MW, e.g. 11kW")
    return _exact(_decimal(match["number"]), POWER_UNITS[match["unit"]], text, "W")


def parse_time(text: str) -> int:
    """``1767229200`` or ``2026-01-01T01:00:00Z`` / ``...+01:00`` -> unix seconds.

    A zone (``Z`` or an offset) is required: a time read in the machine's local
    zone would name a different slot on another machine.
    """
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():
        return int(stripped)
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise UnitError(f"time {text!r}: write unix seconds or ISO 8601 with a zone, e.g. 2026-01-01T10:15Z") from exc
    if moment.tzinfo is None:
        raise UnitError(f"time {text!r} has no zone: add Z (UTC) or an offset like +01:00")
    return int(moment.timestamp())


def format_price(per_kwh: int, currency: str, exponent: int) -> str:
    return format_money(per_kwh, currency, exponent) + "/kWh"
