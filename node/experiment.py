"""Experiment matrices: validator counts x timeout_commit values x offered rates, each app and its baseline.

For every (validators, timeout_commit) pair and every application (gridledger,
then CometBFT's built-in kvstore as the baseline) the runner initialises a
fresh local network, starts it, warms it up with a short unrecorded load,
runs one recorded load per offered rate (waiting for the mempools to empty in
between), and tears the network down. Everything lands in
``results/NAME/<timestamp>/``: one directory per run (CSV, JSON, plots), group
plots, ``summary.json`` and ``report.md``.

Preset files live in ``config/experiments/*.toml``; the keys are documented in
docs/experiments.md.
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.loadgen import LoadResult, LoadSettings, run_load
from node.loadgen_accounts import load_accounts, load_app_state
from node.loadgen_cluster import ClusterSpec, LocalCluster
from node.loadgen_workload import (
    KvWorkload,
    LedgerWorkload,
    Mix,
    Workload,
    market_available,
    market_params,
    sample_tx_size,
)

Progress = Callable[[str], None]


class ConfigError(ValueError):
    """The experiment file is missing a key or has a value of the wrong kind."""


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    description: str
    validators: tuple[int, ...]
    timeout_commit: tuple[str, ...]
    rates: tuple[float, ...]
    baseline: bool
    duration_s: float
    warmup_s: float
    accounts: int
    mix: Mix
    drain_timeout_s: float
    settle_timeout_s: float
    log_level: str
    mempool_size: int | None
    source: str = ""

    def settings(self) -> dict[str, Any]:
        return {"validators": list(self.validators), "timeout_commit": list(self.timeout_commit),
                "rates": list(self.rates), "baseline": self.baseline, "duration_s": self.duration_s,
                "warmup_s": self.warmup_s, "accounts": self.accounts, "mix": str(self.mix),
                "drain_timeout_s": self.drain_timeout_s, "settle_timeout_s": self.settle_timeout_s,
                "log_level": self.log_level, "mempool_size": self.mempool_size}


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"missing key {key!r}")
        return default
    value = table[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ConfigError(f"{key!r} has the wrong type ({type(value).__name__})")
    return value


def _positive_list(table: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> tuple[Any, ...]:
    values = _get(table, key, list)
    if not values or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{key!r} must be a non-empty list")
    if kind is not str and any(v <= 0 for v in values):
        raise ConfigError(f"{key!r} must hold positive numbers")
    return tuple(values)


def load_config(path: Path) -> ExperimentConfig:
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        matrix, load = _get(doc, "matrix", dict), _get(doc, "load", dict)
        network = _get(doc, "network", dict, {})
        return ExperimentConfig(
            name=_get(doc, "name", str, path.stem),
            description=_get(doc, "description", str, ""),
            validators=_positive_list(matrix, "validators", int),
            timeout_commit=_positive_list(matrix, "timeout_commit", str),
            rates=tuple(float(r) for r in _positive_list(matrix, "rates", (int, float))),
            baseline=_get(matrix, "baseline", bool, True),
            duration_s=float(_get(load, "duration_s", (int, float))),
            warmup_s=float(_get(load, "warmup_s", (int, float), 0)),
            accounts=_get(load, "accounts", int),
            mix=Mix.parse(_get(load, "mix", str, "0:0:1")),
            drain_timeout_s=float(_get(load, "drain_timeout_s", (int, float), 30)),
            settle_timeout_s=float(_get(load, "settle_timeout_s", (int, float), 60)),
            log_level=_get(network, "log_level", str, "error"),
            mempool_size=_get(network, "mempool_size", int, None),
            source=str(path),
        )
    except ValueError as exc:  # ConfigError and MixError
        raise ConfigError(f"{path}: {exc}") from exc


@dataclass
class RunOutcome:
    """One recorded load: its place in the matrix, its summary, where its files are."""

    app: str
    validators: int
    timeout_commit: str
    rate: float
    directory: str
    summary: dict[str, Any] | None = None
    result: LoadResult | None = None
    error: str = ""


@dataclass
class ExperimentOutcome:
    config: ExperimentConfig
    directory: Path
    started_unix: float
    runs: list[RunOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    kv_tx_bytes: int = 0
    finished_unix: float = 0.0


def run_slug(app: str, validators: int, timeout_commit: str, rate: float | None = None) -> str:
    slug = f"{app}-v{validators}-tc{timeout_commit}"
    return slug if rate is None else f"{slug}-r{rate:g}"


def _workload(app: str, config: ExperimentConfig, cluster: LocalCluster, accounts: Any, kv_bytes: int,
              tag: str) -> Workload:
    if app == "kvstore":
        return KvWorkload(kv_bytes, tag)
    market = market_params(cluster.rpc_urls[0]) if config.mix.needs_market else {}
    return LedgerWorkload(cluster.spec.chain_id, config.mix, accounts, market_params=market)


def _run_group(outcome: ExperimentOutcome, app: str, validators: int, timeout_commit: str,
               progress: Progress) -> None:
    """One network: init, start, warm up, one load per rate, tear down."""
    from node.report import write_run

    config = outcome.config
    group = run_slug(app, validators, timeout_commit)
    extra = {"mempool": {"size": config.mempool_size}} if config.mempool_size else {}
    spec = ClusterSpec(app=app, validators=validators, timeout_commit=timeout_commit,
                       app_state=load_app_state(config.accounts) if app == "gridledger" else None,
                       log_level=config.log_level, extra_config=extra)
    progress(f"[{group}] starting {validators} validator(s)")
    with LocalCluster(spec, outcome.directory / "networks" / group) as cluster:
        cluster.wait_ready()
        accounts = load_accounts(config.accounts)
        nodes = tuple(cluster.rpc_urls)
        if config.warmup_s > 0:
            progress(f"[{group}] warm-up: {config.warmup_s:g}s at {config.rates[0]:g} tx/s (not recorded)")
            workload = _workload(app, config, cluster, accounts, outcome.kv_tx_bytes, f"{group}-warmup")
            run_load(LoadSettings(nodes, config.rates[0], config.warmup_s, config.drain_timeout_s), workload,
                     accounts)
            cluster.wait_mempools_empty(config.settle_timeout_s)
        for rate in config.rates:
            slug = run_slug(app, validators, timeout_commit, rate)
            run = RunOutcome(app, validators, timeout_commit, rate, f"runs/{slug}")
            outcome.runs.append(run)
            try:
                workload = _workload(app, config, cluster, accounts, outcome.kv_tx_bytes, slug)
                settings = LoadSettings(nodes, rate, config.duration_s, config.drain_timeout_s, label=slug)
                progress(f"[{slug}] {config.duration_s:g}s at {rate:g} tx/s")
                run.result = run_load(settings, workload, accounts)
                if not cluster.alive():
                    run.result.errors.append("a node of the network died during this run")
                run.summary = write_run(run.result, outcome.directory / run.directory)
                run.summary["matrix"] = {"app": app, "validators": validators, "timeout_commit": timeout_commit,
                                         "rate": rate}
                progress(f"[{slug}] committed {run.summary['committed']}/{run.summary['sent']}, "
                         f"{(run.summary['committed_tps'] or 0):.1f} tx/s")
            except Exception as exc:  # one failed run must not lose the others
                run.error = f"{type(exc).__name__}: {exc}"
                outcome.errors.append(f"{slug}: {run.error}")
                progress(f"[{slug}] failed: {run.error}")
            if not cluster.wait_mempools_empty(config.settle_timeout_s):
                outcome.errors.append(f"{slug}: mempools still held transactions {config.settle_timeout_s:g}s "
                                      "after the run (the next rate started with a backlog)")
    # Keep configs and node logs for inspection; the chain data is only bulk.
    for home in cluster.homes:
        shutil.rmtree(home / "data", ignore_errors=True)


def run_experiment(config: ExperimentConfig, results_root: Path, progress: Progress | None = None) -> ExperimentOutcome:
    """Run the whole matrix and write the report; never raises for a failed run (it is reported)."""
    from node.report import write_experiment

    say = progress or (lambda _: None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = results_root / config.name / stamp
    directory.mkdir(parents=True, exist_ok=False)
    outcome = ExperimentOutcome(config, directory, time.time())
    if config.mix.needs_market and not market_available():
        outcome.errors.append(f"mix {config.mix} needs the market messages, which this build lacks")
    else:
        outcome.kv_tx_bytes = sample_tx_size(config.mix)
        apps = ("gridledger", "kvstore") if config.baseline else ("gridledger",)
        for validators in config.validators:
            for timeout_commit in config.timeout_commit:
                for app in apps:
                    try:
                        _run_group(outcome, app, validators, timeout_commit, say)
                    except Exception as exc:
                        group = run_slug(app, validators, timeout_commit)
                        outcome.errors.append(f"{group}: network failed: {type(exc).__name__}: {exc}")
                        say(f"[{group}] network failed: {exc}")
                        (directory / f"{group}-traceback.txt").write_text(traceback.format_exc())
    outcome.finished_unix = time.time()
    write_experiment(outcome)
    (directory / "config.json").write_text(json.dumps(config.settings(), indent=2) + "\n")
    return outcome
