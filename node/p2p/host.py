"""The gridledger libp2p host: identity, noise transport, gossipsub topics, bootstrap.

One ``P2PHost`` per process (a participant's ``gridledger p2p listen`` or a
validator's feed publisher). It runs on trio, as py-libp2p does:

    async with P2PHost(config, identity).running() as host:
        await host.publish_offer(offer)

* Identity: an Ed25519 key (``load_or_create_identity``), persisted as a hex
  seed in a 0600 file, so the peer id survives restarts. The same key signs
  the market-feed snapshots this host publishes.
* Transport: TCP, secured with noise only (no plaintext, no secio), yamux.
* Pubsub: gossipsub with libp2p message signing (strict) on one offers topic
  and one feed topic per configured zone; every message passes
  ``Inbox.admit`` as the topic validator before it is delivered or relayed.
* Bootstrap: each configured ``/ip4/.../tcp/.../p2p/<peer id>`` address is
  dialled in the background and redialled with back-off while disconnected.
* Quiet by construction (``ZoneGossipSub``): a peer that serves other zones
  is not sent, nor queued, what it never subscribed to, and the only rate
  limit is the inbox's, whose drops are counted (``rate_limited``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

from abci_app.ledger.crypto import SigningKey
from node.p2p import messages, topics
from node.p2p.inbox import Admitted, Inbox
from node.p2p.limits import Limits
from node.p2p.messages import SignedFeed, SignedOffer

log = logging.getLogger("gridledger.p2p")

IDENTITY_FILE = "p2p_identity.key"
BOOTSTRAP_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SUBSCRIPTIONS_GRACE_S = 5.0
"""How long after its pubsub stream opened a peer that announced no topic may still be announcing."""


class ZoneGossipSub(GossipSub):
    """Gossipsub for hosts that serve different zones: nothing queued for peers that will never want it.

    py-libp2p queues every message it publishes for each connected peer that
    is not (yet) subscribed to the topic, in case the peer's subscriptions are
    still on the way, and empties that queue only when the peer subscribes.
    Validators serve different zones, so most peers never subscribe to most
    topics: every queue filled to its cap within seconds and each further
    publish logged "pending message queue ... exceeded limit" (1,064 times in
    40 s on a 4-validator, 2-participant network at one block per second).
    Once a peer has announced its topics (its first announcement lists them
    all), or had ``SUBSCRIPTIONS_GRACE_S`` to do so, a message for a topic it
    has not subscribed to is dropped, as gossipsub intends. A later
    subscription still gets the recent messages: py-libp2p replays its
    message cache to every new subscriber.

    Spam protection is off: py-libp2p's own limit (10 messages per topic per
    second and forwarder, checked after our topic validator accepted and
    counted a message) dropped relays, and even this host's own publishes,
    with a warning and no counter. The inbox's per-origin token buckets
    (``Limits``) are the one rate limit, and each of its drops is counted.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["spam_protection_enabled"] = False
        super().__init__(*args, **kwargs)
        self._stream_opened: dict[ID, float] = {}

    def add_peer(self, peer_id: ID, protocol_id: TProtocol | None) -> None:
        super().add_peer(peer_id, protocol_id)
        self._stream_opened[peer_id] = time.monotonic()

    def remove_peer(self, peer_id: ID) -> None:
        super().remove_peer(peer_id)
        self._stream_opened.pop(peer_id, None)

    async def publish(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message) -> None:
        await super().publish(msg_forwarder, pubsub_msg)
        self.forget_pending_for_settled_peers()

    def forget_pending_for_settled_peers(self, now: float | None = None) -> int:
        """Drop what is queued for peers whose subscriptions are known by now; returns how many peers."""
        now = time.monotonic() if now is None else now
        announced: set[ID] = set().union(*self.pubsub.peer_topics.values()) if self.pubsub is not None else set()
        settled = [peer for peer in self._pending_messages
                   if peer in announced or now - self._stream_opened.get(peer, now) >= SUBSCRIPTIONS_GRACE_S]
        for peer in settled:
            del self._pending_messages[peer]
        return len(settled)


@dataclass(frozen=True)
class HostConfig:
    chain_id: str
    zones: tuple[str, ...]
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    trusted_publishers: frozenset[bytes] | None = None
    heartbeat_s: int = 1
    """Gossipsub heartbeat: how soon new peers join the mesh."""
    mesh_degree: int = 6


def load_or_create_identity(path: Path) -> SigningKey:
    """The host's Ed25519 key from ``path`` (hex seed), created with mode 0600 if missing."""
    if path.exists():
        text = path.read_text(encoding="ascii").strip()
        try:
            return SigningKey.from_seed(bytes.fromhex(text))
        except ValueError as exc:
            raise ValueError(f"{path} does not hold a 32-byte hex Ed25519 seed") from exc
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.seed().hex() + "\n")
    return key


def libp2p_key_pair(key: SigningKey) -> KeyPair:
    private = Ed25519PrivateKey.from_bytes(key.seed())
    return KeyPair(private, private.get_public_key())


def peer_id_of(key: SigningKey) -> ID:
    return ID.from_pubkey(libp2p_key_pair(key).public_key)


class P2PHost:
    def __init__(self, config: HostConfig, identity: SigningKey,
                 inbox: Inbox | None = None) -> None:
        self.config = config
        self.identity = identity
        self.inbox = inbox or Inbox(config.chain_id, config.limits, config.trusted_publishers)
        key_pair = libp2p_key_pair(identity)
        self.peer_id = ID.from_pubkey(key_pair.public_key)
        self._listen = [multiaddr.Multiaddr(addr) for addr in config.listen]
        self.host = new_host(
            key_pair=key_pair,
            # Noise only: every connection is encrypted and authenticated to the peer id.
            sec_opt={NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)},
            listen_addrs=self._listen,
        )
        degree = config.mesh_degree
        self.router = ZoneGossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID], degree=degree, degree_low=max(1, degree - 2),
            degree_high=degree + 6, heartbeat_interval=config.heartbeat_s,
        )
        self.pubsub = Pubsub(self.host, self.router, strict_signing=True,
                             max_inbound_rpc_size=2 * config.limits.max_feed_bytes + 4096)
        self._watchers: list[trio.MemorySendChannel[Admitted]] = []
        self.watcher_overflows = 0

    # -- topics ------------------------------------------------------------------------
    def offer_topic(self, zone: str) -> str:
        return topics.topic(self.config.chain_id, "offers", zone)

    def feed_topic(self, zone: str) -> str:
        return topics.topic(self.config.chain_id, "feed", zone)

    def topic_names(self) -> list[str]:
        return [name for zone in self.config.zones for name in (self.offer_topic(zone), self.feed_topic(zone))]

    # -- lifecycle -----------------------------------------------------------------------
    @asynccontextmanager
    async def running(self) -> AsyncIterator[P2PHost]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.host.run(self._listen))
            await stack.enter_async_context(background_trio_service(self.pubsub))
            await stack.enter_async_context(background_trio_service(self.router))
            await self.pubsub.wait_until_ready()
            nursery = await stack.enter_async_context(trio.open_nursery())
            for name in self.topic_names():
                self.pubsub.set_topic_validator(name, self._validator(name), is_async_validator=False)
                subscription = await self.pubsub.subscribe(name)
                nursery.start_soon(self._drain, subscription)
            for addr in self.config.bootstrap:
                nursery.start_soon(self._keep_connected, addr)
            try:
                yield self
            finally:
                nursery.cancel_scope.cancel()
                for channel in self._watchers:
                    channel.close()

    def addrs(self) -> list[str]:
        """Dialable addresses including ``/p2p/<peer id>``."""
        return [str(addr) for addr in self.host.get_addrs()]

    def connected_peers(self) -> list[str]:
        return [str(peer) for peer in self.host.get_connected_peers()]

    async def connect(self, addr: str) -> None:
        await self.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))

    async def _keep_connected(self, addr: str) -> None:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        failures = 0
        while True:
            if info.peer_id not in self.host.get_connected_peers():
                try:
                    with trio.fail_after(10):
                        await self.host.connect(info)
                    failures = 0
                    log.info("connected to bootstrap peer %s", addr)
                except Exception as exc:  # any dial failure: retry later, never crash the host
                    failures += 1
                    log.debug("bootstrap %s: %s", addr, exc)
            # No connection event to wait for across all failure modes: re-check with back-off.
            await trio.sleep(BOOTSTRAP_BACKOFF_S[min(failures, len(BOOTSTRAP_BACKOFF_S) - 1)] if failures else 5.0)

    # -- receiving -------------------------------------------------------------------------
    def _validator(self, topic_name: str) -> Callable[[ID, rpc_pb2.Message], bool]:
        def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            if len(msg.topicIDs) != 1:
                # One message, one topic: otherwise a validator per topic would see it twice.
                self.inbox.counters["offers"].drop("wrong_topic")
                return False
            local = forwarder == self.peer_id and msg.from_id == self.peer_id.to_bytes()
            admitted = self.inbox.admit(bytes(msg.from_id), topic_name, bytes(msg.data), local=local)
            if admitted is None:
                return False
            self._notify(admitted)
            return True

        return validate

    async def _drain(self, subscription: Any) -> None:
        # Admitted messages were handled in the validator; the subscription queue
        # only has to be emptied so libp2p never blocks on it.
        while True:
            await subscription.get()

    def _notify(self, admitted: Admitted) -> None:
        for channel in list(self._watchers):
            try:
                channel.send_nowait(admitted)
            except trio.WouldBlock:
                self.watcher_overflows += 1  # a slow watcher misses messages; nobody else waits for it
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._watchers.remove(channel)

    def watch(self) -> trio.MemoryReceiveChannel[Admitted]:
        """A bounded stream of every admitted offer and snapshot from now on."""
        if len(self._watchers) >= self.config.limits.max_watchers:
            raise RuntimeError(f"at most {self.config.limits.max_watchers} watchers")
        send, receive = trio.open_memory_channel[Admitted](self.config.limits.watcher_queue)
        self._watchers.append(send)
        return receive

    # -- publishing ------------------------------------------------------------------------
    async def publish_offer(self, offer: SignedOffer) -> None:
        """Check the offer as every receiver will, then gossip it on its zone's topic."""
        messages.check_offer(offer, self.config.chain_id, self.inbox.now())
        await self.pubsub.publish(self.offer_topic(offer.body.zone), offer.encode())

    async def publish_feed(self, feed: SignedFeed) -> None:
        await self.pubsub.publish(self.feed_topic(feed.body.zone), feed.encode())

    async def publish_raw(self, topic_name: str, data: bytes) -> None:
        """Gossip arbitrary bytes (tests use it to play a hostile peer)."""
        await self.pubsub.publish(topic_name, data)

    def status(self) -> dict[str, Any]:
        return {
            "peer_id": str(self.peer_id),
            "chain_id": self.config.chain_id,
            "zones": list(self.config.zones),
            "addrs": self.addrs(),
            "peers": self.connected_peers(),
            "mesh": {name: len(self.router.mesh.get(name, ())) for name in self.topic_names()},
            "watchers": len(self._watchers),
            "watcher_overflows": self.watcher_overflows,
            **self.inbox.stats(),
        }
