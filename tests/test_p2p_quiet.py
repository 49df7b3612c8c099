"""Hosts of different zones stay quiet: nothing queued for peers that never subscribe, one counted rate limit.

py-libp2p queued every published message for each connected peer not
subscribed to its topic and warned "pending message queue ... exceeded limit"
on every publish once the queue was full; its own per-forwarder spam limit
dropped messages (our own publishes included) with a warning and no counter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2

from abci_app.ledger.crypto import SigningKey
from node.p2p.host import SUBSCRIPTIONS_GRACE_S, HostConfig, P2PHost, ZoneGossipSub, libp2p_key_pair
from node.p2p.messages import FeedBody, SignedFeed, sign_feed

CHAIN = "p2p-quiet"
DEADLINE_S = 30
FEEDS = 150
"""More than py-libp2p's pending-queue cap (100), and 15 times its spam limit (10 per second and topic)."""


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def libp2p_warnings() -> Iterator[list[logging.LogRecord]]:
    """py-libp2p's logger does not propagate (its warnings go to stderr): listen to it directly."""
    handler = Collect()
    logger = logging.getLogger("libp2p")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def feed(key: SigningKey, zone: str, height: int) -> SignedFeed:
    body = FeedBody(chain_id=CHAIN, height=height, time=int(time.time()), zone=zone, publisher=key.pubkey,
                    slots=(), trades=())
    return sign_feed(body, key)


async def wait_until(condition: Callable[[], bool]) -> None:
    # Admission raises no event a test can await across hosts; poll within the test's deadline.
    while not condition():
        await trio.sleep(0.02)


def test_a_peer_of_another_zone_gets_nothing_queued_and_nothing_is_logged() -> None:
    publisher_key = SigningKey.generate()
    trusted = frozenset({publisher_key.pubkey})

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            publisher = await stack.enter_async_context(P2PHost(HostConfig(
                chain_id=CHAIN, zones=("north-1",), trusted_publishers=trusted), publisher_key).running())
            bootstrap = (publisher.addrs()[0],)
            listener = await stack.enter_async_context(P2PHost(HostConfig(
                chain_id=CHAIN, zones=("north-1",), bootstrap=bootstrap, trusted_publishers=trusted),
                SigningKey.generate()).running())
            other_zone = await stack.enter_async_context(P2PHost(HostConfig(
                chain_id=CHAIN, zones=("south-1",), bootstrap=bootstrap, trusted_publishers=trusted),
                SigningKey.generate()).running())
            topic = publisher.feed_topic("north-1")
            await publisher.pubsub.wait_for_mesh(listener.peer_id, topic, timeout=DEADLINE_S)
            await wait_until(lambda: other_zone.peer_id in publisher.pubsub.peers)
            with libp2p_warnings() as warnings:
                for height in range(1, FEEDS + 1):
                    await publisher.publish_feed(feed(publisher_key, "north-1", height))
                    await trio.sleep(0.01)
                # Every snapshot reaches the listener, which admits it or counts why not (at this pace
                # its feed bucket, 100 plus 20 per second from one publisher, may run dry).
                counters = listener.inbox.counters["feed"]
                await wait_until(lambda: counters.accepted + counters.dropped == FEEDS)
                assert counters.dropped == counters["rate_limited"]
                assert [r.getMessage() for r in warnings] == []
            assert publisher.router._pending_messages.get(other_zone.peer_id, []) == []
            assert other_zone.inbox.counters["feed"].accepted == 0

    async def bounded() -> None:
        with trio.fail_after(DEADLINE_S):
            await scenario()

    trio.run(bounded)


def test_the_queue_of_a_peer_still_announcing_is_kept_until_the_grace_ends() -> None:
    router = ZoneGossipSub(protocols=[PROTOCOL_ID_V11], degree=6, degree_low=4, degree_high=12)
    peer = ID.from_pubkey(libp2p_key_pair(SigningKey.generate()).public_key)
    router.add_peer(peer, PROTOCOL_ID_V11)
    opened = router._stream_opened[peer]
    router._pending_messages[peer].append((time.time(), rpc_pb2.RPC()))
    assert router.forget_pending_for_settled_peers(now=opened + SUBSCRIPTIONS_GRACE_S / 2) == 0
    assert len(router._pending_messages[peer]) == 1
    assert router.forget_pending_for_settled_peers(now=opened + SUBSCRIPTIONS_GRACE_S) == 1
    assert peer not in router._pending_messages
    router.remove_peer(peer)
    assert peer not in router._stream_opened

