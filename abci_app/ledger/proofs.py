"""Proofs against the app hash: raw state queries and the range proof that answers them.

One proof format serves every question (docs/queries.md, "Proofs"): *the state
keys in [lo, hi) are exactly these, with these values*. A key's value is the
range [key, key || 0x00), which holds that key alone; a key's absence is the
same range proven empty; a statement is the range of an account's journal
between two times.

The proof is a postfix program over the tree (``abci_app/ledger/merkle.py``)
that rebuilds the root from the answered entries, the leaves just outside the
range, and the hashes of the subtrees beside them::

    0x01 LEAF   be32(len k) || k || be32(len v) || v   a leaf outside the range, with its value
    0x02 ENTRY  be32(len k) || k                       a leaf inside the range: the next answered entry
    0x03 HASH   32 bytes                               a subtree not opened
    0x04 NODE                                          pops right, then left; pushes SHA-256(0x01||left||right)

A leaf pushes SHA-256(0x00 || be32(len k) || k || v). The verifier checks that
the program leaves exactly the app hash on the stack, and that the opened
leaves are one run of neighbours in the tree (no HASH between two leaves), in
strictly increasing key order, with ENTRY exactly for the keys in [lo, hi); a
HASH before the run needs the first leaf at or below ``lo``, a HASH after it
the last leaf at or above ``hi`` or right before it (``hi`` = its key || 0x00).
The tree keeps keys in order, so nothing else can hide in the range. A proven
key needs no neighbours; an absent key or a range end without a key at it
opens the neighbouring leaf. An empty tree has the empty program.

In CometBFT terms: ``ProofOps`` with one ``ProofOp`` of type
``gridledger:trie:v1``, ``key`` = lo, ``data`` = be32(len hi) || hi || program.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import msgspec

from abci_app.ledger import errors
from abci_app.ledger.merkle import EMPTY_ROOT, Inner, Leaf, Trie, TrieError, inner_hash, leaf_hash, place_of
from abci_app.ledger.store import CommittedStore

PROOF_TYPE = "gridledger:trie:v1"
LEAF, ENTRY, HASH, NODE = 1, 2, 3, 4
RAW_PATH = "/raw/"
MAX_RAW_ENTRIES = 5000
"""A range answer holds at most this many entries; the proof then covers the range up to the last one."""
MAX_PROGRAM_BYTES = 64 << 20


class ProofError(ValueError):
    """A proof does not show what it claims (tampered value, proof or app hash)."""


@dataclass(frozen=True)
class RangeProof:
    """The state keys in [lo, hi) are ``entries`` (key order), as the tree of root ``app_hash`` says."""

    lo: bytes
    hi: bytes
    entries: list[tuple[bytes, bytes]]
    program: bytes

    def op_data(self) -> bytes:
        return len(self.hi).to_bytes(4, "big") + self.hi + self.program


def key_range(key: bytes) -> tuple[bytes, bytes]:
    """The range that holds ``key`` alone."""
    return key, key + b"\x00"


# -- proving -------------------------------------------------------------------------------------------
def prove_range(store: CommittedStore, lo: bytes, hi: bytes, limit: int = MAX_RAW_ENTRIES) -> tuple[RangeProof, bool]:
    """The committed entries in [lo, hi) with their proof; True if more entries followed the ``limit``-th
    (the proof then covers [lo, last key || 0x00) only)."""
    entries = list(itertools.islice(store.scan(lo, hi), limit + 1))
    more = len(entries) > limit
    if more:
        entries = entries[:limit]
        hi = entries[-1][0] + b"\x00"
    trie = store.trie
    # Neighbours are opened only where the range's ends are not keys of the answer themselves.
    before = lo if entries and entries[0][0] == lo else _floor_below(trie, lo)
    after = next(store.scan(hi, None), None) if not entries or entries[-1][0] + b"\x00" != hi else entries[-1]
    program = bytearray()
    if trie.root is not None:
        _emit(trie, trie.resolved(trie.root), before, after[0] if after else None, lo, hi, store, program)
    return RangeProof(lo, hi, entries, bytes(program)), more


def _floor_below(trie: Trie, key: bytes) -> bytes | None:
    """The greatest key of the tree below ``key``."""
    if trie.root is None:
        return None
    node: Leaf | Inner | None = trie.resolved(trie.root)
    fallback: Leaf | Inner | None = None  # the left sibling to take if the right side has nothing below key
    while type(node) is Inner:
        lower, middle, upper = place_of(node)
        if key <= lower:
            node = None  # nothing here is below key
        elif upper is not None and key >= upper:
            break  # everything here is below key: its greatest key
        elif key > middle:
            fallback, node = trie.left(node), trie.right(node)
        else:
            node = trie.left(node)
    if type(node) is Leaf and node.key >= key:
        node = None
    if node is None:
        node = fallback
    while type(node) is Inner:
        node = trie.right(node)
    return node.key if type(node) is Leaf else None


def _emit(trie: Trie, node: Leaf | Inner, before: bytes | None, after: bytes | None, lo: bytes, hi: bytes,
          store: CommittedStore, out: bytearray) -> None:
    """Postfix program of ``node``: leaves from ``before`` to ``after`` opened, other subtrees as hashes."""
    if type(node) is Leaf:
        key = node.key
        if (before is not None and key < before) or (after is not None and key > after):
            out += bytes((HASH,)) + node.hash
        elif lo <= key < hi:
            out += bytes((ENTRY,)) + len(key).to_bytes(4, "big") + key
        else:
            value = store.get(key)
            if value is None:  # the tree names a key the store lacks: the store is damaged, not the request
                raise TrieError(f"state key {key.hex()} is in the tree but not in the store")
            out += bytes((LEAF,)) + len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value
        return
    if type(node) is not Inner:
        raise TrieError(f"unexpected tree node {type(node).__name__}")
    lower, _, upper = place_of(node)
    # A subtree's keys share a prefix: its key range is either around a key or wholly on one side.
    if (before is not None and upper is not None and upper <= before) or (after is not None and lower > after):
        out += bytes((HASH,)) + node.hash
        return
    _emit(trie, trie.left(node), before, after, lo, hi, store, out)
    _emit(trie, trie.right(node), before, after, lo, hi, store, out)
    out.append(NODE)


# -- verifying --------------------------------------------------------------------------------------------
def verify_range(app_hash: bytes, lo: bytes, hi: bytes, program: bytes, entries: list[tuple[bytes, bytes]]) -> None:
    """Check that the state under ``app_hash`` holds exactly ``entries`` in [lo, hi); raise ProofError if not."""
    if len(program) > MAX_PROGRAM_BYTES:
        raise ProofError("proof is too large")
    if lo >= hi:
        raise ProofError("empty range")
    stack: list[bytes] = []
    opened: list[bytes | None] = []  # in tree order: a leaf's key, or None for an unopened subtree
    answered = 0
    at = 0
    try:
        while at < len(program):
            op = program[at]
            at += 1
            if op in (LEAF, ENTRY):
                key, at = _field(program, at)
                if op == LEAF:
                    value, at = _field(program, at)
                    if lo <= key < hi:
                        raise ProofError(f"leaf {key.hex()} is inside the range but not an answered entry")
                else:
                    if answered == len(entries) or entries[answered][0] != key:
                        raise ProofError(f"the proof's entry {key.hex()} is not the next answered entry")
                    value = entries[answered][1]
                    answered += 1
                    if not lo <= key < hi:
                        raise ProofError(f"entry {key.hex()} is outside the range")
                stack.append(leaf_hash(key, value))
                opened.append(key)
            elif op == HASH:
                digest = program[at : at + 32]
                if len(digest) != 32:
                    raise ProofError("truncated hash in the proof")
                at += 32
                stack.append(bytes(digest))
                opened.append(None)
            elif op == NODE:
                if len(stack) < 2:
                    raise ProofError("NODE with fewer than two subtrees")
                right = stack.pop()
                stack.append(inner_hash(stack.pop(), right))
            else:
                raise ProofError(f"unknown proof operation {op}")
    except IndexError:
        raise ProofError("truncated proof") from None
    if answered != len(entries):
        raise ProofError(f"{len(entries) - answered} answered entries are not in the proof")
    root = stack[0] if len(stack) == 1 else None
    if not opened:
        root = EMPTY_ROOT if not stack else None
    if root is None:
        raise ProofError("the proof does not reduce to one root")
    if root != app_hash:
        raise ProofError(f"the proof's root {root.hex()} is not the app hash {app_hash.hex()}")
    _check_run(opened, lo, hi)


def _field(program: bytes, at: int) -> tuple[bytes, int]:
    size = int.from_bytes(program[at : at + 4], "big")
    end = at + 4 + size
    if len(program) < end or at + 4 > len(program):
        raise ProofError("truncated field in the proof")
    return bytes(program[at + 4 : end]), end


def _check_run(opened: list[bytes | None], lo: bytes, hi: bytes) -> None:
    """The opened leaves are one run of neighbours that covers [lo, hi)."""
    leaves = [index for index, key in enumerate(opened) if key is not None]
    if not leaves:
        if opened:
            raise ProofError("a non-empty tree needs a leaf next to the range")
        return
    first, last = leaves[0], leaves[-1]
    if last - first + 1 != len(leaves):
        raise ProofError("the opened leaves are not neighbours (a subtree between them is hidden)")
    keys: list[bytes] = [key for key in opened[first : last + 1] if key is not None]
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise ProofError("the opened leaves are not in key order")
    if first > 0 and keys[0] > lo:
        raise ProofError("a hidden subtree before the range may hold keys of the range")
    if last < len(opened) - 1 and keys[-1] < hi and keys[-1] + b"\x00" != hi:
        raise ProofError("a hidden subtree after the range may hold keys of the range")


def parse_op_data(lo: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    """(lo, hi, program) of a ``gridledger:trie:v1`` ProofOp."""
    hi, at = _field(data, 0)
    return lo, hi, data[at:]


# -- raw queries -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawAnswer:
    value: bytes
    key: bytes
    found: bool
    proof: RangeProof


def answer_raw(store: CommittedStore, path: str) -> RawAnswer:
    """``/raw/<hex key>``: the stored bytes; ``/raw/<hex lo>/<hex hi>``: the entries of a range.

    A range answers ``msgpack([[key, value], ...], more)``; ``more`` says the
    answer stopped at MAX_RAW_ENTRIES (the proof then covers up to the last key).
    """
    parts = path[len(RAW_PATH) :].split("/")
    if len(parts) == 1:
        key = _hex_arg(parts[0], "key")
        lo, hi = key_range(key)
        proof, _ = prove_range(store, lo, hi, limit=1)
        found = bool(proof.entries)
        return RawAnswer(proof.entries[0][1] if found else b"", key, found, proof)
    if len(parts) == 2:
        lo, hi = _hex_arg(parts[0], "lo"), _hex_arg(parts[1], "hi")
        if lo >= hi:
            raise errors.BadQuery("the range's lo must be below its hi")
        proof, more = prove_range(store, lo, hi)
        value = msgspec.msgpack.encode([[[key, value] for key, value in proof.entries], more])
        return RawAnswer(value, lo, True, proof)
    raise errors.BadQuery("raw queries are /raw/<hex key> or /raw/<hex lo>/<hex hi>")


def decode_range_answer(value: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    """The entries and the ``more`` flag of a /raw/<lo>/<hi> answer."""
    try:
        items, more = msgspec.msgpack.decode(value, type=tuple[list[tuple[bytes, bytes]], bool])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProofError(f"malformed range answer: {exc}") from None
    return [(bytes(k), bytes(v)) for k, v in items], more


def _hex_arg(text: str, what: str) -> bytes:
    if not text or len(text) > 2 * 4096 or len(text) % 2 or text.strip("0123456789abcdef"):
        raise errors.BadQuery(f"{what} {text[:40]!r} is not a key in lowercase hex")
    return bytes.fromhex(text)
