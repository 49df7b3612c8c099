"""Experiment presets, and the smoke preset end to end (it proves the pipeline; it asserts nothing about speed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.experiment import ConfigError, load_config
from node.loadgen_accounts import load_app_state
from node.report import PLOT_FILES
from tests.localnode import LocalNode

PRESETS = Path(__file__).resolve().parents[1] / "config" / "experiments"


@pytest.mark.parametrize("name", ["smoke", "latency-study"])
def test_presets_parse(name: str) -> None:
    config = load_config(PRESETS / f"{name}.toml")
    assert config.name == name
    assert config.validators and config.rates and config.timeout_commit
    assert config.baseline


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
])
def test_invalid_config_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert not (tmp_path / "r").exists()


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
        unknown = CliRunner().invoke(app, [*args[:-4], "--account-label", "nobody", "--out", str(tmp_path / "x")])
        assert unknown.exit_code == 2 and "not on this chain" in unknown.output
