"""Raw queries with proofs (abci_app/ledger/proofs.py): what they prove, and what they refuse."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abci_app.ledger import errors
from abci_app.ledger.merkle import EMPTY_ROOT, leaf_hash
from abci_app.ledger.modules.auth.keys import account_key
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.bank.keys import journal_prefix
from abci_app.ledger.proofs import (
    ENTRY,
    HASH,
    LEAF,
    NODE,
    PROOF_TYPE,
    ProofError,
    decode_range_answer,
    key_range,
    parse_op_data,
    prove_range,
    verify_range,
)
from abci_app.ledger.store import CommittedStore, MemoryBackend, Overlay, prefix_end
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import Chain

KEYS = st.binary(max_size=5).map(lambda raw: bytes(b"ab\x00\xff"[c % 4] for c in raw))


def busy_chain() -> Chain:
    chain = Chain()
    for amount in (1, 2, 3):
        chain.block([chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=amount, memo="")),
                     chain.sign("bob", Transfer(recipient=chain.id("carol"), amount=amount, memo=""))])
    return chain


def raw(chain: Chain, path: str, prove: bool = True) -> abci.ResponseQuery:
    return chain.app.query(abci.RequestQuery(path=path, prove=prove))


def checked(response: abci.ResponseQuery, app_hash: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """Verify a raw answer's proof; the proven (lo, hi) and entries."""
    (op,) = response.proof_ops.ops
    assert op.type == PROOF_TYPE
    lo, hi, program = parse_op_data(op.key, op.data)
    if hi == lo + b"\x00":
        entries = [(lo, response.value)] if response.code == 0 else []
    else:
        entries, _ = decode_range_answer(response.value)
    verify_range(app_hash, lo, hi, program, entries)
    return lo, hi, entries


# -- basics ----------------------------------------------------------------------------------------
def test_basic() -> None:
    chain = busy_chain()
    key = account_key(chain.id("alice"))
    response = raw(chain, f"/raw/{key.hex()}")
    assert response.code == 0 and response.height == chain.app.committed.height and response.key == key
    _, _, entries = checked(response, chain.app.committed.app_hash)
    account = Account.decode(entries[0][1])
    assert account.balance == chain.account("alice")["balance"]


def op_codes(program: bytes) -> list[int]:
    """The operations of a proof program, in order."""
    codes, at = [], 0
    while at < len(program):
        code = program[at]
        codes.append(code)
        at += 1
        if code in (LEAF, ENTRY):
            for _ in range(2 if code == LEAF else 1):
                at += 4 + int.from_bytes(program[at : at + 4], "big")
        elif code == HASH:
            at += 32
    return codes


def test_a_proven_key_needs_no_neighbours() -> None:
    chain = busy_chain()
    _, _, program, _ = _account_proof(chain)
    codes = op_codes(program)
    assert codes.count(ENTRY) == 1 and LEAF not in codes


def test_an_absent_key_opens_its_neighbours() -> None:
    chain = busy_chain()
    between = min(chain.id(name) for name in ("alice", "bob", "carol")) + "0"  # above one account, below the next
    response = raw(chain, f"/raw/{account_key(between).hex()}")
    assert response.code == errors.NotFound.code
    _, _, program = parse_op_data(response.proof_ops.ops[0].key, response.proof_ops.ops[0].data)
    assert op_codes(program).count(LEAF) == 2 and ENTRY not in op_codes(program)


def test_absent_key_is_proven_absent() -> None:
    chain = busy_chain()
    key = account_key("0" * 40)
    response = raw(chain, f"/raw/{key.hex()}")
    assert response.code == errors.NotFound.code and response.value == b""
    assert checked(response, chain.app.committed.app_hash)[2] == []


def test_range_proves_a_statement_complete() -> None:
    chain = busy_chain()
    prefix = journal_prefix(chain.id("bob"))
    end = prefix_end(prefix)
    assert end is not None
    response = raw(chain, f"/raw/{prefix.hex()}/{end.hex()}")
    _, hi, entries = checked(response, chain.app.committed.app_hash)
    assert hi == end
    assert entries == list(chain.app.committed.iterate(prefix, end)) and len(entries) == 6


def test_range_answer_without_proof() -> None:
    chain = busy_chain()
    prefix = journal_prefix(chain.id("bob"))
    response = raw(chain, f"/raw/{prefix.hex()}/{prefix_end(prefix).hex()}", prove=False)  # type: ignore[union-attr]
    entries, more = decode_range_answer(response.value)
    assert len(entries) == 6 and not more and not response.proof_ops.ops


def test_long_range_stops_at_the_limit_and_proves_what_it_answers() -> None:
    chain = busy_chain()
    store = chain.app.committed
    proof, more = prove_range(store, b"", b"\xff", limit=5)
    assert more and len(proof.entries) == 5 and proof.hi == proof.entries[-1][0] + b"\x00"
    verify_range(store.app_hash, proof.lo, proof.hi, proof.program, proof.entries)


def test_prove_on_a_json_path_is_refused() -> None:
    chain = busy_chain()
    response = raw(chain, f"/account/{chain.id('alice')}")
    assert response.code == errors.BadQuery.code and "/raw/" in response.log


@pytest.mark.parametrize("path", ["/raw/", "/raw/zz", "/raw/ABCD", "/raw/abc", "/raw/61/61", "/raw/62/61",
                                  "/raw/61/62/63"])
def test_invalid_raw_path(path: str) -> None:
    response = raw(busy_chain(), path)
    assert response.code == errors.BadQuery.code, response.log


def test_empty_tree_proves_everything_absent() -> None:
    store = CommittedStore(MemoryBackend())
    proof, more = prove_range(store, b"a", b"b")
    assert (proof.entries, proof.program, more) == ([], b"", False)
    verify_range(EMPTY_ROOT, b"a", b"b", b"", [])
    with pytest.raises(ProofError):
        verify_range(b"\x01" * 32, b"a", b"b", b"", [])


@given(st.dictionaries(KEYS, st.binary(max_size=3), max_size=80), KEYS, KEYS, st.integers(1, 6))
@settings(max_examples=200, deadline=None)
def test_any_range_of_any_state_is_proven(items: dict[bytes, bytes], lo: bytes, hi: bytes, limit: int) -> None:
    if lo >= hi:
        lo, hi = hi, lo + b"\x00"
    store = CommittedStore(MemoryBackend())
    block = Overlay(store)
    for key, value in items.items():
        block.set(key, value)
    store.commit(block, 1)
    proof, more = prove_range(store, lo, hi, limit)
    expected = sorted((k, v) for k, v in items.items() if lo <= k < hi)
    assert proof.entries == expected[:limit] and more == (len(expected) > limit)
    verify_range(store.app_hash, proof.lo, proof.hi, proof.program, proof.entries)
    if proof.entries:  # hiding any entry is refused
        with pytest.raises(ProofError):
            verify_range(store.app_hash, proof.lo, proof.hi, proof.program, proof.entries[1:])


# -- tampering ------------------------------------------------------------------------------------------
def _account_proof(chain: Chain) -> tuple[bytes, bytes, bytes, bytes]:
    key = account_key(chain.id("alice"))
    response = raw(chain, f"/raw/{key.hex()}")
    op = response.proof_ops.ops[0]
    lo, hi, program = parse_op_data(op.key, op.data)
    return lo, hi, program, response.value


def test_invalid_tampered_value() -> None:
    chain = busy_chain()
    lo, hi, program, value = _account_proof(chain)
    account = Account.decode(value)
    richer = Account(**{**{f: getattr(account, f) for f in account.__struct_fields__}, "balance": 10**12}).encode()
    with pytest.raises(ProofError, match="not the app hash"):
        verify_range(chain.app.committed.app_hash, lo, hi, program, [(lo, richer)])


def test_invalid_tampered_proof() -> None:
    chain = busy_chain()
    lo, hi, program, value = _account_proof(chain)
    at = program.index(bytes([HASH]))
    tampered = program[: at + 1] + bytes([program[at + 1] ^ 1]) + program[at + 2 :]
    with pytest.raises(ProofError, match="not the app hash"):
        verify_range(chain.app.committed.app_hash, lo, hi, tampered, [(lo, value)])
    with pytest.raises(ProofError):
        verify_range(chain.app.committed.app_hash, lo, hi, program[:-1], [(lo, value)])


def test_invalid_other_app_hash() -> None:
    chain = busy_chain()
    lo, hi, program, value = _account_proof(chain)
    previous = chain.app.committed.app_hash
    chain.block()
    with pytest.raises(ProofError, match="not the app hash"):
        verify_range(chain.app.committed.app_hash, lo, hi, program, [(lo, value)])
    verify_range(previous, lo, hi, program, [(lo, value)])


def test_invalid_existing_key_passed_off_as_absent() -> None:
    """The entry's leaf folded into a HASH: the root still matches, but a subtree inside the range is hidden."""
    chain = busy_chain()
    lo, hi, program, value = _account_proof(chain)
    at = program.index(bytes([ENTRY]) + len(lo).to_bytes(4, "big") + lo)
    end = at + 5 + len(lo)
    hidden = program[:at] + bytes([HASH]) + leaf_hash(lo, value) + program[end:]
    with pytest.raises(ProofError, match="needs a leaf next to the range"):
        verify_range(chain.app.committed.app_hash, lo, hi, hidden, [])


def test_invalid_statement_with_a_line_hidden() -> None:
    chain = busy_chain()
    prefix = journal_prefix(chain.id("bob"))
    response = raw(chain, f"/raw/{prefix.hex()}/{prefix_end(prefix).hex()}")  # type: ignore[union-attr]
    op = response.proof_ops.ops[0]
    lo, hi, program = parse_op_data(op.key, op.data)
    entries, _ = decode_range_answer(response.value)
    rng = random.Random(3)
    del entries[rng.randrange(len(entries))]
    with pytest.raises(ProofError):
        verify_range(chain.app.committed.app_hash, lo, hi, program, entries)


def test_key_range_holds_one_key() -> None:
    lo, hi = key_range(b"acct/x")
    assert lo < b"acct/x\x00" <= hi and not lo < b"acct/x0" < hi


def test_proof_format_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "queries.md").read_text()
    assert PROOF_TYPE in doc and "/raw/<hex key>" in doc and "/raw/<hex lo>/<hex hi>" in doc
    for name, code in (("LEAF", LEAF), ("ENTRY", ENTRY), ("HASH", HASH), ("NODE", NODE)):
        assert f"`0x{code:02x}` {name}" in doc, name
