"""node/client/lightclient.py: CometBFT's encodings and verification rules, checked against a real CometBFT."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abci_app.ledger.modules.bank import Transfer
from cli.main import app
from cli.output import PROOF_INVALID
from node import rpc as rpc_module
from node.client.lightclient import (
    LightClientError,
    fetch_validators,
    fetch_verified_header,
    load_trusted_validators,
    merkle_root,
    parse_time,
    verify_signed_header,
)
from tests.harness import Chain
from tests.localnode import LocalNode


# -- unit ---------------------------------------------------------------------------------------------
def test_merkle_root_is_rfc6962() -> None:
    leaf = [hashlib.sha256(b"\x00" + item).digest() for item in (b"a", b"b", b"c")]
    def inner(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    assert merkle_root([]) == hashlib.sha256(b"").digest()
    assert merkle_root([b"a"]) == leaf[0]
    assert merkle_root([b"a", b"b", b"c"]) == inner(inner(leaf[0], leaf[1]), leaf[2])


@pytest.mark.parametrize(("text", "expected"), [
    ("1970-01-01T00:00:00Z", (0, 0)),
    ("2026-01-01T10:00:00.5Z", (1_767_261_600, 500_000_000)),
    ("2026-01-01T10:00:00.000000001Z", (1_767_261_600, 1)),
])
def test_parse_time(text: str, expected: tuple[int, int]) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["2026-01-01T10:00:00", "2026-01-01T10:00:00+01:00", "nonsense-Z",
                                  "2026-01-01T10:00:00.1234567890Z"])
def test_invalid_time(text: str) -> None:
    with pytest.raises(LightClientError):
        parse_time(text)


def test_trusted_validators_from_genesis_and_rpc_answers(tmp_path: Path) -> None:
    key = base64.b64encode(b"\x01" * 32).decode()
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps({"chain_id": "c", "validators": [
        {"address": "", "pub_key": {"type": "tendermint/PubKeyEd25519", "value": key}, "power": "7"}]}))
    rpc_answer = tmp_path / "validators.json"
    rpc_answer.write_text(json.dumps({"result": {"validators": [{"pub_key": {"value": key}, "voting_power": "7"}]}}))
    assert load_trusted_validators(genesis) == load_trusted_validators(rpc_answer)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(LightClientError, match="no validators"):
        load_trusted_validators(empty)


# -- against a real CometBFT ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNode, Chain]]:
    chain = Chain(chain_id="lc-chain")
    local = LocalNode(tmp_path_factory.mktemp("lc") / "node", chain.app_state or {}, chain_id="lc-chain")
    local.start()
    try:
        local.rpc.wait_height(2, timeout=60)
        for amount in (1_000, 2_000):
            raw = chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=amount, memo="e2e"))
            tx_hash = local.rpc.broadcast_tx_sync(raw)["hash"]
            local.rpc.wait_tx(tx_hash, timeout=30)
        yield local, chain
    finally:
        local.stop()


@pytest.mark.e2e
def test_real_headers_and_commits_verify(node: tuple[LocalNode, Chain]) -> None:
    local, _ = node
    top = local.rpc.height()
    for height in (1, 2, top):  # height 1 has an empty last block id
        verified = fetch_verified_header(local.rpc, height, "lc-chain")
        assert verified.height == height and verified.signed_power == verified.total_power == 10
        header = local.rpc.call("block", height=str(height))["block"]["header"]
        assert verified.app_hash.hex().upper() == header["app_hash"]


@pytest.mark.e2e
def test_invalid_real_commit_altered(node: tuple[LocalNode, Chain]) -> None:
    local, _ = node
    signed_header = local.rpc.call("commit", height="2")["signed_header"]
    validators = fetch_validators(local.rpc, 2)
    header_changed: dict[str, Any] = json.loads(json.dumps(signed_header))
    header_changed["header"]["app_hash"] = "00" * 32
    with pytest.raises(LightClientError, match="does not hash to the block id"):
        verify_signed_header(header_changed, validators, "lc-chain")
    with pytest.raises(LightClientError):
        verify_signed_header(signed_header, validators, "other-chain")
    sig_changed: dict[str, Any] = json.loads(json.dumps(signed_header))
    sig = sig_changed["commit"]["signatures"][0]
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[0] ^= 1
    sig["signature"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(LightClientError, match="is invalid"):
        verify_signed_header(sig_changed, validators, "lc-chain")


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.mark.e2e
def test_cli_prove_against_real_node(node: tuple[LocalNode, Chain], tmp_path: Path) -> None:
    local, chain = node
    url = local.ports.rpc_url
    genesis = local.home / "config" / "genesis.json"
    for args in (("query", "account", chain.id("alice")), ("query", "statement", chain.id("bob"))):
        plain = _cli(*args, "--node", url, "-o", "json")
        proven = _cli(*args, "--node", url, "-o", "json", "--prove", "--trusted-validators", str(genesis))
        assert proven.exit_code == 0, proven.stderr
        assert json.loads(proven.stdout) == json.loads(plain.stdout)
        assert "by validators holding 10 of 10 power" in proven.stderr
    assert [line["amount"] for line in json.loads(proven.stdout)] == [1_000, 2_000]


@pytest.mark.e2e
def test_invalid_cli_refuses_a_tampered_real_header(node: tuple[LocalNode, Chain],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    local, chain = node
    original = rpc_module.CometRpc.call
    lock = threading.Lock()

    def call(self: rpc_module.CometRpc, method: str, **params: Any) -> Any:
        with lock:
            answer = original(self, method, **params)
        if method == "commit":
            answer["signed_header"]["header"]["app_hash"] = "AB" * 32
        return answer

    monkeypatch.setattr(rpc_module.CometRpc, "call", call)
    result = _cli("query", "account", chain.id("alice"), "--node", local.ports.rpc_url, "--prove")
    assert result.exit_code == PROOF_INVALID and "does not hash to the block id" in result.stderr
