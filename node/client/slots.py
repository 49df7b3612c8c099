"""Delivery slots and order times as people write them: ``next``, ``+2h``, ``2026-11-27T14:00Z``, ``slot-end``.

Everything here is client-side convenience: it turns what a person typed into
the unix seconds a transaction carries, against ``now`` (the chain's last
block time when a node is asked, this machine's clock offline). The ledger
decides again with its own block time (docs/market.md), so a slot resolved a
moment before its gate closes may still be refused there.

* ``--slot``: ``next`` (the first slot whose gate is open), ``+DURATION`` (the
  slot in progress that long from now: ``+2h``, ``+1h30m``, ``+45m``, ``+1d``),
  ISO 8601 with a zone, or unix seconds. A time that is not a slot start is
  refused with the two nearest starts, never rounded silently.
* ``--valid-until``: ``+DURATION`` from now, ``gate`` (the slot's gate
  closure), ``slot-start``, ``slot-end``, ISO 8601, or unix seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from node.client.units import UnitError, parse_time

_DURATION = re.compile(r"\+((?:\d+[dhms])+)")
_PART = re.compile(r"(\d+)([dhms])")
_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def iso(seconds: int) -> str:
    """Unix seconds as ISO 8601 UTC without seconds when they are zero: ``2026-11-27T14:00Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%MZ" if moment.second == 0 else "%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> int | None:
    """``+1h30m`` -> 5400; None when ``text`` is not a relative duration."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return sum(int(amount) * _SECONDS[unit] for amount, unit in _PART.findall(match.group(1)))


@dataclass(frozen=True)
class SlotRules:
    """The chain parameters that say which slots are open."""

    slot_length_s: int
    gate_closure_lead_s: int
    max_slot_ahead_s: int

    def next_open(self, now: int) -> int:
        """The first slot start whose gate (start - lead) is still ahead of ``now``."""
        return ((now + self.gate_closure_lead_s) // self.slot_length_s + 1) * self.slot_length_s

    def gate(self, slot: int) -> int:
        return slot - self.gate_closure_lead_s

    def open_slots(self, now: int, count: int) -> list[int]:
        """Up to ``count`` open slots from the next one, no further ahead than the chain accepts."""
        first, last = self.next_open(now), now + self.max_slot_ahead_s
        return [slot for slot in range(first, last + 1, self.slot_length_s)][:count]

    def check_aligned(self, slot: int) -> int:
        length = self.slot_length_s
        if slot % length:
            before = slot // length * length
            raise UnitError(f"{iso(slot)} is not a slot start: slots start every {_human(length)} "
                            f"(e.g. {iso(before)} or {iso(before + length)}), or use --slot next")
        return slot

    def check_open(self, slot: int, now: int) -> int:
        """``slot`` if its gate is open at ``now`` and it is not too far ahead; else a UnitError that names the fix."""
        self.check_aligned(slot)
        if now >= self.gate(slot):
            raise UnitError(f"the gate of slot {iso(slot)} closed at {iso(self.gate(slot))} (now {iso(now)}); "
                            f"the next open slot is {iso(self.next_open(now))} (--slot next)")
        if slot - now > self.max_slot_ahead_s:
            raise UnitError(f"slot {iso(slot)} is more than {_human(self.max_slot_ahead_s)} ahead; "
                            f"the last slot open now is {iso(self.open_slots(now, 10**6)[-1])}")
        return slot

    def resolve(self, text: str, now: int) -> int:
        """The slot start ``text`` names (see the module doc), aligned; not yet checked for being open."""
        stripped = text.strip().lower()
        if stripped == "next":
            return self.next_open(now)
        ahead = parse_duration(stripped)
        if ahead is not None:
            return (now + ahead) // self.slot_length_s * self.slot_length_s
        try:
            return self.check_aligned(parse_time(text))
        except UnitError as exc:
            if "is not a slot start" in str(exc) or "has no zone" in str(exc):
                raise
            raise UnitError(f"slot {text!r}: write next, +2h (the slot in two hours), or a slot start in "
                            f"ISO 8601 with a zone, e.g. 2026-11-27T14:00Z") from None


def resolve_valid_until(text: str | None, slot: int, rules: SlotRules, now: int) -> int:
    """``--valid-until`` as unix seconds (default: the slot start; see the module doc)."""
    if text is None:
        return slot
    stripped = text.strip().lower()
    named = {"gate": rules.gate(slot), "slot-start": slot, "slot-end": slot + rules.slot_length_s}
    if stripped in named:
        return named[stripped]
    ahead = parse_duration(stripped)
    if ahead is not None:
        return now + ahead
    try:
        return parse_time(text)
    except UnitError:
        raise UnitError(f"valid-until {text!r}: write +15m, gate, slot-start, slot-end or ISO 8601 with a zone") \
            from None


def _human(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} d"
    if seconds % 3_600 == 0:
        return f"{seconds // 3_600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
