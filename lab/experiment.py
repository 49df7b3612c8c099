"""Experiment matrices: validator counts x timeout_commit values x offered rates, each app and its baseline.

For every (validators, timeout_commit) pair and every application (gridledger,
then CometBFT's built-in kvstore as the baseline) the runner initialises a
fresh local network with the experiment's CometBFT settings (the same for
both applications, read back from every node's config.toml for the report),
starts it, warms it up with a short unrecorded load, runs one recorded load
per offered rate (waiting for the mempools to empty in between), and tears the
network down. With ``stop_after_saturation`` an application's remaining, higher
rates are skipped once one of its runs saturated. In the kvstore network the
runner finally measures the generator's own ceiling (lab/load/ceiling.py).
Everything lands in ``results/NAME/<timestamp>/``: one directory per run (CSV,
JSON, plots), group plots, ``summary.json`` and ``report.md``.

Preset files live in ``config/experiments/*.toml``; the keys are documented in
docs/experiments.md.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.cluster import ClusterSpec, LocalCluster, throughput_settings
from lab.load.accounts import load_accounts, load_app_state
from lab.load.ceiling import CeilingSettings, probe_ceiling
from lab.load.generator import DEFAULT_CONNECTIONS, DEFAULT_TRANSPORT, LoadResult, LoadSettings, run_load
from lab.load.transport import TRANSPORTS
from lab.load.workload import (
    KvWorkload,
    LedgerWorkload,
    Mix,
    Workload,
    market_available,
    market_params,
    sample_tx_size,
)
from node import cometbft

Progress = Callable[[str], None]
_SCALARS = (str, int, float, bool)


class ConfigError(ValueError):
    """The experiment file is missing a key or has a value of the wrong kind."""


class ExperimentFailed(Exception):
    """The experiment ran, but its report lists errors (a run failed, a node died, or commits went missing)."""


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
    seed: int = 1
    transport: str = DEFAULT_TRANSPORT
    connections: int = DEFAULT_CONNECTIONS
    stop_after_saturation: bool = False
    ceiling: CeilingSettings | None = None
    cometbft: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The preset's config.toml overrides on top of THROUGHPUT_SETTINGS (``""`` is the top level)."""
    repeat: int = 1
    source: str = ""

    def cometbft_settings(self) -> dict[str, dict[str, Any]]:
        """Every config.toml value the experiment chooses, identical for gridledger and kvstore."""
        return throughput_settings(self.cometbft)

    @property
    def log_level(self) -> str:
        return str(self.cometbft_settings().get("", {}).get("log_level", "error"))

    def settings(self) -> dict[str, Any]:
        ceiling = None if self.ceiling is None else {"start_rate": self.ceiling.start_rate,
                                                      "max_rate": self.ceiling.max_rate,
                                                      "step_s": self.ceiling.step_s}
        return {"validators": list(self.validators), "timeout_commit": list(self.timeout_commit),
                "rates": list(self.rates), "baseline": self.baseline, "duration_s": self.duration_s,
                "warmup_s": self.warmup_s, "accounts": self.accounts, "mix": str(self.mix),
                "drain_timeout_s": self.drain_timeout_s, "settle_timeout_s": self.settle_timeout_s,
                "seed": self.seed, "transport": self.transport, "connections_per_node": self.connections,
                "stop_after_saturation": self.stop_after_saturation, "ceiling": ceiling, "repeat": self.repeat,
                "cometbft": {(f"{section}.{key}" if section else key): value
                             for section, values in self.cometbft_settings().items()
                             for key, value in values.items()}}


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"missing key {key!r}")
        return default
    value = table[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ConfigError(f"{key!r} has the wrong type ({type(value).__name__})")
    return value


def _positive(table: dict[str, Any], key: str, default: Any = ...) -> float:
    value = float(_get(table, key, (int, float), default))
    if value <= 0:
        raise ConfigError(f"{key!r} must be positive")
    return value


def _non_negative(table: dict[str, Any], key: str, default: Any = ...) -> float:
    value = float(_get(table, key, (int, float), default))
    if value < 0:
        raise ConfigError(f"{key!r} must not be negative")
    return value


def _positive_list(table: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> tuple[Any, ...]:
    values = _get(table, key, list)
    if not values or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{key!r} must be a non-empty list")
    if kind is not str and any(v <= 0 for v in values):
        raise ConfigError(f"{key!r} must hold positive numbers")
    return tuple(values)


def _cometbft_overrides(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``[cometbft]`` (top-level config.toml keys) and ``[cometbft.<section>]`` tables, plus [network] shorthands."""
    overrides: dict[str, dict[str, Any]] = {}
    network = _get(doc, "network", dict, {})
    unknown = sorted(set(network) - {"log_level", "mempool_size"})
    if unknown:
        raise ConfigError(f"[network] has unknown keys {unknown} (CometBFT options go in [cometbft.<section>])")
    if "log_level" in network:
        overrides.setdefault("", {})["log_level"] = _get(network, "log_level", str)
    if "mempool_size" in network:
        overrides.setdefault("mempool", {})["size"] = _get(network, "mempool_size", int)
    for key, value in _get(doc, "cometbft", dict, {}).items():
        if isinstance(value, dict):
            for inner, setting in value.items():
                if isinstance(setting, dict | list) or not isinstance(setting, _SCALARS):
                    raise ConfigError(f"cometbft.{key}.{inner} must be a string, number or boolean")
                overrides.setdefault(key, {})[inner] = setting
        elif isinstance(value, _SCALARS):
            overrides.setdefault("", {})[key] = value
        else:
            raise ConfigError(f"cometbft.{key} must be a string, number, boolean or a table")
    return overrides


def _ceiling(doc: dict[str, Any], baseline: bool) -> CeilingSettings | None:
    table = _get(doc, "ceiling", dict, {})
    if not _get(table, "enabled", bool, baseline):
        return None
    if not baseline:
        raise ConfigError("[ceiling] is measured against the kvstore baseline: it needs baseline = true")
    defaults = CeilingSettings()
    try:
        return CeilingSettings(start_rate=_positive(table, "start_rate", defaults.start_rate),
                               max_rate=_positive(table, "max_rate", defaults.max_rate),
                               step_s=_positive(table, "step_s", defaults.step_s))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def load_config(path: Path) -> ExperimentConfig:
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        matrix, load = _get(doc, "matrix", dict), _get(doc, "load", dict)
        baseline = _get(matrix, "baseline", bool, True)
        transport = _get(load, "transport", str, DEFAULT_TRANSPORT)
        if transport not in TRANSPORTS:
            raise ConfigError(f"'transport' must be one of {', '.join(TRANSPORTS)}")
        accounts = _get(load, "accounts", int)
        if not 1 <= accounts <= 9000:
            raise ConfigError("'accounts' must be 1 to 9000")
        return ExperimentConfig(
            name=_get(doc, "name", str, path.stem),
            description=_get(doc, "description", str, ""),
            validators=_positive_list(matrix, "validators", int),
            timeout_commit=_positive_list(matrix, "timeout_commit", str),
            rates=tuple(float(r) for r in _positive_list(matrix, "rates", (int, float))),
            baseline=baseline,
            stop_after_saturation=_get(matrix, "stop_after_saturation", bool, False),
            duration_s=_positive(load, "duration_s"),
            warmup_s=_non_negative(load, "warmup_s", 0),
            accounts=accounts,
            mix=Mix.parse(_get(load, "mix", str, "0:0:1")),
            drain_timeout_s=_non_negative(load, "drain_timeout_s", 30),
            settle_timeout_s=_non_negative(load, "settle_timeout_s", 60),
            seed=_get(load, "seed", int, 1),
            transport=transport,
            connections=int(_positive(load, "connections", DEFAULT_CONNECTIONS)),
            ceiling=_ceiling(doc, baseline),
            cometbft=_cometbft_overrides(doc),
            source=str(path),
        )
    except ValueError as exc:  # ConfigError and MixError
        raise ConfigError(f"{path}: {exc}") from exc


def check_cometbft_settings(config: ExperimentConfig) -> None:
    """Apply the settings to a scratch CometBFT home: an unknown key is a ConfigError before anything starts."""
    with tempfile.TemporaryDirectory(prefix="gridledger-settings-") as scratch:
        home = Path(scratch)
        cometbft.init_home(home)
        try:
            cometbft.configure(home, config.cometbft_settings())
        except KeyError as exc:
            raise ConfigError(f"{config.source}: {exc.args[0]}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{config.source}: a [cometbft] value cannot be written: {exc}") from exc


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
    skipped: str = ""
    """Why the run was not made (e.g. the app saturated at a lower rate)."""
    repetition: int = 0


@dataclass
class ExperimentOutcome:
    config: ExperimentConfig
    directory: Path
    started_unix: float
    runs: list[RunOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    kv_tx_bytes: int = 0
    finished_unix: float = 0.0
    ceilings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per group (``v<N>-tc<T>``, ``-rep<k>`` when repeated): the generator's ceiling against kvstore."""
    applied_settings: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Per group and app: the CometBFT settings as the nodes' config.toml held them."""
    load_average: dict[str, list[float]] = field(default_factory=dict)
    """Host load average (1, 5, 15 min) at ``start`` and ``end``."""


def run_slug(app: str, validators: int, timeout_commit: str, rate: float | None = None, repetition: int = 0) -> str:
    slug = f"{app}-v{validators}-tc{timeout_commit}"
    if rate is not None:
        slug = f"{slug}-r{rate:g}"
    return f"{slug}-rep{repetition + 1}" if repetition else slug


def group_key(validators: int, timeout_commit: str, repetition: int = 0) -> str:
    key = f"v{validators}-tc{timeout_commit}"
    return f"{key}-rep{repetition + 1}" if repetition else key


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _workload(app: str, config: ExperimentConfig, cluster: LocalCluster, accounts: Any, kv_bytes: int,
              tag: str, duration_s: float) -> Workload:
    if app == "kvstore":
        return KvWorkload(kv_bytes, tag)
    market = market_params(cluster.rpc_urls[0]) if config.mix.needs_market else {}
    return LedgerWorkload(cluster.spec.chain_id, config.mix, accounts, seed=config.seed, market_params=market,
                          duration_s=duration_s + config.drain_timeout_s)


def _load_settings(config: ExperimentConfig, nodes: tuple[str, ...], rate: float, duration_s: float,
                   label: str = "") -> LoadSettings:
    return LoadSettings(nodes, rate, duration_s, config.drain_timeout_s, label=label, transport=config.transport,
                        connections=config.connections)


def _run_group(outcome: ExperimentOutcome, app: str, validators: int, timeout_commit: str, repetition: int,
               progress: Progress) -> None:
    """One network: init, start, warm up, one load per rate (up to saturation), the ceiling probe, tear down."""
    from lab.report import write_run

    config = outcome.config
    group = run_slug(app, validators, timeout_commit, repetition=repetition)
    key = group_key(validators, timeout_commit, repetition)
    spec = ClusterSpec(app=app, validators=validators, timeout_commit=timeout_commit,
                       app_state=load_app_state(config.accounts) if app == "gridledger" else None,
                       extra_config=config.cometbft_settings())
    progress(f"[{group}] starting {validators} validator(s)")
    with LocalCluster(spec, outcome.directory / "networks" / group) as cluster:
        outcome.applied_settings.setdefault(key, {})[app] = cluster.applied_settings()
        cluster.wait_ready()
        accounts = load_accounts(config.accounts)
        nodes = tuple(cluster.rpc_urls)
        if config.warmup_s > 0:
            progress(f"[{group}] warm-up: {config.warmup_s:g}s at {config.rates[0]:g} tx/s (not recorded)")
            workload = _workload(app, config, cluster, accounts, outcome.kv_tx_bytes, f"{group}-warmup",
                                 config.warmup_s)
            run_load(_load_settings(config, nodes, config.rates[0], config.warmup_s), workload, accounts)
            cluster.wait_mempools_empty(config.settle_timeout_s)
        saturated_at: float | None = None
        for rate in config.rates:
            slug = run_slug(app, validators, timeout_commit, rate, repetition)
            run = RunOutcome(app, validators, timeout_commit, rate, f"runs/{slug}", repetition=repetition)
            outcome.runs.append(run)
            if saturated_at is not None:
                run.skipped = f"{app} saturated at {saturated_at:g} tx/s offered"
                continue
            try:
                workload = _workload(app, config, cluster, accounts, outcome.kv_tx_bytes, slug, config.duration_s)
                settings = _load_settings(config, nodes, rate, config.duration_s, label=slug)
                progress(f"[{slug}] {config.duration_s:g}s at {rate:g} tx/s")
                load_before = load_average()
                run.result = run_load(settings, workload, accounts)
                if not cluster.alive():
                    run.result.errors.append("a node of the network died during this run")
                run.summary = write_run(run.result, outcome.directory / run.directory)
                run.summary["matrix"] = {"app": app, "validators": validators, "timeout_commit": timeout_commit,
                                         "rate": rate, "repetition": repetition}
                run.summary["load_average"] = {"start": load_before, "end": load_average()}
                progress(f"[{slug}] committed {run.summary['committed']}/{run.summary['sent']}, "
                         f"{(run.summary['committed_tps'] or 0):.1f} tx/s "
                         f"(steady {(run.summary['steady_committed_tps'] or 0):.1f})")
                if run.summary["saturated"] and config.stop_after_saturation:
                    saturated_at = rate
                    continue  # the next rates are skipped, so their backlog need not drain
            except Exception as exc:  # one failed run must not lose the others
                run.error = f"{type(exc).__name__}: {exc}"
                outcome.errors.append(f"{slug}: {run.error}")
                progress(f"[{slug}] failed: {run.error}")
            if not cluster.wait_mempools_empty(config.settle_timeout_s):
                outcome.errors.append(f"{slug}: mempools still held transactions {config.settle_timeout_s:g}s "
                                      "after the run (the next rate started with a backlog)")
        if app == "kvstore" and config.ceiling is not None:
            cluster.wait_mempools_empty(config.settle_timeout_s)
            ceiling = probe_ceiling(nodes, accounts, outcome.kv_tx_bytes, config.ceiling, config.transport,
                                    config.connections, group,
                                    settle=lambda: cluster.wait_mempools_empty(config.settle_timeout_s),
                                    progress=lambda line: progress(f"[{group}] {line}"))
            outcome.ceilings[key] = {**ceiling.as_dict(), "validators": validators, "timeout_commit": timeout_commit,
                                     "repetition": repetition}
    # Keep configs and node logs for inspection; the chain data is only bulk.
    for home in cluster.homes:
        shutil.rmtree(home / "data", ignore_errors=True)


def run_experiment(config: ExperimentConfig, results_root: Path, progress: Progress | None = None,
                   repeat: int | None = None) -> ExperimentOutcome:
    """Run the whole matrix (``repeat`` times) and write the report; never raises for a failed run (it is reported)."""
    from lab.report import write_experiment

    if repeat is not None:
        if repeat < 1:
            raise ConfigError("repeat must be at least 1")
        config = replace(config, repeat=repeat)
    say = progress or (lambda _: None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = results_root / config.name / stamp
    directory.mkdir(parents=True, exist_ok=False)
    outcome = ExperimentOutcome(config, directory, time.time(), load_average={"start": load_average()})
    if config.mix.needs_market and not market_available():
        outcome.errors.append(f"mix {config.mix} needs the market messages, which this build lacks")
    else:
        outcome.kv_tx_bytes = sample_tx_size(config.mix)
        apps = ("gridledger", "kvstore") if config.baseline else ("gridledger",)
        for repetition in range(config.repeat):
            for validators in config.validators:
                for timeout_commit in config.timeout_commit:
                    for app in apps:
                        try:
                            _run_group(outcome, app, validators, timeout_commit, repetition, say)
                        except Exception as exc:
                            group = run_slug(app, validators, timeout_commit, repetition=repetition)
                            outcome.errors.append(f"{group}: network failed: {type(exc).__name__}: {exc}")
                            say(f"[{group}] network failed: {exc}")
                            (directory / f"{group}-traceback.txt").write_text(traceback.format_exc())
    outcome.finished_unix = time.time()
    outcome.load_average["end"] = load_average()
    write_experiment(outcome)
    (directory / "config.json").write_text(json.dumps(config.settings(), indent=2) + "\n")
    return outcome
