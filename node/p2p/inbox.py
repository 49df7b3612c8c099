"""Verification of everything that arrives on our topics, and the cache of live offers.

``Inbox.admit`` decides for each gossipsub message whether it is delivered
(and relayed) or dropped, and counts every drop by reason. The checks run
cheapest first, so junk costs little: topic, size, the origin peer's token
bucket, decoding, chain id, field ranges, topic zone, expiry, duplicate, and
only then the Ed25519 signature. The libp2p host calls it as its topic
validator, so a dropped message is never forwarded to other peers.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from abci_app.ledger import crypto
from node.p2p import messages, topics
from node.p2p.limits import DropCounters, Limits, PeerRateLimiter, SeenCache
from node.p2p.messages import MessageError, SignedFeed, SignedOffer


@dataclass(frozen=True)
class Admitted:
    """A message that passed every check: exactly one of ``offer`` and ``feed`` is set."""

    offer: SignedOffer | None = None
    feed: SignedFeed | None = None


class Dropped(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class OfferCache:
    """Live verified offers by id, bounded in total and per maker; expired ones are swept."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._offers: OrderedDict[bytes, SignedOffer] = OrderedDict()
        self._by_maker: dict[str, OrderedDict[bytes, None]] = {}
        self._expiry: list[tuple[int, bytes]] = []
        """Heap of (valid_until, offer id); may hold ids already evicted."""
        self.evicted = 0

    def add(self, offer: SignedOffer, now: int) -> None:
        self.sweep(now)
        mine = self._by_maker.get(offer.body.maker)
        if mine is not None and len(mine) >= self.limits.max_offers_per_maker:
            self._remove(next(iter(mine)))
            self.evicted += 1
        if len(self._offers) >= self.limits.max_cached_offers:
            # Oldest first: a fresh offer always gets in, and a flood has to
            # outpace every peer's token bucket to push others out.
            self._remove(next(iter(self._offers)))
            self.evicted += 1
        self._offers[offer.offer_id] = offer
        self._by_maker.setdefault(offer.body.maker, OrderedDict())[offer.offer_id] = None
        heapq.heappush(self._expiry, (offer.body.valid_until, offer.offer_id))
        if len(self._expiry) > 2 * len(self._offers) + 64:
            # Entries of evicted offers pile up; rebuild so the heap stays bounded.
            self._expiry = [(o.body.valid_until, oid) for oid, o in self._offers.items()]
            heapq.heapify(self._expiry)

    def _remove(self, oid: bytes) -> None:
        offer = self._offers.pop(oid)
        mine = self._by_maker[offer.body.maker]
        del mine[oid]
        if not mine:
            del self._by_maker[offer.body.maker]

    def sweep(self, now: int) -> None:
        while self._expiry and self._expiry[0][0] < now:
            _, oid = heapq.heappop(self._expiry)
            if oid in self._offers:
                self._remove(oid)

    def live(self, now: int) -> list[SignedOffer]:
        self.sweep(now)
        return sorted(self._offers.values(), key=lambda o: (o.body.slot, o.body.side, o.body.price))

    def get(self, oid: bytes) -> SignedOffer | None:
        return self._offers.get(oid)

    def __len__(self) -> int:
        return len(self._offers)


class Inbox:
    def __init__(self, chain_id: str, limits: Limits | None = None,
                 trusted_publishers: frozenset[bytes] | None = None,
                 wall_clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.chain_id = chain_id
        self.limits = limits or Limits()
        self.trusted_publishers = trusted_publishers
        """None: accept snapshots from any publisher whose signature verifies."""
        self.wall_clock = wall_clock
        self.counters = {"offers": DropCounters(), "feed": DropCounters()}
        lim = self.limits
        self._rates = {
            "offers": PeerRateLimiter(lim.offer_rate_per_s, lim.offer_burst, lim.max_peers_tracked, monotonic),
            "feed": PeerRateLimiter(lim.feed_rate_per_s, lim.feed_burst, lim.max_peers_tracked, monotonic),
        }
        self._seen = SeenCache(lim.seen_capacity)
        self.offers = OfferCache(lim)
        self.latest_feed: dict[str, SignedFeed] = {}

    def now(self) -> int:
        return int(self.wall_clock())

    def admit(self, origin: Hashable, topic_name: str, data: bytes, local: bool = False) -> Admitted | None:
        """Check one message; None means dropped (and counted under its reason)."""
        parsed = topics.parse(topic_name)
        if parsed is None or parsed.chain_id != self.chain_id:
            # We subscribe only to our chain's topics; anything else is a peer bug.
            self.counters["offers"].drop("wrong_topic")
            return None
        counters = self.counters[parsed.kind]
        try:
            admitted = self._check(parsed, origin, data, local)
        except Dropped as exc:
            counters.drop(exc.reason)
            return None
        counters.accepted += 1
        return admitted

    def _check(self, parsed: topics.Topic, origin: Hashable, data: bytes, local: bool) -> Admitted:
        max_bytes = self.limits.max_offer_bytes if parsed.kind == "offers" else self.limits.max_feed_bytes
        if len(data) > max_bytes:
            raise Dropped("oversized", f"{len(data)} bytes > {max_bytes}")
        # Our own messages are never rate limited: the local user is not an attacker.
        if not local and not self._rates[parsed.kind].allow(origin):
            raise Dropped("rate_limited")
        try:
            if parsed.kind == "offers":
                return Admitted(offer=self._check_offer(parsed.zone, data))
            return Admitted(feed=self._check_feed(parsed.zone, data))
        except MessageError as exc:
            raise Dropped(exc.reason, str(exc)) from exc

    def _check_offer(self, zone: str, data: bytes) -> SignedOffer:
        offer = messages.decode_as(SignedOffer, data)
        body = offer.body
        if body.chain_id != self.chain_id:
            raise messages.WrongChain(f"offer for chain {body.chain_id!r}")
        messages.check_offer_fields(body)
        if body.zone != zone:
            raise Dropped("wrong_topic", f"offer of zone {body.zone} on the {zone} topic")
        now = self.now()
        if body.valid_until < now:
            raise messages.Expired(f"valid_until {body.valid_until} < now {now}")
        oid = offer.offer_id
        if oid in self._seen:
            raise Dropped("duplicate")
        # Last and most expensive; only a verified offer is remembered as seen, so
        # a forged copy racing ahead cannot shadow the genuine one.
        if not crypto.verify(body.maker_pubkey, offer.signature, messages.offer_sign_bytes(body)):
            raise messages.BadSignature("offer signature does not verify")
        self._seen.add(oid)
        self.offers.add(offer, now)
        return offer

    def _check_feed(self, zone: str, data: bytes) -> SignedFeed:
        feed = messages.decode_as(SignedFeed, data)
        body = feed.body
        if body.chain_id != self.chain_id:
            raise messages.WrongChain(f"snapshot for chain {body.chain_id!r}")
        if body.zone != zone:
            raise Dropped("wrong_topic", f"snapshot of zone {body.zone} on the {zone} topic")
        if self.trusted_publishers is not None and body.publisher not in self.trusted_publishers:
            raise Dropped("untrusted", body.publisher.hex())
        _check_feed_bounds(feed, self.limits)
        key = ("feed", body.publisher, body.height, body.zone)
        if key in self._seen:
            raise Dropped("duplicate")
        messages.check_feed(feed, self.chain_id)
        self._seen.add(key)
        current = self.latest_feed.get(zone)
        if current is None or current.body.height <= body.height:
            self.latest_feed[zone] = feed
        return feed

    def stats(self) -> dict[str, object]:
        return {
            "offers_cached": len(self.offers),
            "offers_evicted": self.offers.evicted,
            "offer_messages": {"accepted": self.counters["offers"].accepted, **self.counters["offers"].as_dict()},
            "feed_messages": {"accepted": self.counters["feed"].accepted, **self.counters["feed"].as_dict()},
        }


def _check_feed_bounds(feed: SignedFeed, limits: Limits) -> None:
    body = feed.body
    if len(body.slots) > limits.max_slots_per_feed or len(body.trades) > limits.max_trades_per_feed:
        raise Dropped("oversized", "too many slots or trades")
    for view in body.slots:
        if max(len(view.bids), len(view.asks)) > limits.max_levels_per_side or max(
                len(view.best_ask), len(view.best_bid)) > 1:
            raise Dropped("oversized", "too many levels")
