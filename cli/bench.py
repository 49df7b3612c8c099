"""`gridledger bench ...`: open-loop load against running nodes, and the genesis of its accounts.

    gridledger bench app-state --accounts 200 > load-app-state.json
    gridledger bench chain --app-state load-app-state.json --validators 4   # runs until Ctrl-C
    gridledger bench load --nodes http://127.0.0.1:26657 --rate 100 --duration 30 --accounts 200 --mix 6:2:2
    gridledger bench ceiling --nodes http://127.0.0.1:26657   # against CometBFT's kvstore nodes

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

from cli.options import OutputOpt
from cli.output import NODE_UNREACHABLE, Format, Output, UsageError, error, note
from lab.load.accounts import DEFAULT_LABEL, load_accounts, load_app_state
from lab.load.ceiling import CeilingSettings, probe_ceiling
from lab.load.generator import DEFAULT_CONNECTIONS, DEFAULT_TRANSPORT, LoadSettings, run_load
from lab.load.workload import KvWorkload, Mix, Workload, ledger_workload, sample_tx_size
from node.rpc import CometRpc

bench_app = typer.Typer(help="Load generation: open-loop signed transactions against running nodes.",
                        no_args_is_help=True)


class AppKind(StrEnum):
    gridledger = "gridledger"
    kvstore = "kvstore"


class TransportKind(StrEnum):
    ws = "ws"
    http = "http"


def _node_urls(text: str) -> tuple[str, ...]:
    urls = tuple(u.strip().rstrip("/") for u in text.split(",") if u.strip())
    if not urls:
        raise UsageError("--nodes needs at least one RPC URL, e.g. http://127.0.0.1:26657")
    return urls


def _figures(summary: dict[str, Any], outdir: Path) -> dict[str, Any]:
    latency = summary["latency_s"]
    return {
        "out": str(outdir), "workload": summary["workload"], "sent": summary["sent"],
        "accepted": summary["accepted"], "committed": summary["committed"],
        "offered_tps": summary["offered_tps"], "achieved_tps": summary["achieved_tps"],
        "committed_tps": summary["committed_tps"], "latency_n": latency["n"], "latency_p50_s": latency["p50"],
        "latency_p90_s": latency["p90"], "latency_p99_s": latency["p99"], "latency_max_s": latency["max"],
        "fell_behind": summary["fell_behind"]["n"], "rejections": summary["rejections"],
        "blocks": summary["blocks"]["count"], "errors": summary["errors"], "warnings": summary["warnings"],
        "seed": summary["notes"].get("seed"), "generator_cpu_share": summary["notes"].get("generator_cpu_share"),
        "nonce_recoveries": summary["notes"].get("nonce_recoveries"),
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
    transport: Annotated[TransportKind, typer.Option("--transport", help="ws: pipelined websockets (default); "
                                                     "http: a pool of keep-alive connections.")] =
        TransportKind(DEFAULT_TRANSPORT),
    connections: Annotated[int, typer.Option("--connections", min=1, max=64, help="Connections per node.")] =
        DEFAULT_CONNECTIONS,
    account_label: Annotated[str, typer.Option("--account-label", help="Label the load keys derive from "
                                               "(as given to bench app-state).")] = DEFAULT_LABEL,
    output: OutputOpt = Format.table,
) -> None:
    """Send signed transactions open-loop at RATE for DURATION; write per-tx CSV, JSON summary and plots.

    Example: gridledger bench load --nodes http://127.0.0.1:26657 --rate 50 --duration 20 --accounts 100
    """
    from lab.report import write_run

    urls = _node_urls(nodes)
    parsed_mix = Mix.parse(mix)
    settings = LoadSettings(nodes=urls, rate=rate, duration_s=duration, drain_timeout_s=drain_timeout,
                            label=f"{app.value} @ {rate:g} tx/s", transport=transport.value, connections=connections)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outdir = out or Path("results") / "load" / stamp
    load_keys = load_accounts(accounts, account_label)
    workload: Workload
    if app is AppKind.kvstore:
        workload = KvWorkload(tx_size or sample_tx_size(parsed_mix), stamp)
    else:
        workload = ledger_workload(urls, parsed_mix, load_keys, seed, chain_id, duration + drain_timeout, progress=note)
    result = run_load(settings, workload, load_keys, progress=note)
    summary = write_run(result, outdir)
    for message in summary["errors"]:
        note(f"error: {message}")
    for message in summary["warnings"]:
        note(f"warning: {message}")
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


@bench_app.command("chain")
def chain(
    app_state_file: Annotated[Path | None, typer.Option(
        "--app-state", help="Genesis app_state JSON, e.g. from `bench app-state` (gridledger; omit for kvstore).")]
    = None,
    validators: Annotated[int, typer.Option("--validators", min=1, max=16, help="Local validators.")] = 1,
    timeout_commit: Annotated[str, typer.Option("--timeout-commit", help="CometBFT consensus.timeout_commit.")]
    = "1s",
    app: Annotated[AppKind, typer.Option("--app", help="gridledger, or CometBFT's built-in kvstore (the "
                                         "baseline).")] = AppKind.gridledger,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="New directory for the homes and logs (default results/chain/<timestamp>).")] = None,
) -> None:
    """Start the chain `bench load` expects: N local validators (throughput settings as in experiments) with
    this app_state, until Ctrl-C; prints the --nodes to load.

    Example: gridledger bench chain --app-state app_state.json --validators 4 --timeout-commit 200ms
    """
    import signal

    from lab.cluster import ClusterSpec, LocalCluster, run_until_stopped

    state: dict[str, Any] | None = None
    if app is AppKind.gridledger:
        if app_state_file is None:
            raise UsageError("a gridledger chain needs --app-state FILE (`gridledger bench app-state > FILE`)")
        try:
            state = json.loads(app_state_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"--app-state {app_state_file}: {exc}") from None
        if not isinstance(state, dict):
            raise UsageError(f"--app-state {app_state_file}: an app_state is a JSON object")
    workdir = directory or Path("results") / "chain" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if workdir.exists() and any(workdir.iterdir()):
        raise UsageError(f"{workdir} is not empty: give a new --dir")
    cluster = LocalCluster(ClusterSpec(app=app.value, validators=validators, timeout_commit=timeout_commit,
                                       app_state=state), workdir)
    stopping: list[int] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, _frame: stopping.append(signum))

    def ready(running: LocalCluster) -> None:
        urls = ",".join(running.rpc_urls)
        accounts = len(state.get("participants", [])) if state else 100
        note(f"chain ready: {validators} {app.value} validator(s), homes and logs in {workdir}; Ctrl-C stops it")
        note(f"load it with: gridledger bench load --nodes {urls} --rate 50 --duration 20 --accounts {accounts}"
             + (" --app kvstore" if app is AppKind.kvstore else ""))
        typer.echo(urls)

    if not run_until_stopped(cluster, lambda: bool(stopping), ready):
        error(f"a node of the chain died (its log is in {workdir})")
        raise typer.Exit(NODE_UNREACHABLE)


@bench_app.command("ceiling")
def ceiling(
    nodes: Annotated[str, typer.Option("--nodes", help="Comma-separated RPC URLs of CometBFT nodes running the "
                                       "built-in kvstore (`cometbft start --proxy_app kvstore`).")],
    start_rate: Annotated[float, typer.Option("--start-rate", min=1, help="First offered rate (tx/s).")] = 500,
    max_rate: Annotated[float, typer.Option("--max-rate", min=1, help="Stop doubling beyond this rate.")] = 8000,
    step: Annotated[float, typer.Option("--step", min=0.5, help="Seconds per step.")] = 3,
    accounts: Annotated[int, typer.Option("--accounts", min=1, max=9000, help="Sending accounts (kvstore txs need "
                                          "no funds; they only bound the transactions in flight).")] = 1000,
    tx_size: Annotated[int, typer.Option("--tx-size", min=8, help="Bytes per transaction.")] = 175,
    transport: Annotated[TransportKind, typer.Option("--transport", help="ws or http.")] =
        TransportKind(DEFAULT_TRANSPORT),
    connections: Annotated[int, typer.Option("--connections", min=1, max=64, help="Connections per node.")] =
        DEFAULT_CONNECTIONS,
    output: OutputOpt = Format.table,
) -> None:
    """Measure the generator's own ceiling: a doubling ramp of offered rates against kvstore nodes.

    Example: gridledger bench ceiling --nodes http://127.0.0.1:26657 --max-rate 4000
    """
    urls = _node_urls(nodes)
    settings = CeilingSettings(start_rate=start_rate, max_rate=max_rate, step_s=step)
    for url in urls:  # every node answers before the ramp starts (NodeUnreachable: exit code 3)
        rpc = CometRpc(url, timeout=5.0)
        try:
            rpc.status()
        finally:
            rpc.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = probe_ceiling(urls, load_accounts(accounts, "ceiling"), tx_size, settings, transport.value,
                           connections, stamp, progress=note)
    note(f"ceiling: held {result.held_tps} tx/s offered, at most {result.ceiling_tps} accepted/s; "
         f"ended by {result.limit}")
    Output(output.value).records([{**vars(step), "ended_by": result.limit} for step in result.steps],
                                 title="generator ceiling against kvstore")
