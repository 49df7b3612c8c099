"""The market-feed publisher against a fake market source, and its delivery over libp2p."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import trio

from abci_app.ledger.crypto import SigningKey
from node.p2p import feed, messages
from node.p2p.feed import Block
from node.p2p.host import HostConfig, P2PHost
from node.p2p.limits import Limits
from node.p2p.messages import FeedTrade, SignedFeed
from tests.test_p2p_hosts import CHAIN, DEADLINE_S, ZONE, hostile_peer, run


def trade(trade_id: str, buyer_zone: str, seller_zone: str) -> FeedTrade:
    return FeedTrade(trade_id=trade_id, slot=7, buyer="b" * 40, seller="s" * 40, buyer_zone=buyer_zone,
                     seller_zone=seller_zone, quantity_wh=500, price=100_000, fee=5_000)


class FakeMarket:
    """Answers in the shape of the market queries (docs/queries.md contract)."""

    def __init__(self) -> None:
        self.blocks_read: list[int] = []

    def block(self, height: int) -> Block:
        self.blocks_read.append(height)
        trades = (trade(f"t{height}", ZONE, "zone-b"), trade(f"x{height}", "zone-c", "zone-b"))
        return Block(height=height, time=1_700_000_000 + height, trades=trades)

    def slots(self) -> list[int]:
        return [9, 7]

    def book(self, slot: int, zone: str) -> Mapping[str, Any]:
        levels = [{"price": 130_000 - i * 1000, "quantity_wh": 1000, "orders": 1} for i in range(8)]
        return {"slot": slot, "zone": zone, "bids": levels, "asks": [{"price": 140_000, "quantity_wh": 250}]}

    def best(self, slot: int, zone: str) -> Mapping[str, Any]:
        return {"best_ask": {"price": 120_000, "effective_price": 125_000, "quantity_wh": 800, "zone": "zone-b"},
                "best_bid": None}


def test_snapshot_holds_best_prices_per_slot_with_fees_and_the_zones_trades() -> None:
    key = SigningKey.generate()
    limits = Limits(max_levels_per_side=3)
    market = FakeMarket()
    signed = feed.build_snapshot(market, market.block(12), ZONE, CHAIN, key, limits)
    messages.check_feed(signed, CHAIN)
    body = signed.body
    assert (body.height, body.time, body.zone, body.publisher) == (12, 1_700_000_012, ZONE, key.pubkey)
    assert [view.slot for view in body.slots] == [7, 9]
    view = body.slots[0]
    assert [level.price for level in view.bids] == [130_000, 129_000, 128_000]
    assert view.asks[0].orders == 1  # missing "orders" reads as one order
    assert view.best_ask[0].effective_price == 125_000 and view.best_ask[0].zone == "zone-b"
    assert view.best_bid == ()
    assert [t.trade_id for t in body.trades] == ["t12"]  # zone-c's trade is not ours
    decoded = messages.decode_as(SignedFeed, signed.encode())
    assert decoded == signed


def test_trade_events_block_time_and_new_block_messages_are_parsed() -> None:
    events = [
        {"type": "transfer", "attributes": [{"key": "amount", "value": "5"}]},
        {"type": "trade", "attributes": [{"key": k, "value": v} for k, v in {
            "id": "42", "slot": "7", "buyer": "b" * 40, "seller": "s" * 40, "buyer_zone": "zone-a",
            "seller_zone": "zone-b", "quantity_wh": "1500", "price": "110000", "fee": "3000"}.items()]},
    ]
    (parsed,) = feed.trades_from_events(events)
    assert (parsed.trade_id, parsed.quantity_wh, parsed.fee, parsed.seller_zone) == ("42", 1500, 3000, "zone-b")
    assert feed.parse_rfc3339("2026-01-02T03:04:05.123456789Z") == 1767323045
    message = {"result": {"data": {"type": "tendermint/event/NewBlock",
                                   "value": {"block": {"header": {"height": "17"}}}}}}
    assert feed._new_block_height(json.dumps(message)) == 17
    assert feed._new_block_height(json.dumps({"result": {}})) is None


class RecordingHost:
    def __init__(self) -> None:
        self.identity = SigningKey.generate()
        self.published: list[SignedFeed] = []

    async def publish_feed(self, signed: SignedFeed) -> None:
        self.published.append(signed)


async def heights_of(values: list[int]) -> AsyncIterator[int]:
    for value in values:
        yield value


def test_publisher_sends_one_snapshot_per_zone_per_height_and_catches_up_skipped_blocks() -> None:
    async def scenario() -> None:
        host, market = RecordingHost(), FakeMarket()
        await feed.publish_feed(host, market, heights_of([3, 3, 4, 7, 30]), [ZONE, "zone-b"], CHAIN,
                                max_catch_up=5)
        assert market.blocks_read == [3, 4, 5, 6, 7, 26, 27, 28, 29, 30]
        assert [(f.body.height, f.body.zone) for f in host.published[:4]] == [
            (3, ZONE), (3, "zone-b"), (4, ZONE), (4, "zone-b")]
    run(scenario)


def test_a_failing_query_skips_one_block_not_the_feed() -> None:
    class Flaky(FakeMarket):
        def block(self, height: int) -> Block:
            if height == 2:
                raise ConnectionError("node restarting")
            return super().block(height)

    async def scenario() -> None:
        host = RecordingHost()
        await feed.publish_feed(host, Flaky(), heights_of([1, 2, 3]), [ZONE], CHAIN)
        assert [f.body.height for f in host.published] == [1, 3]
    run(scenario)


def test_feed_from_a_validator_reaches_a_listening_participant_despite_junk() -> None:
    async def scenario() -> None:
        validator_key = SigningKey.generate()
        trusted = frozenset({validator_key.pubkey})
        validator_config = HostConfig(chain_id=CHAIN, zones=(ZONE,))
        async with P2PHost(validator_config, validator_key).running() as validator:
            participant_config = HostConfig(chain_id=CHAIN, zones=(ZONE,), bootstrap=(validator.addrs()[0],),
                                            trusted_publishers=trusted)
            async with P2PHost(participant_config, SigningKey.generate()).running() as participant:
                topic = validator.feed_topic(ZONE)
                await validator.pubsub.wait_for_mesh(participant.peer_id, topic, timeout=DEADLINE_S)
                stream = participant.watch()
                async with hostile_peer(participant) as evil:
                    feed_topic = participant.feed_topic(ZONE)
                    await evil.subscribe(feed_topic)
                    await evil.wait_for_mesh(participant.peer_id, feed_topic, timeout=DEADLINE_S)
                    impostor = feed.build_snapshot(FakeMarket(), FakeMarket().block(5), ZONE, CHAIN,
                                                   SigningKey.generate(), Limits())
                    await evil.publish(feed_topic, impostor.encode())  # valid signature, untrusted key
                    await evil.publish(feed_topic, b"\xc1junk")
                    heights_send, heights_receive = trio.open_memory_channel[int](4)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(feed.publish_feed, validator, FakeMarket(), heights_receive.__aiter__(),
                                           [ZONE], CHAIN)
                        await heights_send.send(5)
                        item = await stream.receive()
                        assert item.feed is not None
                        assert item.feed.body.publisher == validator_key.pubkey
                        assert item.feed.body.height == 5
                        await heights_send.send(6)
                        item = await stream.receive()
                        assert item.feed is not None and item.feed.body.height == 6
                        nursery.cancel_scope.cancel()
                    counts = participant.inbox.counters["feed"]
                    while counts["untrusted"] + counts["malformed"] < 2:
                        await trio.sleep(0.02)  # drops raise no event; the test deadline bounds this
                    assert participant.inbox.latest_feed[ZONE].body.height == 6
    run(scenario)
