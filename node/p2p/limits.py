"""Resource bounds of the p2p layer: sizes, per-peer token buckets, a bounded seen-cache, counters.

Nothing a remote peer sends may grow memory without bound or keep the host
busy for others: every table here has a fixed capacity and forgets the
oldest entry first.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

DROP_REASONS = (
    "oversized",
    "rate_limited",
    "malformed",
    "wrong_chain",
    "wrong_topic",
    "expired",
    "duplicate",
    "bad_signature",
    "untrusted",
)


@dataclass(frozen=True)
class Limits:
    """Every bound in one place (docs/p2p.md lists the defaults)."""

    max_offer_bytes: int = 1024
    """An offer is about 200 bytes; anything much larger is junk."""
    max_feed_bytes: int = 64 * 1024
    max_slots_per_feed: int = 16
    max_levels_per_side: int = 5
    max_trades_per_feed: int = 200
    offer_rate_per_s: float = 5.0
    """Sustained offers per second accepted from one origin peer."""
    offer_burst: int = 20
    feed_rate_per_s: float = 20.0
    feed_burst: int = 100
    max_peers_tracked: int = 4096
    """Token buckets kept; the least recently seen peer's bucket is forgotten first."""
    seen_capacity: int = 100_000
    """Offer ids / snapshot keys remembered for duplicate detection."""
    max_cached_offers: int = 10_000
    max_offers_per_maker: int = 200
    max_watchers: int = 16
    watcher_queue: int = 64


class TokenBucket:
    """Classic token bucket: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class PeerRateLimiter:
    """One token bucket per peer, for at most ``max_peers`` peers (LRU)."""

    def __init__(self, rate: float, burst: int, max_peers: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.max_peers = max_peers
        self.clock = clock
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def allow(self, peer: Hashable) -> bool:
        now = self.clock()
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            self._buckets[peer] = bucket
            if len(self._buckets) > self.max_peers:
                # A forgotten peer restarts with a full bucket: bounded memory wins
                # over perfect fairness, and one bucket is a small allowance.
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(peer)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)


class SeenCache:
    """The last ``capacity`` keys seen, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys)


class DropCounters:
    """How many messages were dropped, per reason (every reason listed, zeros included)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self.accepted = 0

    def drop(self, reason: str) -> None:
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}")
        self._counts[reason] += 1

    def __getitem__(self, reason: str) -> int:
        return self._counts[reason]

    def as_dict(self) -> dict[str, int]:
        return {reason: self._counts[reason] for reason in DROP_REASONS}

    @property
    def dropped(self) -> int:
        return sum(self._counts.values())
