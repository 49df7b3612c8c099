"""Several libp2p hosts on loopback in one process: offers travel, junk is dropped and counted."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

from abci_app.ledger.crypto import SigningKey
from node.p2p import messages
from node.p2p.host import HostConfig, P2PHost, libp2p_key_pair
from node.p2p.limits import Limits
from node.p2p.messages import OfferBody, SignedOffer

CHAIN = "p2p-test"
ZONE = "zone-a"
DEADLINE_S = 20


def run(test: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with trio.fail_after(DEADLINE_S):
            await test()

    trio.run(bounded)


def make_offer(key: SigningKey, *, chain_id: str = CHAIN, valid_for: int = 600, zone: str = ZONE,
               quantity_wh: int = 1000, side: str = "ask") -> SignedOffer:
    body = OfferBody(chain_id=chain_id, maker=key.account, maker_pubkey=key.pubkey, side=side,
                     quantity_wh=quantity_wh, price=120_000, slot=7, valid_until=int(time.time()) + valid_for,
                     zone=zone, origin="solar" if side == "ask" else "", salt=os.urandom(16))
    return messages.sign_offer(body, key)


@asynccontextmanager
async def cluster(count: int, limits: Limits | None = None) -> AsyncIterator[list[P2PHost]]:
    """``count`` hosts; every host after the first bootstraps from the first."""
    config = HostConfig(chain_id=CHAIN, zones=(ZONE,), limits=limits or Limits())
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(P2PHost(config, SigningKey.generate()).running())
        hosts = [first]
        for _ in range(count - 1):
            peer_config = HostConfig(chain_id=CHAIN, zones=(ZONE,), bootstrap=(first.addrs()[0],),
                                     limits=config.limits)
            hosts.append(await stack.enter_async_context(P2PHost(peer_config, SigningKey.generate()).running()))
        topic = first.offer_topic(ZONE)
        for host in hosts[1:]:
            # Event-based: the hub sees each peer join the offers mesh (heartbeat grafts it).
            await first.pubsub.wait_for_mesh(host.peer_id, topic, timeout=DEADLINE_S)
            await host.pubsub.wait_for_mesh(first.peer_id, topic, timeout=DEADLINE_S)
        yield hosts


async def received(host: P2PHost, offer_id: bytes) -> None:
    """Wait until ``host`` has admitted the offer (watch stream, no polling)."""
    if host.inbox.offers.get(offer_id) is not None:
        return
    stream = host.watch()
    async for item in stream:
        if item.offer is not None and item.offer.offer_id == offer_id:
            return


async def admitted_count(host: P2PHost) -> int:
    return host.inbox.counters["offers"].accepted


@asynccontextmanager
async def hostile_peer(target: P2PHost) -> AsyncIterator[Any]:
    """A bare libp2p peer without our validators: it gossips whatever bytes a test gives it."""
    key_pair = libp2p_key_pair(SigningKey.generate())
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    host = new_host(key_pair=key_pair, listen_addrs=listen, sec_opt={
        NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)})
    # Its own spam guard would hold its flood back; an attacker has none.
    router = GossipSub(protocols=[PROTOCOL_ID_V11], degree=6, degree_low=4, degree_high=12,
                       heartbeat_interval=1, spam_protection_enabled=False)
    pubsub = Pubsub(host, router, strict_signing=True)
    async with host.run(listen), background_trio_service(pubsub), background_trio_service(router):
        await pubsub.wait_until_ready()
        topic = target.offer_topic(ZONE)
        await pubsub.subscribe(topic)
        await target.connect(str(host.get_addrs()[0]))
        await target.pubsub.wait_for_mesh(host.get_id(), topic, timeout=DEADLINE_S)
        yield pubsub


def test_offer_from_one_participant_reaches_the_others() -> None:
    async def scenario() -> None:
        async with cluster(4) as hosts:
            alice = SigningKey.generate()
            offer = make_offer(alice)
            await hosts[2].publish_offer(offer)
            async with trio.open_nursery() as nursery:
                for host in hosts:
                    nursery.start_soon(received, host, offer.offer_id)
            for host in hosts:
                cached = host.inbox.offers.get(offer.offer_id)
                assert cached == offer
                assert host.inbox.counters["offers"].dropped == 0
    run(scenario)


def test_forged_wrong_chain_expired_oversized_malformed_and_duplicate_are_dropped_and_counted() -> None:
    async def scenario() -> None:
        async with cluster(2) as hosts:
            hub, other = hosts
            async with hostile_peer(hub) as evil:
                topic = hub.offer_topic(ZONE)
                key = SigningKey.generate()
                genuine = make_offer(key)
                forged = SignedOffer(body=genuine.body, signature=bytes(64))
                tampered = SignedOffer(body=make_offer(key).body, signature=make_offer(key).signature)
                junk: list[tuple[str, bytes]] = [
                    ("bad_signature", forged.encode()),
                    ("bad_signature", tampered.encode()),
                    ("wrong_chain", make_offer(key, chain_id="other-chain").encode()),
                    ("expired", make_offer(key, valid_for=-5).encode()),
                    ("oversized", b"\x00" * (hub.config.limits.max_offer_bytes + 1)),
                    ("malformed", b"\x93\x01\x02"),
                    ("wrong_topic", make_offer(key, zone="zone-b").encode()),
                ]
                for _, data in junk:
                    await evil.publish(topic, data)
                await evil.publish(topic, genuine.encode())
                await evil.publish(topic, genuine.encode())  # a second gossip message, same offer
                # The genuine offer is relayed through the hub to the other host.
                await received(other, genuine.offer_id)
                await received(hub, genuine.offer_id)
                expected = {reason: sum(1 for r, _ in junk if r == reason) for reason, _ in junk}
                expected["duplicate"] = 1
                await wait_for_drops(hub, sum(expected.values()))
                counts = hub.inbox.counters["offers"].as_dict()
                for reason, number in expected.items():
                    assert counts[reason] == number, (reason, counts)
                # Junk is never relayed: the other host saw only the genuine offer.
                assert other.inbox.counters["offers"].dropped == 0
                assert [o.offer_id for o in other.inbox.offers.live(int(time.time()))] == [genuine.offer_id]
    run(scenario)


async def wait_for_drops(host: P2PHost, count: int) -> None:
    # Drops raise no event of their own; poll the counter with the test's deadline.
    while host.inbox.counters["offers"].dropped < count:
        await trio.sleep(0.02)


def test_a_flooding_peer_is_rate_limited_and_others_still_get_through() -> None:
    limits = Limits(offer_rate_per_s=2.0, offer_burst=5)

    async def scenario() -> None:
        async with cluster(3, limits) as hosts:
            hub, honest, listener = hosts
            async with hostile_peer(hub) as evil:
                topic = hub.offer_topic(ZONE)
                flooder_key = SigningKey.generate()
                flood = [make_offer(flooder_key) for _ in range(60)]
                for offer in flood:
                    await evil.publish(topic, offer.encode())
                wanted = make_offer(SigningKey.generate())
                await honest.publish_offer(wanted)
                await received(listener, wanted.offer_id)
                await received(hub, wanted.offer_id)
                await wait_until(lambda: hub.inbox.counters["offers"]["rate_limited"] > 0)
                # The bucket let at most its burst (plus refill) of the flood in.
                from_flooder = [o for o in hub.inbox.offers.live(int(time.time()))
                                if o.body.maker == flooder_key.account]
                assert len(from_flooder) <= limits.offer_burst + 2 * DEADLINE_S * limits.offer_rate_per_s
                assert len(from_flooder) < len(flood)
    run(scenario)


async def wait_until(condition: Callable[[], bool]) -> None:
    while not condition():
        await trio.sleep(0.02)


def test_status_reports_peers_mesh_and_counters() -> None:
    async def scenario() -> None:
        async with cluster(2) as hosts:
            status = hosts[1].status()
            assert status["peers"] == [str(hosts[0].peer_id)]
            assert status["mesh"][hosts[1].offer_topic(ZONE)] == 1
            assert status["offer_messages"]["accepted"] == 0
    run(scenario)
