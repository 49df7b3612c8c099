"""`gridledger p2p ...` end to end: two listener processes on loopback, short-lived commands via control sockets."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.client.keystore import FAST_ENV, Keystore
from node.p2p import messages
from node.p2p.messages import AcceptOfferBody
from tests.p2p_harness import GRIDLEDGER, Listener
from tests.p2p_harness import eventually as poll

CHAIN = "cli-p2p"
ZONE = "zone-a"
DEADLINE_S = 20.0
LISTEN_ARGS = ("--zone", ZONE, "--chain-id", CHAIN)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    keyring = tmp_path / "keys"
    monkeypatch.setenv(FAST_ENV, "1")
    monkeypatch.setenv("GRIDLEDGER_KEYRING_DIR", str(keyring))
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", "pw")
    store = Keystore(keyring)
    for name in ("alice", "bob"):
        store.generate(name, "pw")
    return {**os.environ}


@pytest.fixture
def listeners(tmp_path: Path, env: dict[str, str]) -> Iterator[list[Listener]]:
    started: list[Listener] = []
    try:
        first = Listener(tmp_path / "h1", env, *LISTEN_ARGS)
        started.append(first)
        started.append(Listener(tmp_path / "h2", env, *LISTEN_ARGS, "--bootstrap", first.addr))
        yield started
    finally:
        codes = [listener.stop() for listener in started]
        assert codes == [0] * len(started)
        assert not any((listener.home / "control.sock").exists() for listener in started)


def eventually(check: Callable[[], Any]) -> Any:
    return poll(check, DEADLINE_S)


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


def cli_json(*args: str) -> Any:
    result = cli(*args, "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def offer_args(home: Path, key: str = "alice", *extra: str) -> list[str]:
    return ["p2p", "offer", "--home", str(home), "--side", "ask", "--qty", "2kWh", "--price", "0.11EUR/kWh",
            "--slot", "2026-01-01T10:15Z", "--valid-until", "+15m", "--origin", "solar", "--from", key, *extra]


def test_offer_listed_by_another_host_then_accepted_and_watched(listeners: list[Listener], tmp_path: Path,
                                                                 env: dict[str, str]) -> None:
    h1, h2 = (listener.home for listener in listeners)
    topic = f"gridledger/{CHAIN}/offers/{ZONE}"
    eventually(lambda: cli_json("p2p", "status", "--home", str(h1))["mesh"][topic] >= 1)

    published = cli_json(*offer_args(h1))
    listed = eventually(lambda: cli_json("p2p", "offers", "--home", str(h2))["offers"])
    assert [entry["offer_id"] for entry in listed] == [published["offer_id"]]
    assert (listed[0]["quantity_wh"], listed[0]["price"], listed[0]["origin"], listed[0]["slot"]) == (
        2000, 110_000, "solar", 1767262500)
    table = cli("p2p", "offers", "--home", str(h2))
    assert "0.110000 EUR/kWh" in table.stdout and "bad_signature" in table.stdout

    # bob co-signs; the acceptance object verifies against the cached offer.
    acceptance_file = tmp_path / "accept.json"
    result = cli("p2p", "accept", published["offer_id"], "--from", "bob", "--qty", "1.5kWh", "--home", str(h2),
                 "--out", str(acceptance_file))
    assert result.exit_code == 0, result.output
    document = json.loads(acceptance_file.read_text())
    body = messages.decode_as(AcceptOfferBody, base64.b64decode(document["accept_offer_body_b64"]))
    messages.check_accept_offer(body, CHAIN, int(time.time()))
    assert body.acceptance.body.quantity_wh == 1500

    refused = cli("p2p", "accept", published["offer_id"], "--from", "alice", "--home", str(h2), "--out",
                  str(tmp_path / "own.json"))
    assert refused.exit_code == 2 and "own offer" in refused.stderr
    # Submitting it on chain is tests/test_p2p_accept_e2e.py (this test runs no node).

    # A watcher on host 2 sees the next offer live.
    watcher = subprocess.Popen([*GRIDLEDGER, "p2p", "watch", "--home", str(h2), "--offers", "--count", "1",
                                "--idle-timeout", str(DEADLINE_S), "--output", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        eventually(lambda: cli_json("p2p", "status", "--home", str(h2))["watchers"] == 1)
        second = cli_json(*offer_args(h1, "bob"))
        out, err = watcher.communicate(timeout=DEADLINE_S)
    finally:
        watcher.kill()
        watcher.wait()
    assert watcher.returncode == 0, err
    event = json.loads(out)
    assert (event["kind"], event["offer_id"]) == ("offer", second["offer_id"])


def test_user_errors_exit_2_without_tracebacks(listeners: list[Listener], tmp_path: Path) -> None:
    h1 = listeners[0].home
    for args in (
        offer_args(h1, "alice", "--zone", "zone b"),
        [value if value != "0.11EUR/kWh" else "cheap" for value in offer_args(h1)],
        ["p2p", "offers", "--home", str(tmp_path / "nobody")],
        ["p2p", "accept", "ab" * 32, "--from", "bob", "--home", str(h1)],
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and result.stderr.startswith("error:"), result.stderr
