"""Light-client verification of a CometBFT v0.38 signed header, in Python.

What a participant checks before it believes an app hash (docs/queries.md,
"Proofs"), following CometBFT's light-client rules:

1. the header hashes to the block id the commit signed (``header_hash``: the
   RFC 6962 Merkle root of the header's fields, protobuf-encoded);
2. the validator set hashes to the header's ``validators_hash``;
3. validators holding more than 2/3 of that set's power signed the block:
   each signature is an Ed25519 signature by the validator at its index over
   the canonical vote (``vote_sign_bytes``: a length-delimited protobuf
   ``CanonicalVote`` of type precommit, height, round, block id, the
   signature's time and the chain id);
4. with a trusted validator set (genesis, or one saved earlier), validators of
   that set holding more than 1/3 of its power are among the signers, so a
   node cannot pass off a validator set of its own (CometBFT's skipping
   verification with its default trust level, 1/3).

The protobuf messages are few and small, so they are encoded here by hand
(field numbers from CometBFT's .proto files) rather than generated.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abci_app.ledger.crypto import verify
from node.rpc import CometRpc, RpcError

PRECOMMIT = 2
BLOCK_ID_FLAG_COMMIT = 2
MAX_VALIDATOR_PAGES = 100


class LightClientError(Exception):
    """The header, its commit or the validator set does not verify."""


@dataclass(frozen=True)
class Validator:
    pubkey: bytes
    power: int

    @property
    def address(self) -> bytes:
        """CometBFT's validator address: the first 20 bytes of SHA-256 of the Ed25519 key."""
        return hashlib.sha256(self.pubkey).digest()[:20]


@dataclass(frozen=True)
class VerifiedHeader:
    chain_id: str
    height: int
    app_hash: bytes
    time: str
    signed_power: int
    total_power: int
    trusted_signed_power: int | None = None
    trusted_total_power: int | None = None


# -- protobuf, by hand -----------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _uint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _sfixed64_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + value.to_bytes(8, "little", signed=True) if value else b""


def _bytes_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value if value else b""


def _message_field(number: int, encoded: bytes) -> bytes:
    """An embedded message, written even when empty (gogoproto's non-nullable fields)."""
    return _varint(number << 3 | 2) + _varint(len(encoded)) + encoded


def _timestamp(text: str) -> bytes:
    seconds, nanos = parse_time(text)
    return _uint_field(1, seconds) + _uint_field(2, nanos)


def parse_time(text: str) -> tuple[int, int]:
    """RFC 3339 UTC time as CometBFT prints it (``2026-01-01T10:00:00.123456789Z``): (unix seconds, nanos)."""
    if not text.endswith("Z") or len(text) < 20:
        raise LightClientError(f"unexpected time {text!r}")
    whole, _, fraction = text[:-1].partition(".")
    try:
        date, clock = whole.split("T")
        year, month, day = (int(part) for part in date.split("-"))
        hour, minute, second = (int(part) for part in clock.split(":"))
        nanos = int(fraction.ljust(9, "0")) if fraction else 0
    except ValueError:
        raise LightClientError(f"unexpected time {text!r}") from None
    if len(fraction) > 9:
        raise LightClientError(f"unexpected time {text!r}")
    return calendar.timegm((year, month, day, hour, minute, second)), nanos


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise LightClientError(f"not hex: {text[:40]!r}") from None


def _part_set_header(parts: dict[str, Any]) -> bytes:
    return _uint_field(1, int(parts["total"])) + _bytes_field(2, _hex(parts["hash"]))


def _block_id(block_id: dict[str, Any]) -> bytes:
    return _bytes_field(1, _hex(block_id["hash"])) + _message_field(2, _part_set_header(block_id["parts"]))


def merkle_root(items: Sequence[bytes]) -> bytes:
    """CometBFT's simple Merkle tree (RFC 6962): leaves SHA-256(0x00||item), inner SHA-256(0x01||l||r)."""
    if not items:
        return hashlib.sha256(b"").digest()
    if len(items) == 1:
        return hashlib.sha256(b"\x00" + items[0]).digest()
    split = 1 << (len(items) - 1).bit_length() - 1  # the largest power of two below len(items)
    return hashlib.sha256(b"\x01" + merkle_root(items[:split]) + merkle_root(items[split:])).digest()


def header_hash(header: dict[str, Any]) -> bytes:
    """The block hash: the Merkle root of the header's fields, each protobuf-encoded."""
    try:
        version = header["version"]
        fields = [
            _uint_field(1, int(version["block"])) + _uint_field(2, int(version.get("app", 0))),
            _bytes_field(1, header["chain_id"].encode()),
            _uint_field(1, int(header["height"])),
            _timestamp(header["time"]),
            _block_id(header["last_block_id"]),
            *(_bytes_field(1, _hex(header[name])) for name in (
                "last_commit_hash", "data_hash", "validators_hash", "next_validators_hash", "consensus_hash",
                "app_hash", "last_results_hash", "evidence_hash", "proposer_address")),
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise LightClientError(f"malformed header: {exc!r}") from None
    return merkle_root(fields)


def validator_set_hash(validators: Iterable[Validator]) -> bytes:
    """The Merkle root of the validators (in set order) as protobuf ``SimpleValidator``s."""
    return merkle_root([_message_field(1, _bytes_field(1, v.pubkey)) + _uint_field(2, v.power) for v in validators])


def vote_sign_bytes(chain_id: str, height: int, round_: int, block_id: dict[str, Any], timestamp: str) -> bytes:
    """What a validator signs when it precommits a block: a length-delimited ``CanonicalVote``."""
    canonical_block_id = _block_id(block_id)  # CanonicalBlockID has BlockID's fields and numbers
    vote = (_uint_field(1, PRECOMMIT) + _sfixed64_field(2, height) + _sfixed64_field(3, round_)
            + _message_field(4, canonical_block_id) + _message_field(5, _timestamp(timestamp))
            + _bytes_field(6, chain_id.encode()))
    return _varint(len(vote)) + vote


# -- validators ------------------------------------------------------------------------------------------------
def parse_validators(entries: Iterable[dict[str, Any]]) -> list[Validator]:
    """Validators from RPC /validators, genesis.json ``validators`` or ``gridledger query validators -o json``."""
    validators = []
    for entry in entries:
        try:
            key = entry["pub_key"]
            if isinstance(key, dict):
                if key.get("type") not in (None, "tendermint/PubKeyEd25519"):
                    raise LightClientError(f"unsupported validator key type {key.get('type')!r}")
                key = key["value"]
            pubkey = base64.b64decode(key, validate=True) if len(key) != 64 else bytes.fromhex(key)
            power = int(entry.get("voting_power", entry.get("power", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise LightClientError(f"malformed validator entry: {exc!r}") from None
        if len(pubkey) != 32 or power <= 0:
            raise LightClientError("a validator needs a 32-byte Ed25519 key and a positive power")
        validators.append(Validator(pubkey, power))
    return validators


def load_trusted_validators(path: Path) -> list[Validator]:
    """A trusted validator set from a file: a genesis.json, an RPC /validators answer or a JSON list."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LightClientError(f"cannot read trusted validators from {path}: {exc}") from None
    if isinstance(doc, dict):
        doc = doc.get("result", doc)
        doc = doc.get("validators", doc) if isinstance(doc, dict) else doc
    if not isinstance(doc, list) or not doc:
        raise LightClientError(f"{path} holds no validators (a genesis.json or a list of validators)")
    return parse_validators(doc)


# -- verification ---------------------------------------------------------------------------------------------------
def verify_signed_header(signed_header: dict[str, Any], validators: Sequence[Validator], chain_id: str,
                         trusted: Sequence[Validator] | None = None) -> VerifiedHeader:
    """Check a /commit answer's header and commit against ``validators`` (the set at that height)."""
    try:
        header, commit = signed_header["header"], signed_header["commit"]
        height = int(header["height"])
        signatures = commit["signatures"]
        block_id = commit["block_id"]
        commit_height, round_ = int(commit["height"]), int(commit["round"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LightClientError(f"malformed signed header: {exc!r}") from None
    if header.get("chain_id") != chain_id:
        raise LightClientError(f"the header is of chain {header.get('chain_id')!r}, not {chain_id!r}")
    if commit_height != height:
        raise LightClientError(f"the commit is for height {commit_height}, the header for {height}")
    if header_hash(header) != _hex(block_id["hash"]):
        raise LightClientError(f"header {height} does not hash to the block id its commit signed "
                               "(the header was altered)")
    if validator_set_hash(validators) != _hex(header["validators_hash"]):
        raise LightClientError(f"the validator set does not hash to header {height}'s validators_hash")
    if len(signatures) != len(validators):
        raise LightClientError(f"the commit has {len(signatures)} signatures for {len(validators)} validators")
    signers: set[bytes] = set()
    signed = 0
    for validator, sig in zip(validators, signatures, strict=True):
        if sig.get("block_id_flag") != BLOCK_ID_FLAG_COMMIT:
            continue  # absent, or a vote for nil: no power for this block
        if _hex(sig.get("validator_address", "")) != validator.address:
            raise LightClientError("a commit signature's validator address does not match the validator set")
        try:
            signature = base64.b64decode(sig["signature"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise LightClientError("malformed commit signature") from None
        message = vote_sign_bytes(chain_id, height, round_, block_id, sig["timestamp"])
        if not verify(validator.pubkey, signature, message):
            raise LightClientError(f"the signature of validator {validator.address.hex().upper()} on block "
                                   f"{height} is invalid")
        signers.add(validator.pubkey)
        signed += validator.power
    total = sum(v.power for v in validators)
    if 3 * signed <= 2 * total:
        raise LightClientError(f"validators holding only {signed} of {total} power signed block {height} "
                               "(more than 2/3 needed)")
    verified = VerifiedHeader(chain_id, height, _hex(header["app_hash"]), header["time"], signed, total)
    if trusted is None:
        return verified
    trusted_total = sum(v.power for v in trusted)
    trusted_signed = sum(v.power for v in trusted if v.pubkey in signers)
    if 3 * trusted_signed <= trusted_total:
        raise LightClientError(f"trusted validators holding only {trusted_signed} of {trusted_total} power signed "
                               f"block {height} (more than 1/3 needed)")
    return VerifiedHeader(chain_id, height, verified.app_hash, verified.time, signed, total, trusted_signed,
                          trusted_total)


def trust_point(rpc: CometRpc, chain_id: str) -> tuple[int, str]:
    """(height, block hash) of the latest block of a trusted RPC server, for CometBFT's [statesync].

    The block's commit is verified first (against the server's own validator
    set): a server of another chain, or one that cannot show a valid commit,
    is refused before a node is configured to trust it.
    """
    latest = rpc.call("commit")["signed_header"]
    height = int(latest["header"]["height"])
    verify_signed_header(latest, fetch_validators(rpc, height), chain_id)
    return height, str(latest["commit"]["block_id"]["hash"]).upper()


def fetch_validators(rpc: CometRpc, height: int) -> list[Validator]:
    """The validator set at ``height`` from /validators, every page."""
    entries: list[dict[str, Any]] = []
    for page in range(1, MAX_VALIDATOR_PAGES + 1):
        answer = rpc.call("validators", height=str(height), page=str(page), per_page="100")
        entries += answer["validators"]
        if len(entries) >= int(answer["total"]) or not answer["validators"]:
            return parse_validators(entries)
    raise LightClientError("the validator set spans too many pages")


def fetch_verified_header(rpc: CometRpc, height: int, chain_id: str, trusted: Sequence[Validator] | None = None,
                          wait: float = 15.0) -> VerifiedHeader:
    """Header ``height`` from /commit, verified against /validators at that height.

    The header of block H+1 carries the app hash after block H, so a proof of
    the state at H waits for H+1 (up to ``wait`` seconds: a block interval).
    """
    signed_header = _wait_commit(rpc, height, wait)
    return verify_signed_header(signed_header, fetch_validators(rpc, height), chain_id, trusted)


def _wait_commit(rpc: CometRpc, height: int, wait: float) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + wait
    while True:
        try:
            answer: dict[str, Any] = rpc.call("commit", height=str(height))["signed_header"]
            return answer
        except RpcError as exc:
            if time.monotonic() > deadline:
                raise LightClientError(f"block {height} is not committed yet ({exc})") from None
        time.sleep(0.2)
