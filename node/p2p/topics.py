"""Gossipsub topic names: one offers topic and one feed topic per chain and zone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from abci_app.ledger.msg import NAME_PATTERN

Kind = Literal["offers", "feed"]
KINDS: tuple[Kind, ...] = ("offers", "feed")
PREFIX = "gridledger"


def topic(chain_id: str, kind: Kind, zone: str) -> str:
    """``gridledger/<chain_id>/<kind>/<zone>``; the zone must be a valid zone name."""
    if not NAME_PATTERN.fullmatch(zone):
        raise ValueError(f"{zone!r} is not a valid zone name")
    if not chain_id or "/" in chain_id:
        raise ValueError(f"{chain_id!r} is not a usable chain id")
    return f"{PREFIX}/{chain_id}/{kind}/{zone}"


@dataclass(frozen=True)
class Topic:
    chain_id: str
    kind: Kind
    zone: str


def parse(name: str) -> Topic | None:
    """The parts of one of our topic names, or None for any other string."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != PREFIX or parts[2] not in KINDS:
        return None
    kind: Kind = "offers" if parts[2] == "offers" else "feed"
    return Topic(chain_id=parts[1], kind=kind, zone=parts[3])
