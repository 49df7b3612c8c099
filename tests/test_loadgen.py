"""Load generator pieces without CometBFT: mix, accounts, pre-signing, workloads through the real ledger,
the sender against a fake node (stale-nonce recovery, no signing while the clock runs), statistics, files."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from abci_app.ledger.tx import decode_tx
from lab.load import ceiling as ceiling_module
from lab.load import workload as loadgen_workload
from lab.load.accounts import OpenOrder, load_accounts, load_app_state
from lab.load.ceiling import CeilingSettings, step_figures
from lab.load.generator import (
    BlockRecord,
    LoadResult,
    LoadSettings,
    TxRecord,
    header_time,
    per_account_count,
    run_load,
    write_csv,
)
from lab.load.stats import committed_per_second, percentile, rejection_counts, summarize
from lab.load.transport import CheckAnswer, answer_from_reply, error_kind, websocket_url
from lab.load.workload import KvWorkload, LedgerWorkload, Mix, MixError, PreparedTx, UidCounter, market_available
from lab.report import PLOT_FILES, write_run
from tests.harness import Chain

CHAIN_ID = "load-test"


def test_mix_parse() -> None:
    assert Mix.parse("6:2:2") == Mix(6, 2, 2)
    assert Mix.parse("0:0:1").needs_market is False
    assert str(Mix.parse("1:0:0")) == "1:0:0"
    for bad in ("1:2", "a:b:c", "0:0:0", "-1:0:1", "0:1:1", "1:1:1:1"):
        with pytest.raises(MixError):
            Mix.parse(bad)


def test_load_accounts_are_deterministic_and_distinct() -> None:
    first, again = load_accounts(5), load_accounts(5)
    assert [a.account_id for a in first] == [a.account_id for a in again]
    assert len({a.account_id for a in first}) == 5
    assert load_accounts(1, label="other")[0].account_id != first[0].account_id
    assert all(a.next_nonce == 1 for a in first)


# -- pre-signing ------------------------------------------------------------------------------
def test_prepare_signs_and_serialises_everything_up_front() -> None:
    """Consecutive nonces per account, the JSON-RPC request carries the base64 of the signed bytes."""
    accounts = load_accounts(3)
    plan = LedgerWorkload(CHAIN_ID, Mix(0, 0, 1), accounts).prepare(accounts, 4, UidCounter(), until=0.0)
    assert sorted(plan) == [0, 1, 2]
    uids = set()
    for index, queue in plan.items():
        assert [tx.nonce for tx in queue] == [1, 2, 3, 4]
        for tx in queue:
            assert tx.account == index and tx.msg is not None
            assert base64.b64decode(tx.b64) == tx.raw
            assert tx.tx_hash == hashlib.sha256(tx.raw).hexdigest().upper()
            request = json.loads(tx.request)
            assert request == {"jsonrpc": "2.0", "id": tx.uid, "method": "broadcast_tx_sync",
                               "params": {"tx": tx.b64}}
            signed = decode_tx(tx.raw, CHAIN_ID, 65_536)
            assert (signed.account, signed.nonce) == (accounts[index].account_id, tx.nonce)
            uids.add(tx.uid)
    assert len(uids) == 12
    assert all(a.next_nonce == 5 for a in accounts)  # the next run continues above every pre-signed nonce


def test_per_account_count_has_spare() -> None:
    assert per_account_count(1000, 100) == 12
    assert per_account_count(1, 100) == 2
    assert per_account_count(100, 100) * 100 >= 100


def test_prepare_cancels_only_orders_open_until_the_run_ends() -> None:
    if not market_available():
        pytest.skip("no market in this build")
    accounts = load_accounts(1)
    accounts[0].open_orders = [OpenOrder(7, valid_until=100), OpenOrder(8, valid_until=10_000)]
    workload = LedgerWorkload(CHAIN_ID, Mix(1, 1, 0), accounts, seed=5, now=0.0)
    plan = workload.prepare(accounts, 40, UidCounter(), until=1_000.0)
    cancels = [tx.msg for tx in plan[0] if tx.kind == "cancel"]
    assert [getattr(m, "order_id", None) for m in cancels] == [8]  # order 7 expires before the run ends
    assert workload.cancel_fallbacks > 0  # the other cancels the mix drew became orders
    assert accounts[0].open_orders == []


def test_resign_uses_the_nodes_nonce_and_keeps_the_messages() -> None:
    accounts = load_accounts(2)
    workload = LedgerWorkload(CHAIN_ID, Mix(0, 0, 1), accounts)
    uids = UidCounter()
    queue = list(workload.prepare(accounts, 3, uids, until=0.0)[0])
    fresh = workload.resign(accounts[0], queue, 40, uids)
    assert [tx.nonce for tx in fresh] == [40, 41, 42]
    assert [tx.msg for tx in fresh] == [tx.msg for tx in queue]
    assert {tx.uid for tx in fresh}.isdisjoint(tx.uid for tx in queue)
    assert decode_tx(fresh[0].raw, CHAIN_ID, 65_536).nonce == 40
    assert accounts[0].next_nonce == 43


def _events(result: Any) -> list[dict[str, Any]]:
    """A FinalizeBlock result's events as CometBFT's JSON lists them."""
    return [{"type": e.type, "attributes": [{"key": a.key, "value": a.value} for a in e.attributes]}
            for e in result.events]


def test_ledger_workload_commits_on_the_real_ledger() -> None:
    """Every pre-signed transaction of a 6:2:2 mix is accepted in blocks; later cancels name the sender's orders."""
    if not market_available():
        pytest.skip("no market in this build")
    chain = Chain(app_state=load_app_state(4), chain_id=CHAIN_ID)
    accounts = load_accounts(4)
    workload = LedgerWorkload(CHAIN_ID, Mix(6, 2, 2), accounts, seed=3, now=chain.time)
    kinds = []
    for _ in range(3):  # three "runs": the cancels of one need the orders committed in the earlier ones
        plan = workload.prepare(accounts, 4, UidCounter(), until=chain.time)
        for position in range(4):
            txs = [(account, plan[account.index][position]) for account in accounts]
            for _, tx in txs:
                assert chain.check(tx.raw).code == 0, tx.kind
            response = chain.block([tx.raw for _, tx in txs])
            for (account, tx), result in zip(txs, response.tx_results, strict=True):
                assert result.code == 0, (tx.kind, result.log)
                workload.on_committed(account, tx, result.code, _events(result))
                kinds.append(tx.kind)
    assert {"order", "cancel", "transfer"} <= set(kinds)
    assert all(a.next_nonce == 13 for a in accounts)
    assert chain.account(accounts[0].account_id)["nonce"] == 12


def test_kv_workload_same_size_and_unique() -> None:
    accounts = load_accounts(3)
    plan = KvWorkload(175, "t").prepare(accounts, 100, UidCounter(), until=0.0)
    txs = [tx.raw for queue in plan.values() for tx in queue]
    assert {len(tx) for tx in txs} == {175}
    assert len(set(txs)) == 300
    assert all(tx.count(b"=") == 1 for tx in txs)


# -- transport answers ------------------------------------------------------------------------
def test_answers_and_error_kinds() -> None:
    assert answer_from_reply({"id": 1, "result": {"code": 12, "log": "stale"}}) == CheckAnswer(12, "stale")
    full = answer_from_reply({"id": 1, "error": {"code": -32603, "message": "Internal error",
                                                  "data": "mempool is full: number of txs 5000"}})
    assert full.code is None and full.error == "mempool_full"
    assert answer_from_reply(ConnectionError("reset")).error == "transport"
    assert error_kind("tx already exists in cache") == "duplicate"
    assert error_kind("anything else") == "rpc_error"
    assert websocket_url("http://127.0.0.1:26657/") == "ws://127.0.0.1:26657/websocket"


# -- the sender against a fake node -------------------------------------------------------------
@dataclass
class FakeNode:
    """A CometBFT stand-in on loopback: websocket JSON-RPC (broadcast_tx_sync, abci_query, subscribe).

    Nonces follow the ledger's rule (each must exceed the account's last one).
    ``jump`` makes the chain "learn" higher nonces once an account's first
    transaction was accepted, as when transactions signed elsewhere commit after
    a partition heals: the account's next pre-signed nonce is then stale.
    Accepted transactions go into a block every ``block_s`` seconds.
    """

    jump: dict[str, int] = field(default_factory=dict)
    block_s: float = 0.05
    last_nonce: dict[str, int] = field(default_factory=dict)
    mempool: list[str] = field(default_factory=list)
    subscribers: list[ServerConnection] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    height: int = 1

    async def handle(self, ws: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                request = json.loads(message)
                reply = self.answer(ws, request)
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], **reply}))

    def answer(self, ws: ServerConnection, request: dict[str, Any]) -> dict[str, Any]:
        params = request.get("params") or {}
        if request["method"] == "subscribe":
            self.subscribers.append(ws)
            return {"result": {}}
        if request["method"] == "abci_query":
            account = params["path"].removeprefix("/next_nonce/")
            self.queries.append(account)
            value = json.dumps({"account": account, "next_nonce": self.last_nonce.get(account, 0) + 1})
            return {"result": {"response": {"code": 0, "value": base64.b64encode(value.encode()).decode()}}}
        assert request["method"] == "broadcast_tx_sync"
        signed = decode_tx(base64.b64decode(params["tx"]), CHAIN_ID, 65_536)
        if signed.nonce <= self.last_nonce.get(signed.account, 0):
            self.refused.append((signed.account, signed.nonce))
            return {"result": {"code": 12, "log": f"nonce {signed.nonce} is not above the account's last nonce"}}
        self.last_nonce[signed.account] = max(signed.nonce, self.jump.pop(signed.account, 0))
        self.mempool.append(params["tx"])
        return {"result": {"code": 0, "log": ""}}

    async def blocks(self) -> None:
        while True:
            await asyncio.sleep(self.block_s)
            self.height += 1
            txs, self.mempool = self.mempool, []
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            event = {"jsonrpc": "2.0", "id": "loadgen", "result": {"data": {"value": {
                "block": {"header": {"height": str(self.height), "time": stamp}, "data": {"txs": txs}},
                "result_finalize_block": {"tx_results": [{"code": 0} for _ in txs]}}}}}
            for ws in list(self.subscribers):
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.send(json.dumps(event))


@contextlib.contextmanager
def fake_node(node: FakeNode) -> Iterator[str]:
    """Serve ``node`` on a free loopback port in a background thread; yields its RPC URL."""
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[str] = loop.create_future()
    stop = asyncio.Event()

    async def main() -> None:
        async with serve(node.handle, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            blocks = asyncio.create_task(node.blocks())
            ready.set_result(f"http://127.0.0.1:{port}")
            await stop.wait()
            blocks.cancel()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(_wait(ready), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)


async def _wait(future: asyncio.Future[str]) -> str:
    return await future


def test_stale_nonce_recovers_from_the_nodes_next_nonce() -> None:
    """One refusal with code 12, then the account re-reads its next nonce and re-signs: nothing else is refused."""
    accounts = load_accounts(2)
    node = FakeNode(jump={accounts[0].account_id: 9})
    workload = LedgerWorkload(CHAIN_ID, Mix(0, 0, 1), accounts)
    with fake_node(node) as url:
        result = run_load(LoadSettings((url,), rate=200, duration_s=0.2, drain_timeout_s=5), workload, accounts)
    assert result.errors == []
    assert node.refused == [(accounts[0].account_id, 2)]
    assert node.queries == [accounts[0].account_id]
    refused = [r for r in result.records if r.check_code == 12]
    assert len(refused) == 1
    retried = [r for r in result.records if r.retry_of is not None]
    assert len(retried) == 1 and retried[0].retry_of == refused[0].seq and retried[0].nonce == 10
    mine = [r.nonce for r in result.records if r.account == 0 and r.check_code == 0]
    assert mine == [1, *range(10, 10 + len(mine) - 1)]
    assert all(r.commit_height is not None and r.result_code == 0 for r in result.records if r.check_code == 0)
    assert result.notes["nonce_recoveries"] == 1
    assert summarize(result)["rejections"] == {"check:12": 1}


def test_no_signing_while_the_clock_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the run is prepared, signing is forbidden; the whole run still gets every transaction in."""
    import lab.load.generator as loadgen

    prepare = loadgen.prepare_run

    def prepare_then_forbid(*args: Any) -> Any:
        prepared = prepare(*args)

        def forbidden(*_: Any) -> bytes:
            raise AssertionError("signed while the clock ran")

        monkeypatch.setattr(loadgen_workload, "encode_tx", forbidden)
        return prepared

    monkeypatch.setattr(loadgen, "prepare_run", prepare_then_forbid)
    accounts = load_accounts(4)
    with fake_node(FakeNode()) as url:
        result = run_load(LoadSettings((url,), rate=300, duration_s=0.3, drain_timeout_s=5, connections=2),
                          LedgerWorkload(CHAIN_ID, Mix(0, 0, 1), accounts), accounts)
    assert result.errors == [] and result.drained
    assert len(result.records) == 90
    assert all(r.check_code == 0 and r.result_code == 0 for r in result.records)
    assert result.notes["prepared"] >= 90 and result.notes["generator_cpu_share"] is not None


def test_unreachable_node_is_an_error_not_a_hang() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    accounts = load_accounts(1)
    result = run_load(LoadSettings((f"http://127.0.0.1:{port}",), rate=10, duration_s=0.1, drain_timeout_s=1),
                      KvWorkload(50, "x"), accounts)
    assert result.errors and result.records == []


# -- statistics and files ----------------------------------------------------------------------
def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 90) == 3.0
    assert percentile([], 50) is None


def test_header_time() -> None:
    assert header_time("2026-01-01T00:00:00.5Z") == pytest.approx(1_767_225_600.5)
    assert header_time("2026-01-01T00:00:01.123456789Z") == pytest.approx(1_767_225_601.123456789)


def _record(seq: int, **values: Any) -> TxRecord:
    base: dict[str, Any] = {"seq": seq, "kind": "transfer", "account": 0, "nonce": seq + 1, "node": "n", "size": 170,
                            "tx_hash": f"{seq:064X}", "scheduled_s": seq * 0.1, "submit_s": seq * 0.1}
    base.update(values)
    return TxRecord(**base)


def _synthetic_result() -> LoadResult:
    records = [
        _record(0, check_code=0, commit_height=5, commit_seen_s=0.5, result_code=0),
        _record(1, check_code=0, commit_height=5, commit_seen_s=0.6, result_code=0),
        _record(2, check_code=0, commit_height=6, commit_seen_s=1.7, result_code=0, submit_s=0.4),
        _record(3, check_code=22),
        _record(4, error="mempool_full"),
        _record(5, check_code=0, commit_height=6, commit_seen_s=1.7, result_code=12),
        _record(6, check_code=0),
    ]
    blocks = [BlockRecord(5, 100.0, 0.5, 2, 340, 2), BlockRecord(6, 101.2, 1.7, 2, 340, 2)]
    settings = LoadSettings(nodes=("http://127.0.0.1:1",), rate=10, duration_s=0.7, label="synthetic")
    return LoadResult(settings, "gridledger", 99.5, records, blocks, 0.7, drained=False, errors=["x"],
                      notes={"undrained": 1})


def test_summary_counts_and_figures() -> None:
    summary = summarize(_synthetic_result())
    assert summary["sent"] == 7 and summary["accepted"] == 5 and summary["committed"] == 3
    assert summary["rejections"] == {"check:22": 1, "deliver:12": 1, "not_committed": 1, "rpc:mempool_full": 1}
    assert summary["latency_s"]["n"] == 3
    assert summary["latency_s"]["max"] == pytest.approx(1.3)
    assert summary["fell_behind"]["n"] == 1  # record 2 left 0.2 s late
    assert summary["blocks"]["interval_s"]["n"] == 1
    assert summary["blocks"]["interval_s"]["p50"] == pytest.approx(1.2)
    # commits seen in [duration/4, duration) = [0.175, 0.7): the two at 0.5 and 0.6
    assert summary["steady_committed_tps"] == pytest.approx(2 / 0.525)
    assert summary["saturated"] is True  # 3.8 tx/s sustained against 10 offered
    assert summary["errors"] == ["x"]
    assert "expected past saturation" in summary["warnings"][0]
    assert rejection_counts([]) == {}
    assert committed_per_second(_synthetic_result().records) == [(0, 2), (1, 1)]


def test_invalid_undrained_backlog_below_saturation_is_an_error() -> None:
    result = _synthetic_result()
    result.settings = LoadSettings(nodes=("http://127.0.0.1:1",), rate=2, duration_s=0.7)
    summary = summarize(result)
    assert summary["saturated"] is False
    assert summary["errors"][0] == "x" and "1 accepted transactions were not seen committed" in summary["errors"][1]
    assert summary["warnings"] == []


def test_write_run_files(tmp_path: Path) -> None:
    summary = write_run(_synthetic_result(), tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["committed"] == summary["committed"] == 3
    with (tmp_path / "txs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 and rows[0]["latency_s"] == "0.500000" and rows[3]["check_code"] == "22"
    for name in PLOT_FILES.values():
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_csv_leaves_unknown_values_empty(tmp_path: Path) -> None:
    write_csv([_record(0)], tmp_path / "t.csv")
    row = next(csv.DictReader((tmp_path / "t.csv").open()))
    assert row["commit_height"] == "" and row["latency_s"] == "" and row["retry_of"] == ""


def test_lost_answer_but_committed_is_not_a_rejection() -> None:
    records = [_record(0, error="timeout", commit_height=3, commit_seen_s=0.9, result_code=0),
               _record(1, error="timeout")]
    assert rejection_counts(records) == {"rpc:timeout": 1}


def test_ceiling_step_held_or_not() -> None:
    settings = LoadSettings(nodes=("http://127.0.0.1:1",), rate=10, duration_s=1.0)
    on_time = [_record(i, check_code=0, check_s=i * 0.1 + 0.01) for i in range(10)]
    held = step_figures(LoadResult(settings, "kvstore", 0.0, on_time, [], 1.0, True,
                                   notes={"generator_cpu_share": 0.2}))
    assert held.held and held.accepted == 10 and held.accepted_tps == pytest.approx(10 / 0.91, abs=0.1)
    late = [_record(i, check_code=0, check_s=i * 0.1 + 0.5, submit_s=i * 0.1 + 0.4) for i in range(10)]
    assert not step_figures(LoadResult(settings, "kvstore", 0.0, late, [], 1.0, True)).held
    full = [_record(i, error="mempool_full", check_s=i * 0.1) for i in range(10)]
    assert not step_figures(LoadResult(settings, "kvstore", 0.0, full, [], 1.0, True)).held


def _scripted_step(rate: float, held: bool, cpu: float) -> LoadResult:
    """A ramp step of ``rate`` tx/s over one second, on time or a whole second late."""
    settings = LoadSettings(nodes=("http://127.0.0.1:1",), rate=rate, duration_s=1.0)
    lag = 0.0 if held else 1.0
    count = int(rate)
    records = [_record(i, check_code=0, scheduled_s=i / rate, submit_s=i / rate + lag, check_s=i / rate + lag + 0.01)
               for i in range(count)]
    return LoadResult(settings, "kvstore", 0.0, records, [], 1.0, True, notes={"generator_cpu_share": cpu})


@pytest.mark.parametrize(("held_up_to", "cpu", "limit", "offered"), [
    (40.0, 0.2, "max_rate", [10.0, 20.0, 40.0]),
    (10.0, 0.2, "nodes", [10.0, 20.0]),
    (10.0, 0.95, "generator", [10.0, 20.0]),
    (0.0, 0.2, "nodes", [10.0]),
])
def test_ceiling_ramp_stops_at_the_first_step_not_held(monkeypatch: pytest.MonkeyPatch, held_up_to: float,
                                                        cpu: float, limit: str, offered: list[float]) -> None:
    """The ramp doubles while steps hold, stops at the first that does not, and names what ended it."""
    settled: list[float] = []

    def scripted(settings: LoadSettings, *_: object) -> LoadResult:
        return _scripted_step(settings.rate, settings.rate <= held_up_to, cpu)

    monkeypatch.setattr(ceiling_module, "run_load", scripted)
    result = ceiling_module.probe_ceiling(("http://127.0.0.1:1",), [], 8, CeilingSettings(10, 40, 1.0), "ws", 1,
                                          "t", settle=lambda: settled.append(1))
    assert [step.offered_tps for step in result.steps] == offered
    assert result.limit == limit and not result.error
    assert result.held_tps == (held_up_to or None)
    assert len(settled) == sum(step.held for step in result.steps)


def test_prepared_tx_is_frozen() -> None:
    tx = loadgen_workload.prepared(1, "kv", 0, 0, b"a=b")
    assert isinstance(tx, PreparedTx) and tx.request.endswith('"YT1i"}}')
    with pytest.raises(AttributeError):
        tx.nonce = 2  # type: ignore[misc]
