"""The feed publisher against a real CometBFT node: NewBlock websocket events, headers and block results."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from abci_app.ledger.crypto import SigningKey
from node.p2p import feed
from node.p2p.host import HostConfig, P2PHost
from node.rpc import CometRpc
from tests.harness import Chain
from tests.localnode import LocalNode

pytestmark = pytest.mark.e2e

ZONE = "zone-a"
DEADLINE_S = 45


def test_feed_of_a_real_node_reaches_a_listening_participant(tmp_path: Path, tools_bin: Path) -> None:
    signer = Chain(chain_id="e2e-p2p")
    assert signer.app_state is not None
    with LocalNode(tmp_path / "node", signer.app_state, chain_id="e2e-p2p") as node:
        node.rpc.wait_height(1)
        rpc_url = node.ports.rpc_url

        async def scenario() -> None:
            with trio.fail_after(DEADLINE_S):
                validator_key = SigningKey.generate()
                config = HostConfig(chain_id="e2e-p2p", zones=(ZONE,))
                async with P2PHost(config, validator_key).running() as validator:
                    participant_config = HostConfig(chain_id="e2e-p2p", zones=(ZONE,),
                                                    bootstrap=(validator.addrs()[0],),
                                                    trusted_publishers=frozenset({validator_key.pubkey}))
                    async with P2PHost(participant_config, SigningKey.generate()).running() as participant:
                        await validator.pubsub.wait_for_mesh(participant.peer_id, validator.feed_topic(ZONE),
                                                             timeout=DEADLINE_S)
                        stream = participant.watch()
                        source = feed.RpcMarketSource(CometRpc(rpc_url))
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(feed.publish_feed, validator, source,
                                               feed.comet_new_heights(rpc_url), [ZONE], "e2e-p2p")
                            heights = []
                            while len(heights) < 3:
                                item = await stream.receive()
                                assert item.feed is not None
                                heights.append(item.feed.body.height)
                                assert item.feed.body.time > 1_600_000_000
                            nursery.cancel_scope.cancel()
                        assert heights == sorted(heights) and len(set(heights)) == 3
                        assert participant.inbox.counters["feed"].dropped == 0
                        assert item.feed.body.slots == ()  # no orders on this chain: no open slots

        trio.run(scenario)
