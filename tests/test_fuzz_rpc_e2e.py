"""Hostile `abci_query` requests through a real node's RPC: the node answers each and keeps committing.

Regression of issue 15's first finding: `abci_query?path=0xff` made CometBFT exit,
because the ABCI server closed the query connection on the undecodable frame.
Here a single-validator node gets the review's queries (a path that is not UTF-8,
paths of 10,000+ bytes, absurd heights) and a seeded fuzzed set of paths, data and
heights, over both RPC forms (URI GET, where `0x...` arguments are hex-decoded into
arbitrary bytes, and JSON-RPC POST); then it must still commit blocks, answer
normal queries and accept a transfer.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from abci_app.ledger.modules.bank import Transfer
from node.rpc import tx_hash
from tests.harness import Chain
from tests.localnode import LocalNode

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

SEED = 15
FUZZED = 400
CODE_BAD_QUERY = 100
INT64 = 2**63
# Every query path the ledger answers (docs/queries.md), and a few it does not.
HEADS = ("account", "participants", "meters", "meter", "operators", "params", "supply", "proposals", "proposal",
         "chain", "book", "best", "orders", "order", "trades", "clearing", "position", "slots", "fees", "offer",
         "settlement", "settlements", "statement", "reading", "next_nonce", "", "..", "store", "\x00")


def segment(rng: random.Random) -> str:
    """One path segment: a plausible id, a huge or negative number, or odd characters."""
    choice = rng.randrange(8)
    if choice == 0:
        return "".join(rng.choice("0123456789abcdef") for _ in range(40))
    if choice == 1:
        return str(rng.choice([0, 1, -1, INT64 - 1, INT64, 2**64, -INT64]))
    if choice == 2:
        return "9" * rng.choice([19, 20, 4_300, 5_000, 12_000])
    if choice == 3:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 30)))
    if choice == 4:
        return rng.choice(["zone-a", "m-1", "slot", "%00", "%2F", "..", "*", "'", '"'])
    if choice == 5:
        return "x" * rng.choice([1, 255, 10_001])
    return str(rng.randrange(-(10**6), 10**12))


def fuzzed_case(rng: random.Random, height: int) -> tuple[str, dict[str, Any]]:
    """(form, params) of one fuzzed query: form "uri" sends URI arguments, "json" a JSON-RPC body."""
    heights = [0, 1, -1, height, height + 1, height + 10**6, INT64 - 1, -INT64, rng.randrange(-INT64, INT64)]
    chosen_height = rng.choice(heights) if rng.random() < 0.3 else 0  # mostly the latest state: paths get parsed
    if rng.random() < 0.5:
        raw = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 7, 64, 300, 10_001])))
        if rng.random() < 0.5:
            raw = f"/{rng.choice(HEADS)}/".encode() + raw
        params = {"path": "0x" + raw.hex(), "height": str(chosen_height),
                  "data": "0x" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))).hex(),
                  "prove": rng.choice(["true", "false"])}
        return "uri", params
    path = "/" + "/".join([rng.choice(HEADS)] + [segment(rng) for _ in range(rng.randrange(0, 4))])
    return "json", {"path": path, "height": str(chosen_height), "data": bytes(rng.randrange(256) for _ in
                                                                             range(rng.randrange(0, 40))).hex(),
                    "prove": rng.random() < 0.5}


class Prober:
    """Sends queries in either RPC form and tallies how each was answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=20)
        self.outcomes: Counter[str] = Counter()

    def send(self, form: str, params: dict[str, Any]) -> dict[str, Any]:
        if form == "uri":
            reply = self.client.get(f"{self.url}/abci_query", params=params)
        else:
            reply = self.client.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "abci_query",
                                                     "params": params})
        body: dict[str, Any] = reply.json()
        if "result" in body:
            self.outcomes[f"code {body['result']['response'].get('code', 0)}"] += 1
        else:
            error = body["error"]
            # An RPC-level refusal (bad argument) is fine; a lost ABCI connection is what must never happen.
            assert "read message" not in str(error.get("data", "")), error
            self.outcomes[f"rpc error {error['code']}"] += 1
        return body


def test_hostile_queries_leave_the_node_committing(tmp_path: Path, tools_bin: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    signer = Chain(chain_id="e2e-chain")
    assert signer.app_state is not None
    node = LocalNode(tmp_path / "node", signer.app_state)
    started = time.monotonic()
    with node:
        node.rpc.wait_height(2)
        assert node.supervisor is not None
        prober = Prober(node.ports.rpc_url)
        height = node.rpc.height()

        review = prober.send("uri", {"path": "0xff"})["result"]["response"]
        assert (review["code"], review["codespace"]) == (CODE_BAD_QUERY, "gridledger"), review
        assert review["log"] == "query path is not valid UTF-8: ff"
        long_binary = prober.send("uri", {"path": "0x" + "ff" * 10_000})["result"]["response"]
        assert long_binary["code"] == CODE_BAD_QUERY and long_binary["log"].endswith("...")
        long_text = prober.send("json", {"path": "/account/" + "a" * 10_000})["result"]["response"]
        assert long_text["code"] != 0
        for absurd in (-1, INT64 - 1, -INT64, height + 10**9):
            answer = prober.send("json", {"path": "/params", "height": str(absurd)})["result"]["response"]
            assert answer["code"] == CODE_BAD_QUERY, answer
        assert "error" in prober.send("uri", {"path": "/params", "height": str(10**30)})  # not an int64

        rng = random.Random(SEED)
        for _ in range(FUZZED):
            prober.send(*fuzzed_case(rng, height))

        # Still one node: both processes alive, committing, answering, accepting transactions.
        assert node.supervisor.comet is not None and node.supervisor.comet.poll() is None
        assert node.supervisor.app is not None and node.supervisor.app.poll() is None
        after = node.rpc.wait_height(node.rpc.height() + 2)
        assert after >= height + 2
        alice, bob = signer.id("alice"), signer.id("bob")
        assert node.rpc.query_json(f"/account/{alice}")["balance"] == 10_000_000
        raw = signer.sign("alice", Transfer(recipient=bob, amount=5, memo="after the storm"))
        assert node.rpc.broadcast_tx_sync(raw)["code"] == 0
        assert node.rpc.wait_tx(tx_hash(raw))["tx_result"]["code"] == 0
        assert node.rpc.query_json(f"/account/{bob}")["balance"] == 10_000_005
        lost = [line for line in node.log if "connection terminated" in line or "closing ABCI connection" in line]
        assert not lost, lost
    total = sum(prober.outcomes.values())
    with capsys.disabled():
        print(f"\nhostile abci_query: {total} queries in {time.monotonic() - started:.1f}s, answered as "
              + ", ".join(f"{kind}: {count}" for kind, count in sorted(prober.outcomes.items())))
