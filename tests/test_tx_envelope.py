"""The signed envelope: canonical bytes, stateless checks, authentication, nonces, mempool and proposals."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest

from abci_app.ledger import codec, errors
from abci_app.ledger.modules.bank import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.registry import Deactivate
from abci_app.ledger.tx import SIGN_DOMAIN, TX_FORMAT_VERSION, decode_tx, encode_tx, sign_bytes
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import CHAIN_ID, Chain, default_app_state, events_of, nonce_spent, seeded_key, snapshot

ALICE = seeded_key("alice")
MAX_BYTES = 65_536


def pack(value: Any) -> bytes:
    """msgpack without the canonical subset's checks (to build bad transactions)."""
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def envelope(tx_type: str, body: list[Any], nonce: int = 1, *, key: Any = ALICE, chain_id: str = CHAIN_ID,
             version: int = TX_FORMAT_VERSION) -> bytes:
    """A correctly signed envelope of any content."""
    message = pack([SIGN_DOMAIN, version, chain_id, tx_type, body, key.pubkey, nonce])
    return pack([version, chain_id, tx_type, body, key.pubkey, nonce, key.sign(message)])


def transfer(chain: Chain, amount: int = 1) -> Transfer:
    return Transfer(recipient=chain.id("bob"), amount=amount, memo="")


def code_of(raw: bytes) -> int:
    """The stateless verdict on ``raw`` (0 if it decodes)."""
    try:
        decode_tx(raw, CHAIN_ID, MAX_BYTES)
    except errors.LedgerError as exc:
        return exc.code
    return 0


def deliver_raw(chain: Chain, raw: bytes) -> abci.ExecTxResult:
    result: abci.ExecTxResult = chain.block([raw]).tx_results[0]
    return result


def rejected_raw(chain: Chain, raw: bytes, error: type[errors.LedgerError]) -> None:
    """``raw`` is rejected with ``error`` by CheckTx and FinalizeBlock and changes nothing at all."""
    assert chain.check(raw).code == error.code
    before = snapshot(chain)
    result = deliver_raw(chain, raw)
    assert result.code == error.code, result.log
    assert snapshot(chain) == before


def test_basic(chain: Chain) -> None:
    msg = transfer(chain, 7)
    raw = encode_tx(CHAIN_ID, msg, ALICE, 1)
    tx = decode_tx(raw, CHAIN_ID, MAX_BYTES)
    assert (tx.msg, tx.signer, tx.nonce, tx.account, tx.size) == (msg, ALICE.pubkey, 1, ALICE.account, len(raw))
    assert codec.decode(raw)[:6] == [1, CHAIN_ID, "transfer", msg.to_wire(), ALICE.pubkey, 1]  # type: ignore[index]
    assert raw == envelope("transfer", msg.to_wire(), 1)  # Ed25519 signatures are deterministic
    assert chain.check(raw).code == 0
    result = deliver_raw(chain, raw)
    assert result.code == 0, result.log
    assert events_of(result, "transfer") == [{"sender": ALICE.account, "recipient": chain.id("bob"), "amount": "7"}]
    assert chain.account("alice")["nonce"] == 1


def test_basic_sign_bytes_are_domain_separated() -> None:
    msg = Transfer(recipient="ab" * 20, amount=1, memo="")
    assert codec.decode(sign_bytes(CHAIN_ID, msg, ALICE.pubkey, 3)) == [
        "gridledger/tx", 1, CHAIN_ID, "transfer", msg.to_wire(), ALICE.pubkey, 3,
    ]


# -- encoding -------------------------------------------------------------------------------
def test_invalid_non_canonical_integer_width(chain: Chain) -> None:
    raw = encode_tx(CHAIN_ID, transfer(chain), ALICE, 1)
    items = codec.decode(raw)
    assert isinstance(items, list)
    wide_nonce = b"\xcf" + struct.pack(">Q", 1)  # uint64 where a positive fixint is canonical
    wider = b"\x97" + b"".join(pack(item) for item in items[:5]) + wide_nonce + pack(items[6])
    assert msgpack.unpackb(wider) == msgpack.unpackb(raw)  # same value, other bytes
    rejected_raw(chain, wider, errors.NonCanonicalTx)
    assert errors.NonCanonicalTx.code == 3


def test_invalid_non_canonical_string_width(chain: Chain) -> None:
    raw = encode_tx(CHAIN_ID, transfer(chain), ALICE, 1)
    items = codec.decode(raw)
    assert isinstance(items, list)
    chain_id = CHAIN_ID.encode()
    str16 = b"\xda" + struct.pack(">H", len(chain_id)) + chain_id  # str16 where fixstr is canonical
    wider = b"\x97" + pack(items[0]) + str16 + b"".join(pack(item) for item in items[2:])
    rejected_raw(chain, wider, errors.NonCanonicalTx)


BODY = Transfer(recipient="ab" * 20, amount=1, memo="").to_wire()
GOOD = encode_tx(CHAIN_ID, Transfer(recipient="ab" * 20, amount=1, memo=""), ALICE, 1)
MALFORMED = {
    "empty": b"",
    "reserved_byte": b"\xc1",
    "truncated": GOOD[:-1],
    "trailing_byte": GOOD + b"\x00",
    "not_an_array": pack(1),
    "map": pack({"type": "transfer"}),
    "six_fields": pack([1, CHAIN_ID, "transfer", BODY, ALICE.pubkey, 1]),
    "eight_fields": pack([1, CHAIN_ID, "transfer", BODY, ALICE.pubkey, 1, bytes(64), b""]),
    "version_as_text": pack(["1", CHAIN_ID, "transfer", BODY, ALICE.pubkey, 1, bytes(64)]),
    "bool_nonce": pack([1, CHAIN_ID, "transfer", BODY, ALICE.pubkey, True, bytes(64)]),
    "body_not_array": pack([1, CHAIN_ID, "transfer", b"", ALICE.pubkey, 1, bytes(64)]),
    "signer_as_text": pack([1, CHAIN_ID, "transfer", BODY, ALICE.pubkey.hex(), 1, bytes(64)]),
    "short_signer": pack([1, CHAIN_ID, "transfer", BODY, ALICE.pubkey[:31], 1, bytes(64)]),
    "short_signature": pack([1, CHAIN_ID, "transfer", BODY, ALICE.pubkey, 1, bytes(63)]),
    "nonce_beyond_int64": pack([1, CHAIN_ID, "transfer", BODY, ALICE.pubkey, 1 << 63, bytes(64)]),
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_invalid_malformed_bytes(chain: Chain, raw: bytes) -> None:
    assert code_of(raw) == errors.MalformedTx.code
    rejected_raw(chain, raw, errors.MalformedTx)


def test_invalid_wrong_version(chain: Chain) -> None:
    raw = envelope("transfer", transfer(chain).to_wire(), version=2)
    rejected_raw(chain, raw, errors.UnsupportedVersion)


def test_invalid_wrong_chain_id(chain: Chain) -> None:
    rejected_raw(chain, encode_tx("other-chain", transfer(chain), ALICE, 1), errors.WrongChainId)


def test_invalid_replay_across_chains() -> None:
    """The same keys on two chains: a transaction of one is never valid on the other."""
    first, second = Chain(), Chain(chain_id="second-chain")
    first.block()
    second.block()
    raw = first.sign("alice", Transfer(recipient=first.id("bob"), amount=5, memo=""))
    assert deliver_raw(first, raw).code == 0
    rejected_raw(second, raw, errors.WrongChainId)
    assert second.account("alice")["balance"] == 10_000_000


def test_invalid_unknown_type(chain: Chain) -> None:
    rejected_raw(chain, envelope("mint", [chain.id("alice"), 5]), errors.UnknownTxType)


@pytest.mark.parametrize(
    "body",
    [
        ["ab" * 20, 1],  # too few fields
        ["ab" * 20, 1, "", ""],  # too many fields
        ["ab" * 20, True, ""],  # bool where an int is expected
        ["ab" * 20, "1", ""],  # text where an int is expected
        [b"\xab" * 20, 1, ""],  # bytes where text is expected
        ["ab" * 20, 1, None],  # nil
        ["ab" * 20, [1], ""],  # array where an int is expected
    ],
)
def test_invalid_malformed_body(chain: Chain, body: list[Any]) -> None:
    rejected_raw(chain, envelope("transfer", body), errors.MalformedBody)


def test_invalid_malformed_nested_body(chain: Chain) -> None:
    body = [[["max_tx_bytes", True]], ""]  # ParamChange.value as bool
    rejected_raw(chain, envelope("propose_params", body, key=chain.keys["dso"]), errors.MalformedBody)
    body = [["max_tx_bytes", 1_024], ""]  # a change that is not an array
    rejected_raw(chain, envelope("propose_params", body, key=chain.keys["dso"]), errors.MalformedBody)


def test_invalid_float_in_body_is_not_msgpack_we_read(chain: Chain) -> None:
    """Floats are outside the canonical subset: the codec refuses them before the body is looked at."""
    rejected_raw(chain, envelope("transfer", [chain.id("bob"), 1.0, ""]), errors.MalformedTx)


# -- authentication ----------------------------------------------------------------------------
def test_invalid_bad_signature(chain: Chain) -> None:
    raw = bytearray(encode_tx(CHAIN_ID, transfer(chain), ALICE, 1))
    raw[-1] ^= 0x01
    rejected_raw(chain, bytes(raw), errors.BadSignature)
    assert chain.account("alice")["nonce"] == 0


def test_invalid_signature_by_another_key(chain: Chain) -> None:
    body = transfer(chain).to_wire()
    message = pack([SIGN_DOMAIN, 1, CHAIN_ID, "transfer", body, ALICE.pubkey, 1])
    forged = pack([1, CHAIN_ID, "transfer", body, ALICE.pubkey, 1, chain.keys["bob"].sign(message)])
    rejected_raw(chain, forged, errors.BadSignature)


def test_invalid_signature_over_other_content(chain: Chain) -> None:
    good = codec.decode(encode_tx(CHAIN_ID, transfer(chain, 1), ALICE, 1))
    assert isinstance(good, list)
    tampered = pack([*good[:3], transfer(chain, 1_000_000).to_wire(), *good[4:]])
    rejected_raw(chain, tampered, errors.BadSignature)


def test_invalid_tx_too_large() -> None:
    names = ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol")
    state = default_app_state({name: seeded_key(name) for name in names})
    state["params"]["max_tx_bytes"] = 256
    chain = Chain(app_state=state)
    chain.block()
    raw = chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=1, memo="m" * 200))
    assert len(raw) > 256
    rejected_raw(chain, raw, errors.TxTooLarge)
    small = chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=1, memo=""))
    assert len(small) <= 256
    assert deliver_raw(chain, small).code == 0


def test_invalid_tx_too_large_checked_before_decoding(chain: Chain) -> None:
    rejected_raw(chain, b"\x00" * (MAX_BYTES + 1), errors.TxTooLarge)


def test_invalid_unknown_signer(chain: Chain) -> None:
    raw = chain.sign("dave", transfer(chain))
    rejected_raw(chain, raw, errors.UnknownSigner)


def test_invalid_inactive_signer(chain: Chain) -> None:
    assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("alice"))).code == 0
    rejected_raw(chain, chain.sign("alice", transfer(chain)), errors.InactiveSigner)
    assert chain.account("alice")["nonce"] == 0  # not spent
    # Withdraw is the one message a deactivated account may still send.
    result = chain.deliver("alice", Withdraw(amount=10_000_000, agent=chain.id("lpd"), reference=""))
    assert result.code == 0, result.log
    assert chain.account("alice")["balance"] == 0
    assert chain.account("alice")["nonce"] == 2


# -- nonces ---------------------------------------------------------------------------------------
def test_invalid_stale_nonce_replay(chain: Chain) -> None:
    raw = chain.sign("alice", transfer(chain, 5))
    assert deliver_raw(chain, raw).code == 0
    rejected_raw(chain, raw, errors.StaleNonce)
    assert chain.account("alice")["balance"] == 10_000_000 - 5


@pytest.mark.parametrize("nonce", [3, 4])
def test_invalid_stale_nonce_not_above_last(chain: Chain, nonce: int) -> None:
    assert chain.deliver("alice", transfer(chain), nonce=4).code == 0
    rejected_raw(chain, chain.sign("alice", transfer(chain), nonce=nonce), errors.StaleNonce)
    assert chain.account("alice")["nonce"] == 4


@pytest.mark.parametrize("nonce", [0, -1])
def test_invalid_nonce_not_positive(chain: Chain, nonce: int) -> None:
    rejected_raw(chain, envelope("transfer", transfer(chain).to_wire(), nonce), errors.ValueOutOfRange)


def test_nonce_gaps_allowed(chain: Chain) -> None:
    assert chain.deliver("alice", transfer(chain), nonce=5).code == 0
    assert chain.deliver("alice", transfer(chain), nonce=7).code == 0
    assert chain.account("alice")["nonce"] == 7
    assert chain.deliver("alice", transfer(chain), nonce=6).code == errors.StaleNonce.code
    assert chain.account("alice")["balance"] == 10_000_000 - 2


def test_nonce_spent_when_authenticated_message_fails(chain: Chain) -> None:
    """docs/transactions.md: once authenticated, a rejected message still spends its nonce, nothing else."""
    before = snapshot(chain)
    raw = chain.sign("alice", transfer(chain, 20_000_000))
    result = deliver_raw(chain, raw)
    assert result.code == errors.InsufficientFunds.code
    assert snapshot(chain) == nonce_spent(before, "alice", 1)
    # Later funding does not let the same bytes through: the nonce is gone.
    assert chain.deliver("lpd", Deposit(account=chain.id("alice"), amount=20_000_000, reference="")).code == 0
    assert deliver_raw(chain, raw).code == errors.StaleNonce.code
    assert chain.account("bob")["balance"] == 10_000_000


@pytest.mark.parametrize("reason", ["bad_signature", "unknown_signer", "stale_nonce", "inactive_signer"])
def test_unauthenticated_failures_spend_nothing(chain: Chain, reason: str) -> None:
    assert chain.deliver("alice", transfer(chain), nonce=3).code == 0
    if reason == "bad_signature":
        raw = bytearray(chain.sign("alice", transfer(chain), nonce=4))
        raw[-2] ^= 0x80
        raw = bytes(raw)
    elif reason == "unknown_signer":
        raw = chain.sign("dave", transfer(chain), nonce=1)
    elif reason == "stale_nonce":
        raw = chain.sign("alice", transfer(chain), nonce=3)
    else:
        assert chain.deliver("dso", Deactivate(kind="participant", target=chain.id("alice"))).code == 0
        raw = chain.sign("alice", transfer(chain), nonce=4)
    before = snapshot(chain)
    assert deliver_raw(chain, raw).code != 0
    assert snapshot(chain) == before
    assert chain.account("alice")["nonce"] == 3


# -- CheckTx --------------------------------------------------------------------------------------
def test_check_tx_accepts_consecutive_nonces_before_a_block(chain: Chain) -> None:
    first, second = chain.sign("alice", transfer(chain)), chain.sign("alice", transfer(chain))
    assert chain.check(first).code == 0
    assert chain.check(second).code == 0
    assert chain.check(first).code == errors.StaleNonce.code
    assert chain.check(second).code == errors.StaleNonce.code
    assert chain.account("alice")["nonce"] == 0  # CheckTx never touches committed state
    results = chain.block([first, second]).tx_results
    assert [r.code for r in results] == [0, 0]
    assert chain.account("alice")["nonce"] == 2


def test_check_tx_sees_effects_of_earlier_mempool_txs(chain: Chain) -> None:
    assert chain.check(chain.sign("alice", transfer(chain, 6_000_000))).code == 0
    assert chain.check(chain.sign("alice", transfer(chain, 6_000_000))).code == errors.InsufficientFunds.code


def test_check_tx_view_rebuilt_after_commit(chain: Chain) -> None:
    first, second = chain.sign("alice", transfer(chain)), chain.sign("alice", transfer(chain))
    assert chain.check(first).code == 0
    assert chain.check(second).code == 0
    chain.block([first])
    assert chain.check(first).code == errors.StaleNonce.code
    assert chain.check(second).code == 0  # re-checked against the new committed state


# -- ProcessProposal -----------------------------------------------------------------------------
def process(chain: Chain, txs: list[bytes]) -> int:
    status: int = chain.app.process_proposal(abci.RequestProcessProposal(txs=txs, height=chain.height + 1)).status
    return status


ACCEPT = abci.ResponseProcessProposal.ACCEPT
REJECT = abci.ResponseProcessProposal.REJECT


def test_process_proposal_accepts_valid_block(chain: Chain) -> None:
    assert process(chain, []) == ACCEPT
    assert process(chain, [chain.sign("alice", transfer(chain)), chain.sign("alice", transfer(chain))]) == ACCEPT


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc1",
        encode_tx("other-chain", Transfer(recipient="ab" * 20, amount=1, memo=""), ALICE, 9),
        envelope("transfer", ["ab" * 20, 1, ""], 9, version=2),
        b"\x00" * (MAX_BYTES + 1),
    ],
)
def test_process_proposal_rejects_undecodable_tx(chain: Chain, bad: bytes) -> None:
    good = chain.sign("bob", transfer(chain))
    assert process(chain, [good, bad]) == REJECT


def test_process_proposal_rejects_repeated_account_nonce(chain: Chain) -> None:
    one = chain.sign("alice", transfer(chain, 1), nonce=1)
    other = chain.sign("alice", transfer(chain, 2), nonce=1)
    assert process(chain, [one, other]) == REJECT
    assert process(chain, [one, one]) == REJECT


def test_process_proposal_accepts_stateful_failures(chain: Chain) -> None:
    txs = [
        chain.sign("alice", transfer(chain, 20_000_000)),  # insufficient funds
        chain.sign("dave", transfer(chain)),  # unknown signer
        chain.sign("bob", Transfer(recipient=chain.id("bob"), amount=1, memo="")),  # self transfer
    ]
    assert process(chain, txs) == ACCEPT
    codes = [r.code for r in chain.block(txs).tx_results]
    assert codes == [errors.InsufficientFunds.code, errors.UnknownSigner.code, errors.SelfTransfer.code]


def test_invalid_nonce_jump_that_would_freeze_the_account(chain: Chain) -> None:
    """Nonce 2^63-1 would leave no nonce above it: a nonce may skip at most 2^32."""
    rejected_raw(chain, chain.sign("alice", transfer(chain), nonce=(1 << 63) - 1), errors.ValueOutOfRange)
    assert deliver_raw(chain, chain.sign("alice", transfer(chain), nonce=1 << 32)).code == 0
    assert chain.account("alice")["nonce"] == 1 << 32


def test_invalid_string_not_utf8(chain: Chain) -> None:
    """A str of invalid UTF-8 inside the body is a malformed transaction (code 2), never an escaped exception."""
    raw = chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=1, memo="AB"))
    bad = raw.replace(b"\xa2AB", b"\xa2\xc2\x28")
    assert code_of(bad) == errors.MalformedTx.code
    rejected_raw(chain, bad, errors.MalformedTx)
