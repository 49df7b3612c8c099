"""Typed ABCI events: every state change says what happened, indexably."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One ABCI event; every attribute is indexed so ``tx_search`` can find it."""

    type: str
    attributes: tuple[tuple[str, str], ...]


def event(event_type: str, /, **attributes: object) -> Event:
    """``event("transfer", sender=a, amount=5)``: values are written as decimal or text."""
    return Event(event_type, tuple([(key, _text(value)) for key, value in attributes.items()]))


def _text(value: object) -> str:
    kind = type(value)
    if kind is str:  # the usual cases first: text and integers are most attributes of most events
        return value  # type: ignore[return-value]
    if kind is int:
        return int.__repr__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
