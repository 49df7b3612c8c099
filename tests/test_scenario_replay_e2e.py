"""A day replayed in minutes on a real chain, exactly as docs/scenarios.md says to.

`testnet init --roster config/replay-4.toml --validator dso-north` (a single-node chain with the roster's
four operators, 10 s slots standing for hours), `testnet up`, then `scenario run
config/scenarios/day-hourly.csv` with the roster's keyring: no genesis edits, no votes, no offline signing.
The run takes about five minutes of real time (a margin of three slots, 24 slots of 10 s, the 60 s
settlement window); the balances are the hand-checked ones of
tests/test_scenario.py::test_the_day_on_the_replay_roster_ends_with_the_hand_checked_changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from lab import testnet as tn
from lab.ports import free_base_port
from node import cometbft

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROSTER = cometbft.REPO_ROOT / "config" / "replay-4.toml"
DAY = cometbft.REPO_ROOT / "config" / "scenarios" / "day-hourly.csv"


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture()
def replay_chain(tmp_path: Path) -> Iterator[tn.Testnet]:
    out = tmp_path / "replay"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        patch.setenv("GRIDLEDGER_PASSPHRASE", tn.TESTNET_PASSPHRASE)
        cli("testnet", "init", "--roster", str(ROSTER), "--out", str(out), "--validator", "dso-north",
            "--base-port", str(free_base_port(1)), "--no-p2p")
        cli("testnet", "up", "--dir", str(out))
        try:
            yield tn.load_testnet(out)
        finally:
            cli("testnet", "down", "--dir", str(out))


def test_the_shipped_day_replays_in_minutes_on_a_single_node(replay_chain: tn.Testnet) -> None:
    (node,) = replay_chain.nodes
    assert node.moniker == "dso-north"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["scenario", "run", str(DAY), "--relayer", "dso-north", "--node", node.rpc_url,
                                      "--keyring-dir", str(replay_chain.keyring), "--output", "json"],
                                env={"GRIDLEDGER_PASSPHRASE": tn.TESTNET_PASSPHRASE, "GRIDLEDGER_KDF_FAST": "1"})
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    print(f"the day of 24 hourly slots replayed in {elapsed:.0f} s")  # a figure for the docs, not a test
    rows = {row["participant"]: row for row in json.loads(result.stdout)}
    assert {name: row["change"] for name, row in rows.items()} == {
        "alice": 5_800_000, "bob": -3_335_000, "dave": -3_995_000}
    assert {name: (row["sold_wh"], row["bought_wh"], row["exported_wh"], row["imported_wh"])
            for name, row in rows.items()} == {
        "alice": (32_000, 0, 31_000, 0), "bob": (0, 16_000, 0, 15_500), "dave": (0, 16_000, 0, 16_500)}
    assert {row["slots_settled"] for row in rows.values()} == {24}
    assert all((row["locked"], row["debt"]) == (0, 0) for row in rows.values())
