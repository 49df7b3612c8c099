"""Verified reads: state keys and key ranges, proven against a header the light client verified.

``read`` asks a node for the raw entries behind an answer with ``prove=true``,
verifies the header of block H+1 (it carries the app hash of the state at H)
with ``node/client/lightclient.py``, and checks every proof against that app hash.
The result is a small key-value store of proven entries, so the ledger's own
query code can compute the usual answer from it (``ProvenState.state``): what
the participant sees is computed from proven state only (docs/queries.md).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from abci_app.ledger import errors
from abci_app.ledger.proofs import PROOF_TYPE, RAW_PATH, ProofError, decode_range_answer, parse_op_data, verify_range
from abci_app.ledger.state import State
from abci_app.ledger.store import MemoryBackend, Overlay
from node.client.lightclient import LightClientError, Validator, VerifiedHeader, fetch_verified_header
from node.rpc import CometRpc

MAX_ATTEMPTS = 5
"""Reads are retried until every answer is of one height (a block may commit between two queries)."""


class VerificationError(Exception):
    """A proof, a header or a signature does not verify: the answer must not be believed."""


class QueryRefused(Exception):
    """The node refused the query itself (bad path, no block yet)."""


@dataclass
class ProvenState:
    """Entries proven at ``height`` (keys present, keys proven absent, complete ranges)."""

    height: int
    header: VerifiedHeader
    backend: MemoryBackend = field(default_factory=MemoryBackend)
    truncated: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Ranges whose answer stopped at the node's limit: (requested lo, hi) pairs."""

    @property
    def state(self) -> State:
        """A read-only ledger view holding nothing but the proven entries."""
        return State(Overlay(self.backend))


@dataclass(frozen=True)
class _Answer:
    height: int
    lo: bytes
    hi: bytes
    program: bytes
    entries: list[tuple[bytes, bytes]]
    more: bool


def read(rpc: CometRpc, chain_id: str, keys: Sequence[bytes] = (), ranges: Sequence[tuple[bytes, bytes]] = (),
         trusted: Sequence[Validator] | None = None) -> ProvenState:
    """Prove ``keys`` and ``ranges`` at one height; raise VerificationError if anything fails to verify."""
    for _ in range(MAX_ATTEMPTS):
        answers = [_ask(rpc, f"{RAW_PATH}{key.hex()}", key, key + b"\x00") for key in keys]
        answers += [_ask(rpc, f"{RAW_PATH}{lo.hex()}/{hi.hex()}", lo, hi) for lo, hi in ranges]
        heights = {answer.height for answer in answers}
        if len(heights) == 1:
            break
    else:
        raise VerificationError("the node's answers kept coming from different heights")
    height = heights.pop()
    try:
        header = fetch_verified_header(rpc, height + 1, chain_id, trusted)
    except LightClientError as exc:
        raise VerificationError(str(exc)) from None
    proven = ProvenState(height, header)
    for answer in answers:
        try:
            verify_range(header.app_hash, answer.lo, answer.hi, answer.program, answer.entries)
        except ProofError as exc:
            raise VerificationError(f"the proof of {answer.lo.hex()}: {exc}") from None
        proven.backend.write(list(answer.entries))
        if answer.more:
            proven.truncated.append((answer.lo, answer.hi))
    return proven


def _ask(rpc: CometRpc, path: str, lo: bytes, hi: bytes) -> _Answer:
    response: dict[str, Any] = rpc.call("abci_query", path=path, data="", height="0", prove=True)["response"]
    code = int(response.get("code", 0))
    if code not in (0, errors.NotFound.code):
        raise QueryRefused(f"query {path}: {response.get('log', '')} (code {code})")
    ops = (response.get("proofOps") or response.get("proof_ops") or {}).get("ops") or []
    if len(ops) != 1 or ops[0].get("type") != PROOF_TYPE:
        raise VerificationError(f"the node gave no {PROOF_TYPE} proof for {path}")
    try:
        value = base64.b64decode(response.get("value") or "")
        proven_lo, proven_hi, program = parse_op_data(base64.b64decode(ops[0].get("key") or ""),
                                                      base64.b64decode(ops[0].get("data") or ""))
        single = hi == lo + b"\x00"
        if single:
            entries, more = ([(lo, value)] if code == 0 else []), False
        else:
            entries, more = decode_range_answer(value)
    except (ValueError, ProofError) as exc:
        raise VerificationError(f"malformed proof for {path}: {exc}") from None
    # The proof must be about what was asked: the same key, or the asked range (up to where it stopped).
    if proven_lo != lo or proven_hi > hi or (proven_hi < hi and not more) or (single and proven_hi != hi):
        raise VerificationError(f"the node proved another range than {path} asked for")
    return _Answer(int(response.get("height", 0)), proven_lo, proven_hi, bytes(program), entries, more)
