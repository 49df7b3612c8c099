"""`gridledger bench ...`: open-loop load against running nodes, and the genesis of its accounts.

    gridledger bench app-state --accounts 200 > load-app-state.json
    gridledger bench load --nodes http://127.0.0.1:26657 --rate 100 --duration 30 --accounts 200 --mix 6:2:2

Exit codes: 0 the load ran (errors, if any, are in the summary and on stderr);
2 usage error (bad mix, chain without the load accounts); 3 node unreachable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.keys import Format
from cli.output import NODE_UNREACHABLE, Output, fail, note
from node.loadgen import LoadSettings, run_load
from node.loadgen_accounts import DEFAULT_LABEL, LoadAccount, load_accounts, load_app_state
from node.loadgen_workload import (
    KvWorkload,
    LedgerWorkload,
    Mix,
    MixError,
    Workload,
    market_params,
    sample_tx_size,
)
from node.rpc import CometRpc, NodeUnreachable, RpcError

bench_app = typer.Typer(help="Load generation: open-loop signed transactions against running nodes.",
                        no_args_is_help=True)


class AppKind(StrEnum):
    gridledger = "gridledger"
    kvstore = "kvstore"


def _node_urls(text: str) -> tuple[str, ...]:
    urls = tuple(u.strip().rstrip("/") for u in text.split(",") if u.strip())
    if not urls:
        fail("--nodes needs at least one RPC URL, e.g. http://127.0.0.1:26657")
    return urls


def _query(rpc: CometRpc, path: str) -> Any:
    try:
        return rpc.query_json(path)
    except NodeUnreachable:
        fail(f"node {rpc.url} is unreachable (is it running? check --nodes)", NODE_UNREACHABLE)
    except RpcError as exc:
        fail(f"{exc}")


def _sync_nonces(rpc: CometRpc, accounts: list[LoadAccount]) -> None:
    """Start from each account's next nonce on chain; from then on nonces are counted locally."""
    for account in accounts:
        try:
            account.next_nonce = int(rpc.query_json(f"/next_nonce/{account.account_id}")["next_nonce"])
        except RpcError:
            fail(f"load account {account.index} ({account.account_id}) is not on this chain: start the chain "
                 f"from a genesis with `gridledger bench app-state --accounts {len(accounts)}`")
        except NodeUnreachable:
            fail(f"node {rpc.url} is unreachable", NODE_UNREACHABLE)


def _ledger_workload(urls: tuple[str, ...], mix: Mix, accounts: list[LoadAccount], seed: int,
                     chain_id: str | None) -> Workload:
    rpc = CometRpc(urls[0])
    try:
        chain = chain_id or _query(rpc, "/chain")["chain_id"]
        note(f"reading the nonces of {len(accounts)} load accounts from {urls[0]}")
        _sync_nonces(rpc, accounts)
    finally:
        rpc.close()
    try:
        return LedgerWorkload(chain, mix, accounts, seed=seed,
                              market_params=market_params(urls[0]) if mix.needs_market else None)
    except MixError as exc:
        fail(str(exc))


def _figures(summary: dict[str, Any], outdir: Path) -> dict[str, Any]:
    latency = summary["latency_s"]
    return {
        "out": str(outdir), "workload": summary["workload"], "sent": summary["sent"],
        "accepted": summary["accepted"], "committed": summary["committed"],
        "offered_tps": summary["offered_tps"], "achieved_tps": summary["achieved_tps"],
        "committed_tps": summary["committed_tps"], "latency_n": latency["n"], "latency_p50_s": latency["p50"],
        "latency_p90_s": latency["p90"], "latency_p99_s": latency["p99"], "latency_max_s": latency["max"],
        "fell_behind": summary["fell_behind"]["n"], "rejections": summary["rejections"],
        "blocks": summary["blocks"]["count"], "errors": summary["errors"],
    }


@bench_app.command("load")
def load(
    nodes: Annotated[str, typer.Option("--nodes", help="Comma-separated CometBFT RPC URLs; load is spread over them.")],
    rate: Annotated[float, typer.Option("--rate", min=0.001, help="Offered transactions per second (open loop).")],
    duration: Annotated[float, typer.Option("--duration", min=0.001, help="Seconds of sending.")],
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="Pre-funded load accounts to sign from.")] = 100,
    mix: Annotated[str, typer.Option("--mix", help="Weights orders:cancels:transfers, e.g. 6:2:2.")] = "0:0:1",
    app: Annotated[AppKind, typer.Option("--app", help="gridledger, or CometBFT's built-in kvstore.")] =
        AppKind.gridledger,
    tx_size: Annotated[int | None, typer.Option("--tx-size", min=8, help="kvstore: bytes per tx "
                                                "(default: the mean size of gridledger txs of this mix).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Directory for the files "
                                             "(default results/load/<timestamp>).")] = None,
    chain_id: Annotated[str | None, typer.Option("--chain-id", help="Chain id (default: from the node).")] = None,
    drain_timeout: Annotated[float, typer.Option("--drain-timeout", help="Seconds to await outstanding commits "
                                                 "after sending.")] = 30.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the message mix.")] = 1,
    account_label: Annotated[str, typer.Option("--account-label", help="Label the load keys derive from "
                                               "(as given to bench app-state).")] = DEFAULT_LABEL,
    output: Annotated[Format, typer.Option("--output", "-o", help="Result format on stdout.")] = Format.table,
) -> None:
    """Send signed transactions open-loop at RATE for DURATION; write per-tx CSV, JSON summary and plots.

    Example: gridledger bench load --nodes http://127.0.0.1:26657 --rate 50 --duration 20 --accounts 100
    """
    from node.report import write_run

    urls = _node_urls(nodes)
    try:
        parsed_mix = Mix.parse(mix)
        settings = LoadSettings(nodes=urls, rate=rate, duration_s=duration, drain_timeout_s=drain_timeout,
                                label=f"{app.value} @ {rate:g} tx/s")
    except ValueError as exc:
        fail(str(exc))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outdir = out or Path("results") / "load" / stamp
    load_keys = load_accounts(accounts, account_label)
    workload: Workload
    if app is AppKind.kvstore:
        workload = KvWorkload(tx_size or sample_tx_size(parsed_mix), stamp)
    else:
        workload = _ledger_workload(urls, parsed_mix, load_keys, seed, chain_id)
    result = run_load(settings, workload, load_keys, progress=note)
    summary = write_run(result, outdir)
    for message in summary["errors"]:
        note(f"error: {message}")
    note(f"files in {outdir}")
    Output(output.value).record(_figures(summary, outdir))


@bench_app.command("app-state")
def app_state(
    accounts: Annotated[int, typer.Option("--accounts", min=1, max=9000, help="Load accounts to fund.")] = 100,
    account_label: Annotated[str, typer.Option("--account-label", help="Label the keys derive from.")] =
        DEFAULT_LABEL,
) -> None:
    """Print a genesis app_state (JSON) with a DSO, an LPD and ACCOUNTS funded prosumers with meters.

    The keys are derived from the label, so `bench load` finds them without a keyring.
    Example: gridledger bench app-state --accounts 200 > app_state.json
    """
    typer.echo(json.dumps(load_app_state(accounts, account_label), indent=2))
