"""`gridledger node init` and `node status` without a running chain (cometbft init runs, nothing starts)."""

from __future__ import annotations

import base64
import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abci_app.app import LedgerApplication
from abci_app.ledger.crypto import account_id
from abci_app.ledger.store import MemoryBackend
from abci_app.pb.tendermint.abci import types_pb2 as abci
from cli.main import app
from node import cometbft
from node.client.keystore import Keystore
from tests.conftest import free_port


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", "operator secret")
    monkeypatch.setenv("GRIDLEDGER_KEYRING_DIR", str(tmp_path / "keyring"))
    return CliRunner()


def invoke(cli: CliRunner, *args: str, code: int = 0) -> Any:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.output
    return json.loads(result.stdout) if code == 0 and "json" in args else result


def init_json(cli: CliRunner, home: Path, *extra: str) -> dict[str, Any]:
    value: dict[str, Any] = invoke(cli, "node", "init", "--home", str(home), "--output", "json", *extra)
    return value


def test_basic_new_chain(cli: CliRunner, tmp_path: Path, tools_bin: Path) -> None:
    home = tmp_path / "dso"
    out = init_json(cli, home, "--moniker", "dso-east", "--role", "dso", "--zones", "east-2,east-1",
                    "--chain-id", "utility-net", "--base-port", "40000", "--power", "7")
    key = json.loads((home / "config" / "priv_validator_key.json").read_text())
    shown = subprocess.run([str(tools_bin / "cometbft"), "show-node-id", "--home", str(home)],
                           capture_output=True, text=True, check=True).stdout.strip()
    stored = Keystore(tmp_path / "keyring").show("dso-east")
    assert out["node_id"] == shown
    assert out["consensus_pubkey"] == key["pub_key"]["value"]
    assert out["validator_address"] == key["address"]
    assert out["account_pubkey"] == stored.pubkey and out["account"] == account_id(bytes.fromhex(stored.pubkey))
    assert out["zones"] == ["east-1", "east-2"] and out["chain_id"] == "utility-net"
    assert out["ports"] == {"app_metrics": 40005, "p2p": 40006, "rpc": 40007, "abci": 40008,
                            "cometbft_metrics": 40009}
    assert out["p2p_address"] == f"{shown}@<public-host>:40006"

    config = cometbft.read_config(home)
    assert config["moniker"] == "dso-east"
    assert config["proxy_app"] == "tcp://127.0.0.1:40008"
    assert config["rpc"]["laddr"] == "tcp://127.0.0.1:40007"
    assert config["p2p"]["laddr"] == "tcp://0.0.0.0:40006"
    assert config["p2p"]["addr_book_strict"] is True  # a public node keeps CometBFT's strict address book
    assert config["instrumentation"] == {**config["instrumentation"], "prometheus": True,
                                         "prometheus_listen_addr": "127.0.0.1:40009"}
    assert config["rpc"]["pprof_laddr"] == ""
    settings = tomllib.loads((home / "config" / "gridledger.toml").read_text())
    assert settings["app_metrics"] == "127.0.0.1:40005"
    assert settings["operator"]["name"] == "dso-east"

    # The one-operator genesis is valid for the app, and the app's validator set is genesis.json's.
    genesis = cometbft.read_genesis(home)
    assert genesis["chain_id"] == "utility-net"
    assert [(v["pub_key"]["value"], v["power"]) for v in genesis["validators"]] == [(out["consensus_pubkey"], "7")]
    req = abci.RequestInitChain(chain_id="utility-net", app_state_bytes=json.dumps(genesis["app_state"]).encode(),
                                initial_height=1)
    validators = LedgerApplication(MemoryBackend()).init_chain(req).validators
    assert [(v.pub_key.ed25519, v.power) for v in validators] == [(base64.b64decode(out["consensus_pubkey"]), 7)]


def test_basic_join_existing_network(cli: CliRunner, tmp_path: Path, tools_bin: Path) -> None:
    first = init_json(cli, tmp_path / "a", "--moniker", "lpd-one", "--role", "lpd")
    genesis_file = tmp_path / "a" / "config" / "genesis.json"
    peer = f"{first['node_id']}@127.0.0.1:26656"
    second = init_json(cli, tmp_path / "b", "--moniker", "dso-x", "--role", "dso", "--zones", "x-1",
                       "--genesis", str(genesis_file), "--peers", peer, "--p2p-host", "127.0.0.1",
                       "--base-port", "41000")
    assert (tmp_path / "b" / "config" / "genesis.json").read_bytes() == genesis_file.read_bytes()
    assert second["chain_id"] == first["chain_id"]
    config = cometbft.read_config(tmp_path / "b")
    assert config["p2p"]["persistent_peers"] == peer
    # Several nodes on one loopback host need CometBFT's same-IP and private-address checks relaxed.
    assert config["p2p"]["addr_book_strict"] is False and config["p2p"]["allow_duplicate_ip"] is True


def test_basic_reuses_an_existing_key(cli: CliRunner, tmp_path: Path, tools_bin: Path) -> None:
    invoke(cli, "keys", "add", "my-operator")
    pubkey = Keystore(tmp_path / "keyring").show("my-operator").pubkey
    out = init_json(cli, tmp_path / "n", "--moniker", "lpd-9", "--role", "lpd", "--key-name", "my-operator")
    assert out["account_pubkey"] == pubkey


@pytest.mark.parametrize(("args", "message"), [
    (("--role", "dso"), "at least one zone"),
    (("--role", "lpd", "--zones", "z"), "serves no zones"),
    (("--role", "dso", "--zones", "bad zone!"), "not a valid name"),
    (("--role", "lpd", "--base-port", "70000"), "base port"),
    (("--role", "lpd", "--genesis", "/nonexistent/genesis.json"), "not found"),
])
def test_invalid_options(cli: CliRunner, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke(cli, "node", "init", "--home", str(tmp_path / "n"), "--moniker", "op", *args, code=2)
    assert message in result.stderr
    assert not (tmp_path / "n").exists()


def test_invalid_home_already_initialised(cli: CliRunner, tmp_path: Path, tools_bin: Path) -> None:
    init_json(cli, tmp_path / "n", "--moniker", "lpd-1", "--role", "lpd")
    result = invoke(cli, "node", "init", "--home", str(tmp_path / "n"), "--moniker", "lpd-2", "--role", "lpd",
                    code=2)
    assert "already a node home" in result.stderr


def test_status_unreachable_node_exits_3(cli: CliRunner) -> None:
    result = invoke(cli, "node", "status", "--node", f"http://127.0.0.1:{free_port()}", code=3)
    assert "unreachable" in result.stderr


def test_start_refuses_a_non_home(cli: CliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "node", "start", "--home", str(tmp_path), code=2)
    assert "not a node home" in result.stderr
