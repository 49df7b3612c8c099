"""`gridledger query … --prove` against an in-process node that signs its own headers.

``FakeNode`` answers CometBFT's RPC from an in-process chain (tests/harness.py)
and signs block headers with one validator key, encoded by node/client/lightclient.py
(tests/test_light_client.py checks those encodings against a real CometBFT).
Every tampering a node could try is refused with exit code 4.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.bank import Transfer
from abci_app.pb.tendermint.abci import types_pb2 as abci
from cli.main import app
from cli.output import PROOF_INVALID
from node import rpc as rpc_module
from node.client.lightclient import Validator, header_hash, merkle_root, validator_set_hash, vote_sign_bytes
from tests.harness import Chain
from tests.market_harness import SLOT, order, place
from tests.settlement_harness import SLOT_END, Registers
from tests.test_settlement import chain_with, settle

URL = "http://127.0.0.1:9"  # never dialled: FakeNode answers for it (port 9 is discard, refused if ever used)
EMPTY = merkle_root([]).hex().upper()


class FakeNode:
    """CometBFT's RPC for the proof path: abci_query, status, commit, validators."""

    def __init__(self, chain: Chain, validators: int = 1) -> None:
        self.chain = chain
        self.keys = [SigningKey.from_seed(bytes([i + 1]) * 32) for i in range(validators)]
        self.validators = [Validator(key.pubkey, 10) for key in self.keys]
        self.app_hashes = {chain.app.committed.height: chain.app.committed.app_hash}
        self.tamper: dict[str, Callable[[Any], Any]] = {}

    def commit_block(self) -> None:
        self.chain.block()
        self.app_hashes[self.chain.app.committed.height] = self.chain.app.committed.app_hash

    def call(self, method: str, **params: Any) -> Any:
        answer = getattr(self, f"_{method}")(**params)
        return self.tamper.get(method, lambda a: a)(answer)

    def _status(self) -> Any:
        return {"node_info": {"network": self.chain.chain_id}}

    def _abci_query(self, path: str, data: str, height: str, prove: bool) -> Any:
        response = self.chain.app.query(abci.RequestQuery(path=path, prove=prove))
        # Keep up with the chain: block H+1 is there for proofs of the state at H.
        self.app_hashes.setdefault(response.height, self.chain.app.committed.app_hash)
        ops = [{"type": op.type, "key": base64.b64encode(op.key).decode(), "data": base64.b64encode(op.data).decode()}
               for op in response.proof_ops.ops]
        return {"response": {"code": response.code, "log": response.log, "height": str(response.height),
                             "key": base64.b64encode(response.key).decode(),
                             "value": base64.b64encode(response.value).decode(),
                             "proofOps": {"ops": ops} if ops else None}}

    def _validators(self, height: str, page: str = "1", per_page: str = "100") -> Any:
        return {"block_height": height, "total": str(len(self.validators)), "validators": [
            {"address": v.address.hex().upper(), "pub_key": {"type": "tendermint/PubKeyEd25519",
                                                             "value": base64.b64encode(v.pubkey).decode()},
             "voting_power": str(v.power), "proposer_priority": "0"} for v in self.validators]}

    def _commit(self, height: str) -> Any:
        state_height = int(height) - 1
        if state_height not in self.app_hashes:
            raise rpc_module.RpcError(f"commit: height {height} must be less than or equal to the current height")
        vals_hash = validator_set_hash(self.validators).hex().upper()
        header = {
            "version": {"block": "11", "app": "1"}, "chain_id": self.chain.chain_id, "height": height,
            "time": "2026-01-01T10:00:00.5Z", "last_block_id": {"hash": "AB" * 32, "parts": {"total": 1,
                                                                                          "hash": "CD" * 32}},
            "last_commit_hash": EMPTY, "data_hash": EMPTY, "validators_hash": vals_hash,
            "next_validators_hash": vals_hash, "consensus_hash": "11" * 32,
            "app_hash": self.app_hashes[state_height].hex().upper(), "last_results_hash": EMPTY,
            "evidence_hash": EMPTY, "proposer_address": self.validators[0].address.hex().upper(),
        }
        block_id = {"hash": header_hash(header).hex().upper(), "parts": {"total": 1, "hash": "EF" * 32}}
        timestamp = "2026-01-01T10:00:01.25Z"
        message = vote_sign_bytes(self.chain.chain_id, int(height), 0, block_id, timestamp)
        signatures = [{"block_id_flag": 2, "validator_address": v.address.hex().upper(), "timestamp": timestamp,
                       "signature": base64.b64encode(key.sign(message)).decode()}
                      for key, v in zip(self.keys, self.validators, strict=True)]
        return {"signed_header": {"header": header, "commit": {"height": height, "round": 0, "block_id": block_id,
                                                               "signatures": signatures}}, "canonical": True}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Chain], FakeNode]]:
    nodes: list[FakeNode] = []

    def serve(chain: Chain, validators: int = 1) -> FakeNode:
        node = FakeNode(chain, validators)
        nodes.append(node)
        original = rpc_module.CometRpc.call

        def call(self: rpc_module.CometRpc, method: str, **params: Any) -> Any:
            if self.url == URL:
                return node.call(method, **params)
            return original(self, method, **params)

        monkeypatch.setattr(rpc_module.CometRpc, "call", call)
        return node

    yield serve


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--node", URL])


def transfers_chain() -> Chain:
    chain = Chain()
    for amount in (1_000, 2_000, 3_000):
        chain.block([chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=amount, memo="rent"))])
    return chain


def plain_and_proven(chain: Chain, *args: str) -> tuple[Any, Any]:
    plain = cli(*args, "-o", "json")
    proven = cli(*args, "-o", "json", "--prove")
    assert plain.exit_code == 0, plain.stderr
    assert proven.exit_code == 0, proven.stderr
    return json.loads(plain.stdout), json.loads(proven.stdout)


# -- basics ---------------------------------------------------------------------------------------
def test_basic(fake: Callable[[Chain], FakeNode]) -> None:
    chain = transfers_chain()
    fake(chain)
    plain, proven = plain_and_proven(chain, "query", "account", chain.id("alice"))
    assert proven == plain and proven["balance"] == 10_000_000 - 6_000
    result = cli("query", "account", chain.id("alice"), "--prove")
    assert f"verified at height {chain.height} by validators holding 10 of 10 power" in result.stderr


def test_basic_statement_proven_complete(fake: Callable[[Chain], FakeNode]) -> None:
    chain = transfers_chain()
    fake(chain)
    plain, proven = plain_and_proven(chain, "query", "statement", chain.id("bob"))
    assert proven == plain and [line["amount"] for line in proven] == [1_000, 2_000, 3_000]


def test_basic_position_absent_is_proven_empty(fake: Callable[[Chain], FakeNode]) -> None:
    chain = transfers_chain()
    fake(chain)
    plain, proven = plain_and_proven(chain, "query", "position", str(SLOT), chain.id("alice"))
    assert proven == plain and proven["collateral"] == 0


def test_basic_settlement(fake: Callable[[Chain], FakeNode]) -> None:
    chain = chain_with()
    fake(chain)
    place(chain, "carol", order("ask", 2_000, 220_000, origin="wind"))
    place(chain, "bob", order("bid", 2_000, 260_000))
    plain, proven = plain_and_proven(chain, "query", "position", str(SLOT), chain.id("carol"))
    assert proven == plain and proven["sold_wh"] == 2_000
    # Every meter reports (a silent one would be billed its substitute); carol delivers half of what she sold.
    registers = Registers()
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"bob": (2_000, 0), "carol": (0, 1_000)})
    settle(chain, SLOT)
    plain, proven = plain_and_proven(chain, "query", "settlement", str(SLOT))
    assert proven == plain and len(proven["reports"]) == 5 and proven["complete"] is True
    plain, proven = plain_and_proven(chain, "query", "settlement", str(SLOT), chain.id("carol"))
    assert proven == plain and proven["balancing_charge"] == 600_000


def test_basic_absent_account_is_a_verified_not_found(fake: Callable[[Chain], FakeNode]) -> None:
    chain = transfers_chain()
    fake(chain)
    result = cli("query", "account", "0" * 40, "--prove")
    assert result.exit_code == 2 and "not found (verified at height" in result.stderr


def test_basic_trusted_validators(fake: Callable[..., FakeNode], tmp_path: Path) -> None:
    chain = transfers_chain()
    node = fake(chain, 4)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps({"chain_id": chain.chain_id, "validators": [
        {"pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(v.pubkey).decode()},
         "power": str(v.power)} for v in node.validators]}))
    result = cli("query", "account", chain.id("alice"), "--prove", "--trusted-validators", str(genesis))
    assert result.exit_code == 0, result.stderr
    assert "validators holding 40 of 40 power" in result.stderr and "trusted validators holding 40 of 40" in \
        result.stderr


# -- tampering ------------------------------------------------------------------------------------------
def _tampered(fake: Callable[..., FakeNode], method: str, change: Callable[[Any], None], validators: int = 1,
              *args: str) -> Any:
    chain = transfers_chain()
    node = fake(chain, validators)

    def tamper(answer: Any) -> Any:
        change(answer)
        return answer

    node.tamper[method] = tamper
    return cli(*(args or ("query", "account", chain.id("alice"))), "--prove")


def _refused(result: Any, reason: str) -> None:
    assert result.exit_code == PROOF_INVALID, result.stderr
    assert "NOT VERIFIED" in result.stderr and reason in result.stderr, result.stderr


def test_invalid_tampered_value(fake: Callable[..., FakeNode]) -> None:
    def richer(answer: Any) -> None:
        response = answer["response"]
        if not base64.b64decode(response["key"]).startswith(b"acct/"):
            return
        account = Account.decode(base64.b64decode(response["value"]))
        fields = {name: getattr(account, name) for name in account.__struct_fields__}
        response["value"] = base64.b64encode(Account(**{**fields, "balance": 10**12}).encode()).decode()

    _refused(_tampered(fake, "abci_query", richer), "is not the app hash")


def test_invalid_tampered_proof(fake: Callable[..., FakeNode]) -> None:
    def flip(answer: Any) -> None:
        op = answer["response"]["proofOps"]["ops"][0]
        data = bytearray(base64.b64decode(op["data"]))
        data[-3] ^= 0x40
        op["data"] = base64.b64encode(bytes(data)).decode()

    _refused(_tampered(fake, "abci_query", flip), "proof")


def test_invalid_proof_missing(fake: Callable[..., FakeNode]) -> None:
    def strip(answer: Any) -> None:
        answer["response"]["proofOps"] = None

    _refused(_tampered(fake, "abci_query", strip), "no gridledger:trie:v1 proof")


def test_invalid_proof_of_another_key(fake: Callable[..., FakeNode]) -> None:
    """A valid proof, but of bob's account, passed off for alice's."""
    chain = transfers_chain()
    node = fake(chain)
    bob = chain.app.query(abci.RequestQuery(path=f"/raw/{('acct/' + chain.id('bob')).encode().hex()}", prove=True))

    def swap(answer: Any) -> None:
        response = answer["response"]
        response["value"] = base64.b64encode(bob.value).decode()
        op = bob.proof_ops.ops[0]
        response["proofOps"] = {"ops": [{"type": op.type, "key": base64.b64encode(op.key).decode(),
                                         "data": base64.b64encode(op.data).decode()}]}

    node.tamper["abci_query"] = lambda answer: (swap(answer), answer)[1]
    _refused(cli("query", "account", chain.id("alice"), "--prove"), "another range")


def test_invalid_tampered_header(fake: Callable[..., FakeNode]) -> None:
    def other_app_hash(answer: Any) -> None:
        answer["signed_header"]["header"]["app_hash"] = "00" * 32

    _refused(_tampered(fake, "commit", other_app_hash), "does not hash to the block id")


def test_invalid_tampered_signature(fake: Callable[..., FakeNode]) -> None:
    def flip(answer: Any) -> None:
        sig = answer["signed_header"]["commit"]["signatures"][0]
        raw = bytearray(base64.b64decode(sig["signature"]))
        raw[5] ^= 1
        sig["signature"] = base64.b64encode(bytes(raw)).decode()

    _refused(_tampered(fake, "commit", flip), "is invalid")


def test_invalid_too_little_power(fake: Callable[..., FakeNode]) -> None:
    """Two of four validators (20 of 40 power) signed: not more than 2/3."""
    def absent(answer: Any) -> None:
        for sig in answer["signed_header"]["commit"]["signatures"][2:]:
            sig.update(block_id_flag=1, signature=None)

    _refused(_tampered(fake, "commit", absent, 4), "only 20 of 40 power")


def test_invalid_untrusted_validator_set(fake: Callable[..., FakeNode], tmp_path: Path) -> None:
    """A node that signs with a validator set of its own is refused by a participant who trusts genesis."""
    chain = transfers_chain()
    fake(chain)
    stranger = SigningKey.from_seed(b"\x77" * 32)
    trusted = tmp_path / "validators.json"
    trusted.write_text(json.dumps([{"pub_key": base64.b64encode(stranger.pubkey).decode(), "voting_power": "10"}]))
    result = cli("query", "account", chain.id("alice"), "--prove", "--trusted-validators", str(trusted),
                 "--chain-id", chain.chain_id)
    _refused(result, "trusted validators holding only 0 of 10 power")


def test_invalid_statement_with_a_line_hidden(fake: Callable[..., FakeNode]) -> None:
    def hide(answer: Any) -> None:
        import msgspec

        response = answer["response"]
        if not base64.b64decode(response["key"]).startswith(b"jrnl/"):
            return
        entries, more = msgspec.msgpack.decode(base64.b64decode(response["value"]))
        if entries:
            del entries[1]
        response["value"] = base64.b64encode(msgspec.msgpack.encode([entries, more])).decode()

    chain_args = transfers_chain()
    result = _tampered(fake, "abci_query", hide, 1, "query", "statement", chain_args.id("bob"))
    _refused(result, "proof")


def test_invalid_wrong_chain_id(fake: Callable[..., FakeNode]) -> None:
    chain = transfers_chain()
    fake(chain)
    _refused(cli("query", "account", chain.id("alice"), "--prove", "--chain-id", "other-chain"),
             "not 'other-chain'")
