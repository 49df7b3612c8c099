"""The CLI against a real single-node chain: keys, transactions, queries, and every error class."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.client.keystore import Keystore
from tests.conftest import free_port
from tests.harness import Chain
from tests.localnode import LocalNode

pytestmark = pytest.mark.e2e
PASSPHRASE = "correct horse"


@pytest.fixture(scope="module")
def chain_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNode, Path, Chain]]:
    base = tmp_path_factory.mktemp("cli")
    chain = Chain(chain_id="e2e-chain")
    assert chain.app_state is not None
    keyring = base / "keyring"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        for name in ("dso", "lpd", "alice", "bob"):
            Keystore(keyring).add(name, PASSPHRASE, chain.keys[name])
    node = LocalNode(base / "node", chain.app_state)
    with node:
        node.rpc.wait_height(1)
        yield node, keyring, chain


@pytest.fixture
def cli(chain_node: tuple[LocalNode, Path, Chain], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    node, keyring, _ = chain_node
    monkeypatch.setenv("GRIDLEDGER_KEYRING_DIR", str(keyring))
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("GRIDLEDGER_NODE", node.ports.rpc_url)
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.output
    return result.stdout if code in (0, 1) else result.stderr


def run_json(cli: CliRunner, *args: str) -> dict[str, object]:
    value: dict[str, object] = json.loads(run(cli, *args, "--output", "json"))
    return value


def test_basic_session(cli: CliRunner) -> None:
    run(cli, "keys", "add", "carol")
    registered = run_json(cli, "tx", "participant", "register", "carol", "--role", "consumer", "--zone", "zone-a",
                          "--from", "dso", "--wait")
    assert registered["code"] == 0
    assert any(e["type"] == "account.registered" for e in registered["events"])  # type: ignore[attr-defined]
    assert run_json(cli, "tx", "deposit", "carol", "25EUR", "--reference", "sepa-1", "--from", "lpd",
                    "--wait")["code"] == 0
    account = run_json(cli, "query", "account", "carol")
    assert account["balance"] == 25_000_000
    assert account["balance_fmt"] == "25.000000 EUR"
    assert account["role"] == "consumer"

    # Two transactions back to back: the second takes its nonce from the node's mempool view.
    first = run_json(cli, "tx", "transfer", "bob", "1.5EUR", "--from", "carol")
    second = run_json(cli, "tx", "transfer", "bob", "0.25EUR", "--from", "carol", "--wait")
    assert first["check_code"] == 0 and second["code"] == 0
    assert run_json(cli, "query", "account", "carol")["balance"] == 25_000_000 - 1_750_000

    table = run(cli, "query", "account", "carol")
    assert "balance_fmt" in table and "23.250000 EUR" in table


def test_sign_offline_then_broadcast(cli: CliRunner, chain_node: tuple[LocalNode, Path, Chain],
                                     tmp_path: Path) -> None:
    nonce = run_json(cli, "query", "account", "alice")["nonce"]
    assert isinstance(nonce, int)
    signed = tmp_path / "tx.json"
    dry = run_json(cli, "tx", "transfer", "bob", "2EUR", "--from", "alice", "--dry-run", "--chain-id", "e2e-chain",
                   "--nonce", str(nonce + 1))
    assert dry["body"] == {"recipient": chain_node[2].id("bob"), "amount": 2_000_000, "memo": ""}
    run(cli, "tx", "transfer", "bob", "2EUR", "--from", "alice", "--sign-only", "--out", str(signed),
        "--chain-id", "e2e-chain", "--nonce", str(nonce + 1))
    sent = run_json(cli, "tx", "broadcast", str(signed), "--wait")
    assert sent["code"] == 0 and sent["hash"] == dry["hash"]


def test_queries_parse(cli: CliRunner) -> None:
    operators = json.loads(run(cli, "query", "operators", "-o", "json"))
    assert sorted(op["name"] for op in operators) == ["dso-a", "dso-b", "lpd-a", "lpd-b"]
    assert run_json(cli, "query", "params")["currency"] == "EUR"
    assert len(json.loads(run(cli, "query", "validators", "-o", "json"))) == 1
    assert run_json(cli, "query", "supply")["total"] >= 30_000_000  # type: ignore[operator]


def test_invalid_node_down(cli: CliRunner) -> None:
    message = run(cli, "query", "params", "--node", f"http://127.0.0.1:{free_port()}", code=3)
    assert "unreachable" in message


def test_invalid_wrong_passphrase(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", "wrong")
    assert "passphrase" in run(cli, "tx", "transfer", "bob", "1EUR", "--from", "alice", code=2)


def test_invalid_unknown_key(cli: CliRunner) -> None:
    assert "nobody" in run(cli, "tx", "transfer", "bob", "1EUR", "--from", "nobody", code=2)


def test_invalid_bad_unit(cli: CliRunner) -> None:
    assert "more precise" in run(cli, "tx", "transfer", "bob", "0.0000001EUR", "--from", "alice", code=2)
    assert "settles in EUR" in run(cli, "tx", "transfer", "bob", "1USD", "--from", "alice", code=2)


def test_invalid_rejected_tx(cli: CliRunner) -> None:
    rejected = json.loads(run(cli, "tx", "transfer", "bob", "1000000EUR", "--from", "alice", "-o", "json", code=1))
    assert rejected["check_code"] == 22 and "free" in rejected["check_log"]


def test_basic_broadcast_twice_many_and_json_lines(cli: CliRunner, tmp_path: Path) -> None:
    nonce = run_json(cli, "query", "account", "bob")["nonce"]
    assert isinstance(nonce, int)
    files = []
    for step in (1, 2, 3):
        files.append(tmp_path / f"tx{step}.json")
        run(cli, "tx", "transfer", "alice", f"0.0{step}EUR", "--from", "bob", "--sign-only", "--out",
            str(files[-1]), "--chain-id", "e2e-chain", "--nonce", str(nonce + step))
    first = run_json(cli, "tx", "broadcast", str(files[0]))
    again = run_json(cli, "tx", "broadcast", str(files[0]))  # CometBFT's mempool cache knows its bytes
    assert first["code"] == 0 and again["code"] == 0
    assert again["log"] == f"already submitted (hash {first['hash']})"
    # The other two as one JSON-lines stream on stdin: all sent, then both commits awaited.
    lines = "".join(json.dumps(json.loads(f.read_text())) + "\n" for f in files[1:])
    result = cli.invoke(app, ["tx", "broadcast", "-", "--wait", "-o", "json"], input=lines)
    assert result.exit_code == 0, result.output
    assert [r["code"] for r in json.loads(result.stdout)] == [0, 0]
    assert run_json(cli, "query", "account", "bob")["nonce"] == nonce + 3


def test_basic_query_tx_block_txs_and_names(cli: CliRunner, chain_node: tuple[LocalNode, Path, Chain]) -> None:
    sent = run_json(cli, "tx", "transfer", "dso-a", "0.01EUR", "--from", "alice", "--wait")  # an operator's name
    assert sent["code"] == 0
    found = run_json(cli, "query", "tx", str(sent["hash"]))
    assert found["type"] == "transfer" and found["height"] == sent["height"] and found["code"] == 0
    assert found["body"]["recipient"] == chain_node[2].id("dso")  # type: ignore[index]
    block = run_json(cli, "query", "block", str(sent["height"]))
    assert sent["hash"] in [t["hash"] for t in block["txs"]]  # type: ignore[union-attr]
    assert [t["signer_name"] for t in block["txs"] if t["hash"] == sent["hash"]] == ["alice"]  # type: ignore
    searched = json.loads(run(cli, "query", "txs", "--events", f"tx.height={sent['height']}", "-o", "json"))
    assert sent["hash"] in [t["hash"] for t in searched]
    validators = json.loads(run(cli, "query", "validators", "-o", "json"))
    assert {"name", "role", "address", "pub_key", "voting_power"} <= set(validators[0])
    assert run_json(cli, "status")["network"] == "e2e-chain"


def test_invalid_a_meter_key_cannot_sign_transactions(cli: CliRunner, chain_node: tuple[LocalNode, Path, Chain],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, keyring, _ = chain_node
    if not Keystore(keyring).exists("m-cli"):
        run(cli, "keys", "add", "m-cli", "--kind", "meter")
    message = run(cli, "tx", "transfer", "bob", "1EUR", "--from", "m-cli", code=2)
    assert "is a meter key" in message


def test_invalid_unknown_name_names_the_lists(cli: CliRunner) -> None:
    message = run(cli, "tx", "transfer", "nobody-known", "1EUR", "--from", "alice", code=2)
    assert "nor an operator of the chain" in message


def test_invalid_order_inputs_exit_2_before_signing(cli: CliRunner) -> None:
    message = run(cli, "tx", "order", "place", "--side", "bid", "--qty", "1kWh", "--price", "0.27EUR/MWh",
                  "--slot", "next", "--from", "bob", code=2)
    assert "not on the tick" in message
    assert "is not a slot start" in run(cli, "tx", "order", "place", "--side", "bid", "--qty", "1kWh", "--price",
                                        "0.27EUR/kWh", "--slot", "2030-01-01T00:07Z", "--from", "bob", code=2)


def test_basic_offline_currency(cli: CliRunner) -> None:
    dry = run_json(cli, "tx", "transfer", "bob", "2TOK", "--from", "alice", "--dry-run", "--chain-id", "cali-4",
                   "--nonce", "1", "--currency", "TOK:6")
    assert dry["body"]["amount"] == 2_000_000  # type: ignore[index]
    assert "--currency" in run(cli, "tx", "transfer", "bob", "2TOK", "--from", "alice", "--dry-run", "--chain-id",
                               "c", "--nonce", "1", "--currency", "T0K", code=2)
