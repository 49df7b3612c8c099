"""The operators' CLI follow-ups: readable validator proposals, one consensus-key encoding, --log-level,
`node verify-backup`, and the validator table with names (the last two need no running chain)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abci_app.ledger.crypto import SigningKey
from cli.main import app
from node import supervisor
from node.client.keystore import Keystore
from tests.test_backup import chain_on_disk

CONSENSUS_KEY = bytes(range(32))


@pytest.fixture
def keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", "pw")
    monkeypatch.setenv("GRIDLEDGER_KEYRING_DIR", str(tmp_path / "keys"))
    for name in ("dso", "dso-east"):
        Keystore(tmp_path / "keys").add(name, "pw", SigningKey.generate())
    return tmp_path / "keys"


def propose(*key: str) -> list[str]:
    return ["tx", "gov", "propose-validator", "add", "dso-east", "--role", "dso", "--account-pubkey", "dso-east",
            *key, "--zones", "zone-e", "--power", "1", "--from", "dso", "--chain-id", "c", "--nonce", "1",
            "--dry-run", "-o", "json"]


@pytest.mark.parametrize("text", [base64.b64encode(CONSENSUS_KEY).decode(), CONSENSUS_KEY.hex()],
                         ids=["base64", "hex"])
def test_basic_propose_validator_prints_base64(keyring: Path, text: str) -> None:
    result = CliRunner().invoke(app, propose("--consensus-pubkey", text))
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)["body"]["change"]
    assert change["consensus_pubkey"] == base64.b64encode(CONSENSUS_KEY).decode()


@pytest.mark.parametrize("text", ["not-a-key", base64.b64encode(b"short").decode(), "ab" * 31])
def test_invalid_consensus_pubkey(keyring: Path, text: str) -> None:
    result = CliRunner().invoke(app, propose("--consensus-pubkey", text))
    assert result.exit_code == 2
    assert "--consensus-pubkey" in result.stderr and "Traceback" not in result.output


def test_basic_node_start_log_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "genesis.json").write_text("{}")
    (home / "config" / "config.toml").write_text('proxy_app = "tcp://127.0.0.1:1"\n')
    seen: list[supervisor.NodeSpec] = []
    monkeypatch.setattr(supervisor, "run", lambda spec: seen.append(spec) or 0)
    result = CliRunner().invoke(app, ["node", "start", "--home", str(home), "--log-level", "warn"])
    assert result.exit_code == 0, result.output
    assert (seen[0].log_level, seen[0].app_log_level) == ("error", "WARNING")
    assert "--log_level" in seen[0].cometbft_argv() and "WARNING" in seen[0].app_argv()


def test_invalid_node_start_log_level(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["node", "start", "--home", str(tmp_path), "--log-level", "loud"])
    assert result.exit_code == 2


def test_basic_verify_backup(tmp_path: Path) -> None:
    chain_on_disk(tmp_path / "app").app.close()
    shutil.copytree(tmp_path / "app", tmp_path / "copy")
    result = CliRunner().invoke(app, ["node", "verify-backup", str(tmp_path / "copy")])
    assert result.exit_code == 0, result.output
    assert "height 3" in result.stdout and "reproduces its app hash" in result.stdout


def test_invalid_verify_backup_not_an_app_state(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["node", "verify-backup", str(tmp_path)])
    assert result.exit_code == 2
    assert "no LevelDB directory" in result.stderr
