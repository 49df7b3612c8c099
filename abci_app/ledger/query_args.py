"""Helpers every module's queries share: argument parsing and not-found answers."""

from __future__ import annotations

from typing import TypeVar

from abci_app.ledger import codec, errors

T = TypeVar("T")
MAX_INT_DIGITS = len(str(codec.MAX_INT))


def u64_arg(text: str, what: str) -> int:
    """A decimal query argument that fits a 64-bit signed integer (code 100 otherwise)."""
    # The length is checked first: int() of thousands of digits is slow, and refused by Python itself.
    if not (0 < len(text) <= MAX_INT_DIGITS and text.isascii() and text.isdigit()) or int(text) > codec.MAX_INT:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise errors.BadQuery(f"{what} {shown!r} is not a non-negative 64-bit integer")
    return int(text)


def found(value: T | None, what: str) -> T:
    if value is None:
        raise errors.NotFound(f"{what} not found")
    return value
