"""`gridledger bench chain` starts the chain `bench load` expects: load it, then Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

pytestmark = pytest.mark.e2e


def test_basic_bench_load_against_bench_chain(tmp_path: Path) -> None:
    state = tmp_path / "app_state.json"
    result = CliRunner().invoke(app, ["bench", "app-state", "--accounts", "4"])
    assert result.exit_code == 0
    state.write_text(result.stdout)
    chain = subprocess.Popen([sys.executable, "-m", "cli.main", "bench", "chain", "--app-state", str(state),
                              "--timeout-commit", "200ms", "--dir", str(tmp_path / "chain")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert chain.stdout is not None
        urls = chain.stdout.readline().strip()  # printed once every node committed block 2
        assert urls.startswith("http://127.0.0.1:"), chain.stderr.read() if chain.stderr else ""
        load = CliRunner().invoke(app, ["bench", "load", "--nodes", urls, "--rate", "4", "--duration", "2",
                                        "--accounts", "4", "--out", str(tmp_path / "load"), "-o", "json"])
        assert load.exit_code == 0, load.output
        figures = json.loads(load.stdout)
        assert figures["committed"] == figures["sent"] >= 6
    finally:
        chain.send_signal(signal.SIGINT)
        try:
            chain.wait(timeout=60)
        except subprocess.TimeoutExpired:
            chain.kill()
            chain.wait()
    assert chain.returncode == 0, chain.stderr.read() if chain.stderr else ""


def test_invalid_bench_chain_without_app_state(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "chain", "--dir", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--app-state" in result.stderr
    (tmp_path / "bad.json").write_text("[1]")
    result = CliRunner().invoke(app, ["bench", "chain", "--app-state", str(tmp_path / "bad.json")])
    assert result.exit_code == 2 and "JSON object" in result.stderr
