"""`gridledger scenario run` on a real node: the day of 24 hourly slots, three participants, in well under a minute.

Block time is the validator's clock, so a day of hourly slots would take a day. The
test plays yesterday instead (see tests/test_readings_cli.py, ``backdated_node``):

1. The genesis lies 26 hours in the past. CometBFT stamps block 1 with the genesis
   time, so the runner's orders for all 24 slots, sent before block 1, execute
   while every gate is still open. The app answers no query before its first
   block, so until then an in-process replica of the same genesis answers the
   runner's queries (``GenesisReplicaTransport``); everything is sent to the node.
2. From block 2 on, block time is now: every slot of that day has ended, and with
   a two-day settlement window every reading is still on time. The runner sends
   all 25 slot ends' readings (one transaction, relayed by the LPD lpd_b, which does not vote below:
   its nonces are the runner's alone) at once.
3. The operators then vote the settlement window down (3 of 4 operators > 2/3
   of the power) so that the day's last slot is past its deadline but no later
   slot is: the next block settles the day, oldest slot first, and nothing after
   it (the meters do not report after the day, so a later slot would bill their
   substitutes) - the runner, which re-reads the deadline while it waits, sees
   the last slot settled and prints the balances.

The expected balances are the hand-checked ones of tests/test_scenario.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from abci_app.ledger.modules.gov import CastVote, ProposeParams
from abci_app.ledger.modules.gov.records import ParamChange
from abci_app.ledger.tx import encode_tx
from lab.scenario import Keys, RpcTransport, Runner, load_scenario
from node.rpc import RpcError
from tests.harness import Chain, seeded_key
from tests.localnode import LocalNode
from tests.market_harness import market_app_state
from tests.test_readings_cli import backdated_node
from tests.test_scenario import DAY

pytestmark = pytest.mark.e2e
CHAIN_ID = "e2e-scenario"
HOUR = 3_600
TWO_DAYS = 2 * 24 * HOUR


class GenesisReplicaTransport(RpcTransport):
    """The node's RPC, except that before block 1 an in-process chain with the same genesis answers queries."""

    def __init__(self, url: str, replica: Chain) -> None:
        super().__init__(url)
        self.replica = replica

    def _no_block_yet(self) -> bool:
        return int(self.client.call("status")["sync_info"]["latest_block_height"]) == 0

    def query(self, path: str, optional: bool = False) -> Any:
        if not self._no_block_yet():
            return super().query(path, optional)
        try:
            return self.replica.query(path)
        except LookupError:
            if optional:
                return None
            raise

    def block_time(self) -> int:
        return self.replica.time if self._no_block_yet() else super().block_time()


def genesis_replica(state: dict[str, Any], genesis: int) -> Chain:
    """The genesis state in-process, queryable (one empty block at the genesis time, as the node's block 1)."""
    replica = Chain(chain_id=CHAIN_ID, app_state=state, time=genesis - 1)
    replica.block(dt=1)
    return replica


def play_in_thread(runner: Runner) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["summary"] = runner.play()
        except Exception as exc:  # reported by the test's main thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="scenario-run", daemon=True)
    thread.start()
    return thread, outcome


def wait_for(condition: Any, timeout: float, what: str) -> None:
    """Poll a ledger query (no event tells us) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        time.sleep(0.2)


def shorten_settlement_window(node: LocalNode, chain: Chain, seconds: int) -> None:
    """Operators dso, dso_b and lpd (30 of 40 power) pass settlement_window_s = ``seconds``."""
    assert seconds >= 60, "the parameter's lower bound"
    def signed(name: str, msg: Any) -> bytes:
        key = chain.keys[name]
        return encode_tx(CHAIN_ID, msg, key, node.rpc.query_json(f"/next_nonce/{key.account}")["next_nonce"])

    proposal = signed("dso", ProposeParams(changes=(ParamChange("settlement_window_s", seconds),),
                                           description="settle yesterday now"))
    committed = node.rpc.wait_tx(node.rpc.broadcast_tx_sync(proposal)["hash"])
    assert int(committed["tx_result"].get("code", 0)) == 0, committed
    (submitted,) = [e for e in committed["tx_result"]["events"] if e["type"] == "proposal.submitted"]
    proposal_id = int(next(a["value"] for a in submitted["attributes"] if a["key"] == "id"))
    for name in ("dso", "dso_b", "lpd"):
        vote = signed(name, CastVote(proposal_id=proposal_id, approve=True))
        committed = node.rpc.wait_tx(node.rpc.broadcast_tx_sync(vote)["hash"])
        assert int(committed["tx_result"].get("code", 0)) == 0, committed
    assert node.rpc.query_json("/params")["settlement_window_s"] == seconds


def test_a_day_of_hourly_slots_from_the_csv_on_a_real_node(tmp_path: Path) -> None:
    state = market_app_state(slot_length_s=HOUR, settlement_window_s=TWO_DAYS)
    # Only the day's three participants have meters, as in tests/test_scenario.py.
    state["meters"] = [m for m in state["meters"] if m["id"] in ("m-alice", "m-bob", "m-dave")]
    chain = Chain(chain_id=CHAIN_ID, app_state=state)
    genesis = int(time.time()) - 26 * HOUR
    start = -(-(genesis + 301) // HOUR) * HOUR  # yesterday's first hour still open at the genesis time
    last_slot_end = start + 24 * HOUR
    meters = {f"m-{name}": seeded_key(f"meter-{name}") for name in ("alice", "bob", "dave")}
    keys = Keys(accounts=dict(chain.keys), meters=meters)
    logged: list[str] = []
    with backdated_node(tmp_path / "node", state, CHAIN_ID, genesis, timeout_commit="3s") as node:
        transport = GenesisReplicaTransport(node.ports.rpc_url, genesis_replica(state, genesis))
        runner = Runner(load_scenario(DAY), transport, keys, start=start, relayer="lpd_b", log=logged.append)
        thread, outcome = play_in_thread(runner)

        def readings_done() -> bool:
            try:
                return bool(node.rpc.query_json("/reading/m-dave")["time"] >= last_slot_end)
            except RpcError:  # no reading yet
                return False

        wait_for(lambda: readings_done() or not thread.is_alive(), 60, "the scenario's readings")
        assert "error" not in outcome, f"{outcome.get('error')!r}\n" + "\n".join(logged)
        trades = node.rpc.query_json(f"/trades/slot/{start + 12 * HOUR}")["trades"]
        assert [t["height"] for t in trades] == [1, 1], "the orders missed block 1 (too slow to reach the mempool)"
        # The day's last slot ended 1-2 hours ago: a window 10 minutes shorter than that settles it, while
        # the next slot's deadline stays almost an hour away.
        shorten_settlement_window(node, chain, int(time.time()) - last_slot_end - 600)
        thread.join(timeout=60)
        # One transaction carried all 75 readings of the day (3 meters x 25 slot ends), relayed by lpd_b;
        # the idle meters' zero-flow readings after the day, sent while the runner waited, came later.
        relayed = node.rpc.tx_search("reading.meter='m-bob'")["txs"]
    assert not thread.is_alive(), "the scenario did not finish:\n" + "\n".join(logged)
    assert "error" not in outcome, f"{outcome.get('error')!r}\n" + "\n".join(logged)
    rows = {row["participant"]: row for row in outcome["summary"]}
    # Hand-checked in tests/test_scenario.py: trades at 0.20 EUR/kWh, fees 0.01 (bob) and 0.03 (dave) per kWh,
    # a 1000 Wh shortfall of alice at 12:00, a 500 Wh surplus of bob at 14:00, 500 Wh unbought by dave at 20:00
    # (supplier tariff and network charge).
    assert {name: row["balance"] for name, row in rows.items()} == {
        "alice": 15_800_000, "bob": 6_665_000, "dave": 6_165_000}
    assert {name: (row["locked"], row["debt"], row["slots_settled"]) for name, row in rows.items()} == {
        name: (0, 0, 24) for name in ("alice", "bob", "dave")}
    assert {name: (row["balancing_charges"], row["supply_charges"], row["network_charges"], row["credits"])
            for name, row in rows.items()} == {
        "alice": (600_000, 0, 0, 0), "bob": (0, 0, 0, 25_000), "dave": (0, 150_000, 5_000, 0)}
    def reading_slots(tx: dict[str, Any]) -> list[int]:
        return [int(next(a["value"] for a in e["attributes"] if a["key"] == "slot"))
                for e in tx["tx_result"]["events"] if e["type"] == "reading"]

    day = [tx for tx in relayed if min(reading_slots(tx)) < last_slot_end]
    assert len(day) == 1 and len(reading_slots(day[0])) == 75
    assert all(min(reading_slots(tx)) >= last_slot_end for tx in relayed if tx is not day[0])
