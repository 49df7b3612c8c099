"""`gridledger node init` sets up the node's libp2p host as `testnet init` does for a testnet (nothing starts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.p2p import node_host

OTHER_KEY = "ab" * 32
OTHER_ADDR = "/ip4/127.0.0.1/tcp/40104/p2p/12D3KooWQAQiN3tzdnB2tbwPgchQzyjNqtiXV5FbEwa5Ez2zKMAo"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", "operator secret")
    monkeypatch.setenv("GRIDLEDGER_KEYRING_DIR", str(tmp_path / "keyring"))
    return CliRunner()


def init(cli: CliRunner, home: Path, *args: str, code: int = 0) -> Any:
    result = cli.invoke(app, ["node", "init", "--home", str(home), "--output", "json", *args])
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.output
    return json.loads(result.stdout) if code == 0 else result


def test_basic_dso_host_with_bootstrap_and_trusted_peer(cli: CliRunner, tmp_path: Path, tools_bin: Path) -> None:
    home = tmp_path / "dso"
    out = init(cli, home, "--moniker", "dso-east", "--role", "dso", "--zones", "east-1,east-2", "--base-port",
               "40000", "--p2p-host", "127.0.0.1", "--p2p-bootstrap", OTHER_ADDR, "--p2p-trust-publisher", OTHER_KEY)
    identity = node_host.create_identity(home)  # the key written at init, loaded again
    assert out["libp2p_peer_id"] == identity.peer_id and out["feed_publisher_key"] == identity.pubkey
    assert out["libp2p_address"] == f"/ip4/127.0.0.1/tcp/40004/p2p/{identity.peer_id}"
    config = node_host.read_config(home)
    assert config == {"chain_id": "gridledger-1", "zones": ["east-1", "east-2"],
                      "listen": ["/ip4/127.0.0.1/tcp/40004"], "bootstrap": [OTHER_ADDR],
                      "trusted_publishers": sorted([identity.pubkey, OTHER_KEY])}
    assert ((home / "p2p_identity.key").stat().st_mode & 0o777) == 0o600


def test_basic_lpd_joining_publishes_every_zone_of_the_genesis(cli: CliRunner, tmp_path: Path,
                                                              tools_bin: Path) -> None:
    init(cli, tmp_path / "dso", "--moniker", "dso-east", "--role", "dso", "--zones", "east-1,east-2")
    lpd = init(cli, tmp_path / "lpd", "--moniker", "lpd-one", "--role", "lpd", "--base-port", "41000",
               "--genesis", str(tmp_path / "dso" / "config" / "genesis.json"))
    assert node_host.read_config(tmp_path / "lpd")["zones"] == ["east-1", "east-2"]
    assert lpd["libp2p_address"].startswith("/ip4/<public-host>/tcp/41004/p2p/")  # 0.0.0.0 has no address to give


def test_basic_lpd_of_a_chain_without_zones_and_no_libp2p(cli: CliRunner, tmp_path: Path, tools_bin: Path) -> None:
    alone = tmp_path / "alone"
    result = cli.invoke(app, ["node", "init", "--home", str(alone), "--moniker", "lpd-x", "--role", "lpd"])
    assert result.exit_code == 0 and "runs no libp2p host" in result.stderr
    assert not node_host.enabled(alone) and not (alone / "p2p_identity.key").exists()
    plain = init(cli, tmp_path / "plain", "--moniker", "dso-y", "--role", "dso", "--zones", "y-1", "--no-libp2p")
    assert "libp2p_peer_id" not in plain and not node_host.enabled(tmp_path / "plain")


@pytest.mark.parametrize(("args", "message"), [
    (("--p2p-zone", "bad zone!"), "not a valid zone name"),
    (("--p2p-trust-publisher", "xyz"), "64-hex"),
])
def test_invalid_p2p_options_write_nothing(cli: CliRunner, tmp_path: Path, args: tuple[str, ...],
                                           message: str) -> None:
    result = init(cli, tmp_path / "n", "--moniker", "dso-z", "--role", "dso", "--zones", "z-1", *args, code=2)
    assert message in result.stderr
    assert not (tmp_path / "n").exists()
