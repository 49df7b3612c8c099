"""Experiment presets and settings, the kvstore process guard, and the smoke preset end to end (it proves
the pipeline; it asserts nothing about speed)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from cli.main import app
from lab.cluster import THROUGHPUT_SETTINGS, ClusterSpec, LocalCluster, throughput_settings
from lab.experiment import (
    ConfigError,
    ExperimentOutcome,
    RunOutcome,
    check_cometbft_settings,
    load_config,
)
from lab.load.accounts import load_app_state
from lab.load.generator import LoadResult, LoadSettings, TxRecord
from lab.load.stats import summarize
from lab.report import PLOT_FILES, write_experiment
from node import parent_death_exec
from tests.localnode import LocalNode

PRESETS = Path(__file__).resolve().parents[1] / "config" / "experiments"
PRESET_NAMES = ["smoke", "latency-study", "saturation"]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_presets_parse(name: str) -> None:
    config = load_config(PRESETS / f"{name}.toml")
    assert config.name == name
    assert config.validators and config.rates and config.timeout_commit
    assert config.baseline and config.ceiling is not None


def test_saturation_preset_is_the_issue_setup() -> None:
    config = load_config(PRESETS / "saturation.toml")
    assert config.validators == (4,) and config.timeout_commit == ("200ms",)
    assert list(config.rates) == sorted(config.rates) and len(config.rates) >= 4
    assert 200 in config.rates and config.stop_after_saturation
    assert config.transport == "ws" and config.seed == 1
    # the ramp must reach far beyond what kvstore commits on 2 cores (about 2 000 tx/s)
    assert config.rates[-1] >= 3000 and config.ceiling is not None and config.ceiling.max_rate >= 4000


def test_cometbft_overrides_merge_on_the_throughput_settings(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [1]\n"
                    "[load]\nduration_s = 1\naccounts = 2\n[network]\nmempool_size = 7000\n"
                    "[cometbft]\nlog_level = 'info'\n[cometbft.consensus]\npeer_gossip_sleep_duration = '10ms'\n")
    config = load_config(path)
    chosen = config.cometbft_settings()
    assert chosen["mempool"]["size"] == 7000 and chosen[""]["log_level"] == "info"
    assert chosen["consensus"]["peer_gossip_sleep_duration"] == "10ms"
    assert chosen["tx_index"]["indexer"] == "null"  # the defaults stay
    listed = config.settings()["cometbft"]
    assert listed["mempool.size"] == 7000 and listed["log_level"] == "info"
    assert set(listed) >= {setting.name for setting in THROUGHPUT_SETTINGS}


def test_latency_study_covers_the_issue_matrix() -> None:
    config = load_config(PRESETS / "latency-study.toml")
    assert set(config.validators) == {1, 4, 7}
    assert len(config.timeout_commit) >= 2 and len(config.rates) >= 2


@pytest.mark.parametrize("text, message", [
    ("name = 'x'\n[load]\nduration_s = 1\naccounts = 2\n", "matrix"),
    ("[matrix]\nvalidators = []\ntimeout_commit = ['1s']\nrates = [1]\n[load]\nduration_s = 1\naccounts = 2\n",
     "validators"),
    ("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [0]\n[load]\nduration_s = 1\naccounts = 2\n",
     "rates"),
    ("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [1]\n[load]\nduration_s = 1\naccounts = 2\n"
     "mix = '1:2'\n", "mix"),
    ("[matrix\n", "toml"),
    ("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [1]\n[load]\nduration_s = 1\naccounts = 2\n"
     "transport = 'carrier-pigeon'\n", "transport"),
    ("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [1]\n[load]\nduration_s = 1\naccounts = 2\n"
     "[cometbft.mempool]\nsize = [1]\n", "cometbft"),
    ("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [1]\nbaseline = false\n[load]\n"
     "duration_s = 1\naccounts = 2\n[ceiling]\nenabled = true\n", "ceiling"),
    ("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [1]\n[load]\nduration_s = 1\naccounts = 2\n"
     "[network]\nmempool = 3\n", "network"),
])
def test_invalid_config_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert not (tmp_path / "r").exists()


def test_invalid_unknown_cometbft_setting(tmp_path: Path, tools_bin: Path) -> None:
    """A key config.toml lacks is refused before any network starts (exit 2, nothing written)."""
    path = tmp_path / "bad.toml"
    path.write_text("[matrix]\nvalidators = [1]\ntimeout_commit = ['1s']\nrates = [1]\n[load]\nduration_s = 1\n"
                    "accounts = 2\n[cometbft.mempool]\nsizzle = 3\n")
    with pytest.raises(ConfigError, match=r"mempool\.sizzle"):
        check_cometbft_settings(load_config(path))
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2 and "sizzle" in result.output
    assert not (tmp_path / "r").exists()


def test_settings_are_applied_identically_to_both_chains(tmp_path: Path, tools_bin: Path) -> None:
    """Both applications' nodes hold every chosen setting; only what makes them different apps differs."""
    chosen = throughput_settings({"mempool": {"size": 1234}})
    applied = {}
    for app_name in ("gridledger", "kvstore"):
        spec = ClusterSpec(app=app_name, validators=2, timeout_commit="300ms", extra_config=chosen,
                           app_state=load_app_state(2) if app_name == "gridledger" else None)
        cluster = LocalCluster(spec, tmp_path / app_name)
        cluster.init()
        applied[app_name] = cluster.applied_settings()
        config = cluster.homes[1].joinpath("config", "config.toml").read_text()
        assert 'timeout_commit = "300ms"' in config
    assert applied["gridledger"] == applied["kvstore"]
    expected = {(f"{section}.{key}" if section else key): value
                for section, values in chosen.items() for key, value in values.items()}
    assert applied["kvstore"] == dict(sorted(expected.items()))
    assert applied["kvstore"]["mempool.size"] == 1234


def _outcome(tmp_path: Path, applied: dict[str, dict[str, object]]) -> ExperimentOutcome:
    config = load_config(PRESETS / "saturation.toml")
    outcome = ExperimentOutcome(config, tmp_path, 0.0, finished_unix=60.0,
                                load_average={"start": [0.5, 0.4, 0.3], "end": [1.5, 1.0, 0.5]})
    outcome.applied_settings = {"v4-tc200ms": applied}
    for app_name, committed in (("gridledger", 40), ("kvstore", 90)):
        records = [TxRecord(seq=i, kind="kv", account=0, nonce=0, node="n", size=10, tx_hash="", scheduled_s=i / 100,
                            submit_s=i / 100, check_code=0, commit_height=2, commit_seen_s=i / 100 + 0.3,
                            result_code=0) for i in range(committed)]
        result = LoadResult(LoadSettings(("http://127.0.0.1:1",), 100, 1.0), app_name, 0.0, records, [], 1.0, True)
        run = RunOutcome(app_name, 4, "200ms", 100.0, f"runs/{app_name}", summary=summarize(result), result=result)
        outcome.runs.append(run)
    outcome.ceilings = {"v4-tc200ms": {"validators": 4, "timeout_commit": "200ms", "repetition": 0,
                                       "ceiling_tps": 2500.0, "held_tps": 2000.0, "limit": "nodes", "error": "",
                                       "steps": [{"offered_tps": 2000.0, "accepted_tps": 2000.0,
                                                  "behind_share": 0.0, "generator_cpu_share": 0.3}]}}
    return outcome


def test_report_lists_the_settings_seed_load_and_ceiling(tmp_path: Path) -> None:
    values = {setting.name: setting.value for setting in THROUGHPUT_SETTINGS}
    report = write_experiment(_outcome(tmp_path, {"gridledger": values, "kvstore": values})).read_text()
    assert "## CometBFT settings" in report
    for setting in THROUGHPUT_SETTINGS:
        assert f"| `{setting.name}` | `{json.dumps(setting.value)}` |" in report
    assert "workload seed 1" in report and "0.50/0.40/0.30 at the start" in report
    assert "work tree modified:" in report
    assert "## Generator ceiling (against kvstore)" in report and "| v4-tc200ms | 2000 | 2500 | nodes |" in report
    assert "the chain, not the generator, was the limit" in report
    assert "## Saturation" in report and "differen" not in report
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cometbft_applied"]["v4-tc200ms"]["kvstore"] == values
    assert summary["generator_ceiling"]["v4-tc200ms"]["ceiling_tps"] == 2500.0


def test_invalid_report_flags_settings_that_differ(tmp_path: Path) -> None:
    values = {setting.name: setting.value for setting in THROUGHPUT_SETTINGS}
    report = write_experiment(_outcome(tmp_path, {"gridledger": values,
                                                  "kvstore": {**values, "mempool.size": 1}})).read_text()
    assert "error(s)" in report and "ran with different CometBFT settings" in report


_ORPHAN_PARENT = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from node import parent_death_exec
import os
child = subprocess.Popen(parent_death_exec.command(os.getpid(), ["/bin/sleep", "60"]), start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_kvstore_child_dies_with_a_killed_parent() -> None:
    """The exec helper (no preexec_fn) arms PR_SET_PDEATHSIG: SIGKILL the parent and its child ends too."""
    root = str(Path(__file__).resolve().parents[1])
    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_PARENT, root], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 10
    while child.cmdline()[:1] != ["/bin/sleep"]:  # the helper has exec'd: same pid, new program
        assert time.monotonic() < deadline, child.cmdline()
        time.sleep(0.01)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    gone, alive = psutil.wait_procs([child], timeout=10)
    for straggler in alive:
        straggler.kill()
    assert gone and not alive


def test_invalid_exec_helper_usage_and_dead_parent() -> None:
    assert parent_death_exec.main(["x"]) == 2
    assert parent_death_exec.main(["1", "-", "/bin/true"]) == 2
    helper = parent_death_exec.command(os.getpid() + 10**6, ["/bin/true"])  # a pid that is not our parent
    assert subprocess.run(helper, check=False).returncode == 126
    assert subprocess.run(parent_death_exec.command(os.getpid(), ["/nonexistent/x"]), check=False,
                          capture_output=True).returncode == 127


def test_basic_exec_helper_finds_a_program_on_path() -> None:
    """Like subprocess: the fault suite starts `ip netns exec ...` through the helper."""
    done = subprocess.run(parent_death_exec.command(os.getpid(), ["true"]), check=False, capture_output=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_smoke_preset_writes_report_and_plots(tmp_path: Path, tools_bin: Path) -> None:
    result = CliRunner().invoke(app, ["experiment", "run", str(PRESETS / "smoke.toml"), "--results", str(tmp_path),
                                      "--output", "json"])
    assert result.exit_code in (0, 3), result.output  # 3: the report lists errors (still a complete report)
    (run_dir,) = (tmp_path / "smoke").iterdir()
    report = (run_dir / "report.md").read_text()
    assert report.startswith("# Experiment `smoke`")
    assert "cpu_count" in report and "cometbft_pinned" in report
    summary = json.loads((run_dir / "summary.json").read_text())
    config = load_config(PRESETS / "smoke.toml")
    assert len(summary["runs"]) == len(config.validators) * len(config.timeout_commit) * len(config.rates) * 2
    assert {r["app"] for r in summary["runs"]} == {"gridledger", "kvstore"}
    assert (run_dir / "plots" / "overview.png").read_bytes().startswith(b"\x89PNG")
    assert set(summary["generator_ceiling"]) == {"v1-tc200ms", "v2-tc200ms"}
    for ceiling in summary["generator_ceiling"].values():
        assert ceiling["steps"] and ceiling["ceiling_tps"] > 0, ceiling
    for group in summary["cometbft_applied"].values():
        assert group["gridledger"] == group["kvstore"]
    assert "## CometBFT settings" in report and "## Generator ceiling" in report
    for run in summary["runs"]:
        assert run["summary"] is not None, run["error"]
        directory = run_dir / run["directory"]
        with (directory / "txs.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == run["summary"]["planned"] > 0
        assert json.loads((directory / "summary.json").read_text())["latency_s"]["n"] == run["summary"]["committed"]
        for name in PLOT_FILES.values():
            assert (directory / name).read_bytes().startswith(b"\x89PNG")
        assert run["directory"] in report
    assert json.loads(result.stdout)[0]["app"] == "gridledger"


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_bench_load_against_a_running_node(tmp_path: Path, tools_bin: Path) -> None:
    """`bench load` reads the accounts' nonces from the chain, sends, and sees every accepted tx committed."""
    with LocalNode(tmp_path / "node", load_app_state(8), chain_id="bench-e2e") as node:
        node.rpc.wait_height(1)
        args = ["bench", "load", "--nodes", node.ports.rpc_url, "--rate", "10", "--duration", "2", "--accounts", "8",
                "--mix", "6:2:2", "--out", str(tmp_path / "out"), "--output", "json"]
        first = CliRunner().invoke(app, args)
        assert first.exit_code == 0, first.output
        figures = json.loads(first.stdout)
        assert figures["sent"] == 20 and figures["errors"] == []
        assert figures["committed"] == figures["accepted"] == 20, figures["rejections"]
        # A second run continues from the nonces on chain instead of reusing them.
        second = CliRunner().invoke(app, [*args[:-4], "--out", str(tmp_path / "again"), "--output", "json"])
        assert second.exit_code == 0, second.output
        assert json.loads(second.stdout)["committed"] == 20
        # ... and its cancels name the open orders it read from the chain (pre-signed, so not its own)
        with (tmp_path / "again" / "txs.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert any(row["kind"] == "cancel" for row in rows)
        assert all(row["result_code"] == "0" for row in rows)
        unknown = CliRunner().invoke(app, [*args[:-4], "--account-label", "nobody", "--out", str(tmp_path / "x")])
        assert unknown.exit_code == 2 and "not on this chain" in unknown.output


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_bench_ceiling_against_kvstore(tmp_path: Path, tools_bin: Path) -> None:
    """`bench ceiling` ramps against a kvstore node and reports every step; a dead node is exit code 3."""
    spec = ClusterSpec(app="kvstore", validators=1, timeout_commit="200ms")
    with LocalCluster(spec, tmp_path / "kv") as cluster:
        cluster.wait_ready()
        result = CliRunner().invoke(app, ["bench", "ceiling", "--nodes", cluster.rpc_urls[0], "--start-rate", "50",
                                          "--max-rate", "100", "--step", "1", "--accounts", "20", "--output", "json"])
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)
    # Whether this machine holds 100 tx/s is a measurement, not a test: only the report's shape and
    # consistency are asserted here (the ramp's rules are tested with a scripted load in test_loadgen).
    assert [step["offered_tps"] for step in steps] in ([50], [50, 100]), steps
    assert all(step["sent"] == step["offered_tps"] and step["refused"] == 0 for step in steps), steps
    assert all(step["accepted"] + step["errors"] == step["sent"] for step in steps), steps
    held = [step["held"] for step in steps]
    assert held in ([True, True], [False], [True, False]), steps
    ended_by = {step["ended_by"] for step in steps}
    assert ended_by == {"max_rate"} if all(held) else ended_by in ({"nodes"}, {"generator"}), steps
    dead = CliRunner().invoke(app, ["bench", "ceiling", "--nodes", cluster.rpc_urls[0]])
    assert dead.exit_code == 3


def test_docs_list_the_throughput_settings() -> None:
    """docs/experiments.md's settings table is exactly THROUGHPUT_SETTINGS, in order, with the same values."""
    text = (PRESETS.parents[1] / "docs" / "experiments.md").read_text()
    section = text.split("### CometBFT settings for throughput experiments", 1)[1].split("###", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    documented = [(cells[0].strip().strip("`"), cells[1].strip().strip("`")) for cells in rows]
    assert documented == [(s.name, json.dumps(s.value)) for s in THROUGHPUT_SETTINGS]


def test_repeated_runs_report_medians_with_spread(tmp_path: Path) -> None:
    from dataclasses import replace

    outcome = _outcome(tmp_path, {})
    outcome.config = replace(outcome.config, repeat=2)
    for run in list(outcome.runs):
        assert run.summary is not None
        again = replace(run, repetition=1, summary={**run.summary, "steady_committed_tps": 60.0})
        outcome.runs.append(again)
    report = write_experiment(outcome).read_text()
    assert "## Medians over 2 repetitions" in report
    medians = report.split("## Medians over 2 repetitions", 1)[1].split("##", 1)[0]
    gridledger = next(line for line in medians.splitlines() if line.startswith("| 4 | 200ms | 100 | gridledger | 2 |"))
    first = outcome.runs[0].summary["steady_committed_tps"]  # type: ignore[index]
    assert f"{(first + 60) / 2:.1f} ({min(first, 60):.1f}-{max(first, 60):.1f})" in gridledger
