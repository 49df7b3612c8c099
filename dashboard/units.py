"""Exact display formats for the chain's integer units (never via floats).

Money is in the currency's smallest unit, energy in Wh, prices in money per
kWh, times in unix seconds (UTC). The formats match the CLI's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

DAY_S = 86_400


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int

    def money(self, amount: int) -> str:
        """``-1.500000 EUR`` for -1500000 at exponent 6."""
        sign = "-" if amount < 0 else ""
        whole, frac = divmod(abs(amount), 10**self.exponent)
        digits = f".{frac:0{self.exponent}d}" if self.exponent else ""
        return f"{sign}{whole}{digits} {self.code}"

    def price(self, per_kwh: int) -> str:
        return f"{self.money(per_kwh)}/kWh"

    def units(self, amount: int) -> float:
        """For charts only: the amount in whole currency units (display precision is enough)."""
        return float(amount) / float(10**self.exponent)


def energy(wh: int) -> str:
    """``2.500 kWh`` from 1 kWh up, ``500 Wh`` below."""
    if abs(wh) >= 1_000:
        whole, frac = divmod(abs(wh), 1_000)
        return f"{'-' if wh < 0 else ''}{whole}.{frac:03d} kWh"
    return f"{wh} Wh"


def utc(seconds: int) -> str:
    """``2026-11-21T12:00:00Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_label(seconds: int) -> str:
    """``2026-11-21 12:00Z``: a slot start as people read it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%MZ")


def day_of(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def parse_day(text: str) -> int:
    """Unix seconds of 00:00 UTC of an ISO date (``2026-11-21``); ValueError otherwise."""
    day = date.fromisoformat(text)
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
