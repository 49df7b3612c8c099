"""Load generator pieces without CometBFT: mix, accounts, workloads through the real ledger, statistics, files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from node.loadgen import BlockRecord, LoadResult, LoadSettings, TxRecord, header_time, websocket_url, write_csv
from node.loadgen_accounts import load_accounts, load_app_state
from node.loadgen_stats import committed_per_second, percentile, rejection_counts, summarize
from node.loadgen_workload import BuiltTx, KvWorkload, LedgerWorkload, Mix, MixError, market_available
from node.report import PLOT_FILES, write_run
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


def _events(result: Any) -> list[dict[str, Any]]:
    return [{"type": e.type, **{a.key: a.value for a in e.attributes}} for e in result.events]


def test_ledger_workload_commits_on_the_real_ledger() -> None:
    """Every transaction of a 6:2:2 mix, in blocks, is accepted; cancels name the sender's own orders."""
    if not market_available():
        pytest.skip("no market in this build")
    chain = Chain(app_state=load_app_state(4), chain_id=CHAIN_ID)
    accounts = load_accounts(4)
    workload = LedgerWorkload(CHAIN_ID, Mix(6, 2, 2), accounts, seed=3, now=chain.time)
    seq = 0
    kinds = []
    for _ in range(8):
        built: list[tuple[Any, BuiltTx]] = []
        for account in accounts:
            tx = workload.build(account, seq)
            seq += 1
            assert chain.check(tx.raw).code == 0
            workload.on_checked(account, tx, 0)
            built.append((account, tx))
        response = chain.block([tx.raw for _, tx in built])
        for (account, tx), result in zip(built, response.tx_results, strict=True):
            assert result.code == 0, (tx.kind, result.log)
            workload.on_committed(account, tx, result.code, _events(result))
            kinds.append(tx.kind)
    assert {"order", "cancel", "transfer"} <= set(kinds)
    assert all(a.next_nonce == 9 for a in accounts)
    assert chain.account(accounts[0].account_id)["nonce"] == 8


def test_refused_transaction_keeps_its_nonce() -> None:
    accounts = load_accounts(2)
    workload = LedgerWorkload(CHAIN_ID, Mix(0, 0, 1), accounts)
    tx = workload.build(accounts[0], 0)
    workload.on_checked(accounts[0], tx, 22)  # refused: nonce not spent
    assert accounts[0].next_nonce == 1
    workload.on_checked(accounts[0], tx, None)  # no answer: assume spent (gaps are legal)
    assert accounts[0].next_nonce == 2


def test_kv_workload_same_size_and_unique() -> None:
    workload = KvWorkload(175, "t")
    txs = [workload.build(load_accounts(1)[0], seq).raw for seq in range(300)]
    assert {len(tx) for tx in txs} == {175}
    assert len(set(txs)) == 300
    assert all(tx.count(b"=") == 1 for tx in txs)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 90) == 3.0
    assert percentile([], 50) is None


def test_header_time_and_websocket_url() -> None:
    assert header_time("2026-01-01T00:00:00.5Z") == pytest.approx(1_767_225_600.5)
    assert header_time("2026-01-01T00:00:01.123456789Z") == pytest.approx(1_767_225_601.123456789)
    assert websocket_url("http://127.0.0.1:26657/") == "ws://127.0.0.1:26657/websocket"


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
    return LoadResult(settings, "gridledger", 99.5, records, blocks, 0.7, drained=False, errors=["x"])


def test_summary_counts_and_figures() -> None:
    summary = summarize(_synthetic_result())
    assert summary["sent"] == 7 and summary["accepted"] == 5 and summary["committed"] == 3
    assert summary["rejections"] == {"check:22": 1, "deliver:12": 1, "not_committed": 1, "rpc:mempool_full": 1}
    assert summary["latency_s"]["n"] == 3
    assert summary["latency_s"]["max"] == pytest.approx(1.3)
    assert summary["fell_behind"]["n"] == 1  # record 2 left 0.2 s late
    assert summary["blocks"]["interval_s"]["n"] == 1
    assert summary["blocks"]["interval_s"]["p50"] == pytest.approx(1.2)
    assert summary["errors"] == ["x"]
    assert rejection_counts([]) == {}
    assert committed_per_second(_synthetic_result().records) == [(0, 2), (1, 1)]


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
    assert row["commit_height"] == "" and row["latency_s"] == ""


def test_lost_answer_but_committed_is_not_a_rejection() -> None:
    records = [_record(0, error="timeout", commit_height=3, commit_seen_s=0.9, result_code=0),
               _record(1, error="timeout")]
    assert rejection_counts(records) == {"rpc:timeout": 1}
