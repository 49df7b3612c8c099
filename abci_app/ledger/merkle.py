"""The authenticated state: a Merkle-Patricia trie over the raw keys (docs/state.md, "App hash").

**Key bits.** A key is read as a bit string: for each byte, a 1 followed by the
byte's 8 bits (most significant first), and after the last byte a 0. The
encoding is prefix-free (no key's bits are a prefix of another's) and keeps
byte order (comparing bit strings is comparing keys).

**Shape.** The tree over a set of keys is the compressed binary trie of their
bit strings: one key is a leaf; several keys make an inner node at the first
bit where they do not all agree (its *split bit*), with the keys that have a 0
there on the left and those with a 1 on the right. The shape is a function of
the set of keys alone, never of the order they were written in, so a state
restored from a snapshot has the same root as the state built block by block.
In-order, the leaves are the keys in ascending order.

**Hashes** (SHA-256; ``be32`` is a big-endian unsigned 32-bit length)::

    leaf  = SHA-256(0x00 || be32(len(key)) || key || value)
    inner = SHA-256(0x01 || left || right)
    root of the empty tree = 32 zero bytes

**Updates.** ``Trie.update`` applies a block's write set, sorted, in one
recursive pass, so an inner node above several written keys is hashed once.
Versions are immutable and share unchanged subtrees; ``persist`` lists the
store writes of the nodes a version added and the positions it removed.

**Small subtrees are not stored.** Most nodes a block touches are near the
leaves. A subtree of at most ``SMALL_KEYS`` keys has no records: it is rebuilt
from the state (the keys in its range) when its parent is loaded, and checked
against the hash its parent's record holds. Only the nodes above hold records.

**Storage.** An inner node of more than ``SMALL_KEYS`` keys is stored under
``\\x00meta/trie/`` + its position (the bytes of its first ``bit`` bits, later
bits zeroed, then be32 of its split bit), overwritten in place when its hash
changes. A record is fixed-size: the two children's hashes, split bits and key
counts. Keys are not stored in the tree: the first state key in a child's key
range is a key below it, and a small child is exactly the state keys in its
range, so loading a node reads the state (and checks a small child against the
values it hashes). ``\\x00meta/trie_root`` holds the root's hash, split bit
and key count. Nodes are loaded on first use and kept in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import msgspec

META = b"\x00meta/"
"""Keys under this prefix describe the store; they are outside the state and the tree."""
TRIE_NODE = META + b"trie/"
TRIE_ROOT = META + b"trie_root"
META_END = META[:-1] + bytes([META[-1] + 1])
EMPTY_ROOT = bytes(32)
HASH_BYTES = 32
SMALL_KEYS = 32
"""Subtrees of at most this many keys have no store records (a storage choice: hashes do not depend on it)."""

_LEAF_TAG = b"\x00"
_INNER_TAG = b"\x01"

# A path through the trie recurses once per inner node; keys are short (tens of bytes), but a
# path may be as deep as the longest key has bits (9 per byte). Python 3.11 does not use the C
# stack for Python-to-Python calls, so a higher limit is safe.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))


class TrieError(RuntimeError):
    """The stored tree is missing a node or a node does not match its hash (a corrupted store)."""


# -- hashing ------------------------------------------------------------------------------------
def leaf_hash(key: bytes, value: bytes) -> bytes:
    return hashlib.sha256(_LEAF_TAG + len(key).to_bytes(4, "big") + key + value).digest()


def _leaf_prefix(key: bytes) -> bytes:
    return _LEAF_TAG + len(key).to_bytes(4, "big")


_LEAF_PREFIXES = [_LEAF_TAG + length.to_bytes(4, "big") for length in range(256)]


def inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_INNER_TAG + left + right).digest()


# -- key bits ---------------------------------------------------------------------------------------
def common_bits(a: bytes, b: bytes) -> int:
    """Index of the first bit where the bit strings of two keys differ (``9 * len`` if they are equal)."""
    n = min(len(a), len(b))
    if len(a) == len(b):
        x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    else:
        x = int.from_bytes(a[:n], "big") ^ int.from_bytes(b[:n], "big")
    if x == 0:
        # One key is a prefix of the other: the shorter one's end bit (0) meets a byte's 1.
        return 9 * n
    index = n - 1 - (x.bit_length() - 1) // 8
    return 9 * index + 9 - (a[index] ^ b[index]).bit_length()


def bit_at(key: bytes, index: int) -> int:
    """Bit ``index`` of a key's bit string (the key must reach that bit, as every key below a node does)."""
    group, offset = divmod(index, 9)
    if offset == 0:
        return 1 if group < len(key) else 0
    return (key[group] >> (8 - offset)) & 1


_MASKS = [0] + [(0xFF00 >> (offset - 1)) & 0xFF for offset in range(1, 9)]
"""_MASKS[offset]: the bits of a key byte that lie before bit ``offset`` of its 9-bit group."""


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key that starts with ``prefix`` (None: no such key)."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes([trimmed[-1] + 1]) if trimmed else None


def region(pkey: bytes, bit: int) -> Region:
    """Where the node splitting at ``bit`` with prefix ``pkey`` lies among the keys (``Region``)."""
    group, offset = divmod(bit, 9)
    base = pkey[:group]
    if offset == 0:
        # The split is on an end bit: the one key that ends here is on the left, longer keys on the right.
        return base, base + b"\x00", _prefix_end(base)
    byte = pkey[group] & _MASKS[offset]
    step = 0x100 >> (offset - 1)
    upper = base + bytes((byte + step,)) if byte + step < 0x100 else _prefix_end(base)
    return base + bytes((byte,)), base + bytes((byte | (0x80 >> (offset - 1)),)), upper


Region = tuple[bytes, bytes, bytes | None]
"""(lower, middle, upper) of an inner node: every key below it is in [lower, upper) (upper None:
no bound), and those below ``middle`` are on its left."""


def position(pkey: bytes, bit: int) -> bytes:
    """A node's position: the bytes holding its first ``bit`` bits (later bits zeroed), then be32(bit)."""
    group, offset = divmod(bit, 9)
    if offset == 0:
        return pkey[:group] + bit.to_bytes(4, "big")
    return pkey[:group] + bytes((pkey[group] & _MASKS[offset],)) + bit.to_bytes(4, "big")


# -- nodes --------------------------------------------------------------------------------------------
# msgspec Structs: created in C, and not tracked by the cyclic garbage collector (gc=False), which
# is safe because the nodes of a tree never form a cycle. A block creates thousands of nodes.
class Leaf(msgspec.Struct, gc=False):
    key: bytes
    hash: bytes
    size: ClassVar[int] = 1


class Stub(msgspec.Struct, gc=False):
    """An inner node not loaded yet: split bit, hash, key count, and the key range its keys are in."""

    bit: int
    hash: bytes
    size: int
    lower: bytes
    upper: bytes | None


class Inner(msgspec.Struct, gc=False):
    """An inner node. ``pkey`` holds its first ``bit`` bits (a key below it); ``size`` counts its keys."""

    bit: int
    pkey: bytes
    left: Node
    right: Node
    hash: bytes
    size: int
    place: Region | None = None
    """Cached ``region(pkey, bit)`` (set on first navigation)."""
    pos: bytes | None = None
    """Cached ``position(pkey, bit)`` (set on first write)."""
    saved: bool = False
    """Its record in the store is up to date (nodes of more than SMALL_KEYS keys have one)."""


Node = Leaf | Inner | Stub
Reader = Callable[[bytes], bytes | None]
Scan = Callable[[bytes, bytes | None], Iterator[tuple[bytes, bytes]]]
"""The state's keys and values in [lower, upper), in key order."""
_sha256 = hashlib.sha256
_RECORD = struct.Struct(">32s32sIIQQ")
"""An inner node's record: left hash, right hash, left split bit, right split bit (0 for a
leaf), left key count, right key count (a count up to SMALL_KEYS: rebuilt from the state)."""
_ROOT = struct.Struct(">32sIQ")
"""The root's record: hash, split bit (0 for a leaf), key count."""


def place_of(node: Inner) -> Region:
    place = node.place
    if place is None:
        place = node.place = region(node.pkey, node.bit)
    return place


def pos_of(node: Inner) -> bytes:
    pos = node.pos
    if pos is None:
        pos = node.pos = position(node.pkey, node.bit)
    return pos


@dataclass
class TrieStats:
    """Counters shared by the versions of one tree (bounded caching, benchmarks)."""

    loaded: int = 0
    """Nodes read from the store."""
    created: int = 0
    """Nodes written to the store."""


# -- the tree ---------------------------------------------------------------------------------------------
class Trie:
    """One immutable version of the tree; loads stored nodes on first use.

    A record names its children by hash, split bit and key count only: the keys
    come from the state itself (``scan``: the first state key in a child's key
    range is a key below it, and a small child is exactly the keys in its
    range), so a record has a fixed size and a rebuilt small child is checked
    against the stored values.
    """

    __slots__ = ("_reader", "_scan", "removed", "root", "stats")

    def __init__(self, reader: Reader, scan: Scan, root: Node | None = None,
                 removed: frozenset[bytes] = frozenset(), stats: TrieStats | None = None) -> None:
        self._reader = reader
        self._scan = scan
        self.root = root
        self.removed = removed
        """Store keys of nodes this version no longer has (to delete at commit, unless rewritten)."""
        self.stats = stats if stats is not None else TrieStats()

    @classmethod
    def open(cls, reader: Reader, scan: Scan) -> Trie:
        """The committed tree of a store (empty if none was written)."""
        trie = cls(reader, scan)
        raw = reader(TRIE_ROOT)
        if raw is not None:
            if len(raw) != _ROOT.size:
                raise TrieError("malformed root record")
            hash_, bit, size = _ROOT.unpack(raw)
            trie.root = trie._child(hash_, bit, size, b"", None)
        return trie

    @property
    def root_hash(self) -> bytes:
        return EMPTY_ROOT if self.root is None else self.root.hash

    def unloaded(self) -> Trie:
        """This (persisted) version with its stored nodes dropped from memory, to be reloaded on use."""
        root = self.root
        if type(root) is Inner and root.size > SMALL_KEYS:
            if not root.saved:
                raise ValueError("only a persisted version can be unloaded")
            root = Stub(root.bit, root.hash, root.size, b"", None)
        return Trie(self._reader, self._scan, root, self.removed, TrieStats())

    # -- navigation ---------------------------------------------------------------------
    def load(self, stub: Stub) -> Inner:
        found = next(self._scan(stub.lower, stub.upper), None)
        if found is None:
            raise TrieError(f"no state key in the range of a tree node ({stub.lower.hex()}..)")
        pkey = found[0]
        pos = position(pkey, stub.bit)
        raw = self._reader(TRIE_NODE + pos)
        if raw is None or len(raw) != _RECORD.size:
            raise TrieError(f"tree node {pos.hex()} is missing or malformed")
        left_hash, right_hash, left_bit, right_bit, left_size, right_size = _RECORD.unpack(raw)
        if inner_hash(left_hash, right_hash) != stub.hash or left_size + right_size != stub.size:
            raise TrieError(f"tree node {pos.hex()} does not match its hash")
        place = region(pkey, stub.bit)
        left = self._child(left_hash, left_bit, left_size, place[0], place[1])
        right = self._child(right_hash, right_bit, right_size, place[1], place[2])
        self.stats.loaded += 1
        return Inner(stub.bit, pkey, left, right, stub.hash, stub.size, place, pos, saved=True)

    def _child(self, hash_: bytes, bit: int, size: int, lower: bytes, upper: bytes | None) -> Leaf | Inner | Stub:
        if size > SMALL_KEYS:
            return Stub(bit, hash_, size, lower, upper)
        items = list(itertools.islice(self._scan(lower, upper), size + 1))
        found = _build([key for key, _ in items], [leaf_hash(key, value) for key, value in items], 0,
                       len(items)) if items else None
        if found is None or len(items) != size or found.hash != hash_:
            raise TrieError(f"the state in {lower.hex()}.. does not match the tree")
        return found

    def resolved(self, node: Node) -> Leaf | Inner:
        return self.load(node) if type(node) is Stub else node  # type: ignore[return-value]

    def left(self, node: Inner) -> Leaf | Inner:
        child = node.left
        if type(child) is Stub:
            child = node.left = self.load(child)  # same node, now in memory
        return child  # type: ignore[return-value]

    def right(self, node: Inner) -> Leaf | Inner:
        child = node.right
        if type(child) is Stub:
            child = node.right = self.load(child)
        return child  # type: ignore[return-value]

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, leaf hash), in key order (tests and checks; loads the whole tree)."""
        if self.root is None:
            return
        stack: list[Leaf | Inner] = [self.resolved(self.root)]
        while stack:
            node = stack.pop()
            if type(node) is Leaf:
                yield node.key, node.hash
            else:
                assert type(node) is Inner
                stack.append(self.right(node))
                stack.append(self.left(node))

    # -- updates --------------------------------------------------------------------------
    def update(self, writes: Mapping[bytes, bytes | None]) -> Trie:
        """The version after ``writes`` (key -> value, or None for a deletion); META keys are skipped."""
        keys = sorted(writes)
        start, stop = bisect_left(keys, META), bisect_left(keys, META_END)
        if start < stop:
            del keys[start:stop]
        if not keys:
            return self
        sha256, get, lengths = _sha256, writes.__getitem__, _LEAF_PREFIXES
        hashes = [None if (value := get(key)) is None
                  else sha256((lengths[len(key)] if len(key) < 256 else _leaf_prefix(key)) + key + value).digest()
                  for key in keys]
        gone: set[bytes] = set()
        root = _apply(self, keys, hashes, gone)
        return Trie(self._reader, self._scan, root, self.removed | gone if gone else self.removed, self.stats)

    def persist(self) -> list[tuple[bytes, bytes | None]]:
        """Store writes that make this version the stored one; marks its nodes as stored.

        Call it for the version being committed and write the result in the
        same atomic batch as the state (``CommittedStore.commit``).
        """
        writes: list[tuple[bytes, bytes | None]] = []
        root = self.root
        stack = [root] if type(root) is Inner and root.size > SMALL_KEYS and not root.saved else []
        pop, push, add, pack, small = stack.pop, stack.append, writes.append, _RECORD.pack, SMALL_KEYS
        while stack:
            node: Inner = pop()
            left, right = node.left, node.right
            left_leaf, right_leaf = type(left) is Leaf, type(right) is Leaf
            add((TRIE_NODE + (node.pos or pos_of(node)),
                 pack(left.hash, right.hash, 0 if left_leaf else left.bit,  # type: ignore[union-attr]
                      0 if right_leaf else right.bit, left.size, right.size)))  # type: ignore[union-attr]
            node.saved = True
            if left.size > small and type(left) is Inner and not left.saved:
                push(left)
            if right.size > small and type(right) is Inner and not right.saved:
                push(right)
        self.stats.created += len(writes)
        if self.removed:
            written = {key for key, _ in writes}
            writes.extend((key, None) for key in sorted(self.removed - written))
            self.removed = frozenset()
        if root is None:
            writes.append((TRIE_ROOT, None))
        else:
            writes.append((TRIE_ROOT, _ROOT.pack(root.hash, 0 if type(root) is Leaf else root.bit, root.size)))  # type: ignore[union-attr]
        return writes


def _apply(trie: Trie, keys: list[bytes], hashes: list[bytes | None], removed: set[bytes]) -> Node | None:
    """``trie``'s root with the sorted writes applied: ``hashes[i]`` is the new leaf hash of
    ``keys[i]``, or None for a deletion. Positions of stored nodes that disappear go to ``removed``.

    One recursive pass over the touched nodes (written as closures: this is the hot loop of a block).
    """
    load = trie.load
    sha256 = _sha256
    small = SMALL_KEYS

    def merge(node: Node | None, lo: int, hi: int) -> Node | None:
        """``node``'s subtree with the writes ``lo:hi`` applied (all of them belong in its region)."""
        if node is None:
            return build(lo, hi)
        kind = type(node)
        if kind is Leaf:
            if hi - lo == 1 and keys[lo] == node.key:  # type: ignore[union-attr]  # the usual case: a new value
                new = hashes[lo]
                if new is None:
                    return None
                return node if new == node.hash else Leaf(node.key, new)  # type: ignore[union-attr]
            return merge_leaf(node, lo, hi)  # type: ignore[arg-type]
        if kind is Stub:
            node = load(node)  # type: ignore[arg-type]
        lower, middle, upper = node.place or place_of(node)  # type: ignore[union-attr, arg-type]
        first, last = keys[lo], keys[hi - 1]
        if lower <= first and (upper is None or last < upper):
            split = bisect_left(keys, middle, lo, hi)
            old_left, old_right = node.left, node.right  # type: ignore[union-attr]
            left = merge(old_left, lo, split) if split > lo else old_left
            right = merge(old_right, split, hi) if split < hi else old_right
            if left is old_left and right is old_right:
                return node
            if left is None or right is None:
                # An inner node with an empty side is replaced by the other side.
                if node.size > small:
                    removed.add(TRIE_NODE + (node.pos or pos_of(node)))  # type: ignore[union-attr, arg-type]
                return left if right is None else right
            size = left.size + right.size
            if node.size > small >= size:  # small now: its record goes
                removed.add(TRIE_NODE + (node.pos or pos_of(node)))  # type: ignore[union-attr, arg-type]
            # Same place: a stored node's record is overwritten at commit.
            return Inner(node.bit, node.pkey, left, right, sha256(b"\x01" + left.hash + right.hash).digest(),  # type: ignore[union-attr]
                         size, node.place, node.pos)  # type: ignore[union-attr]
        # Some writes leave the node's prefix, at bit `shared` (sorted keys: those sharing at least n bits
        # with the prefix are contiguous, so the fewest shared bits are at an end). A new inner node splits
        # there, with the node (and the writes inside its prefix) on one side and the new keys on the other.
        pkey = node.pkey  # type: ignore[union-attr]
        shared = min(common_bits(first, pkey), common_bits(last, pkey))
        place = region(pkey, shared)
        split = bisect_left(keys, place[1], lo, hi)
        if bit_at(pkey, shared) == 0:
            left, right = merge(node, lo, split) if split > lo else node, build(split, hi)
        else:
            left, right = build(lo, split), merge(node, split, hi) if split < hi else node
        if left is None or right is None:
            return left if right is None else right
        return Inner(shared, pkey, left, right, sha256(b"\x01" + left.hash + right.hash).digest(),
                     left.size + right.size, place)

    def merge_leaf(leaf: Leaf, lo: int, hi: int) -> Node | None:
        new = hashes[lo]
        if hi - lo == 1 and new is not None:
            # One new key beside a leaf (most insertions): the two-leaf subtree ``build_pairs`` would make.
            key = keys[lo]
            if key < leaf.key:
                return Inner(common_bits(key, leaf.key), key, Leaf(key, new), Leaf(leaf.key, leaf.hash),
                             sha256(b"\x01" + new + leaf.hash).digest(), 2)
            return Inner(common_bits(leaf.key, key), leaf.key, Leaf(leaf.key, leaf.hash), Leaf(key, new),
                         sha256(b"\x01" + leaf.hash + new).digest(), 2)
        at = bisect_left(keys, leaf.key, lo, hi)
        if at < hi and keys[at] == leaf.key:
            pairs = list(zip(keys[lo:hi], hashes[lo:hi], strict=True))
        else:
            pairs = [*zip(keys[lo:at], hashes[lo:at], strict=True), (leaf.key, leaf.hash),
                     *zip(keys[at:hi], hashes[at:hi], strict=True)]
        return build_pairs(pairs)

    deletes = None in hashes

    def build(lo: int, hi: int) -> Node | None:
        """A new subtree of the insertions among writes ``lo:hi`` (deletions of absent keys do nothing)."""
        if deletes and None in hashes[lo:hi]:
            return build_pairs(list(zip(keys[lo:hi], hashes[lo:hi], strict=True)))
        return _build(keys, hashes, lo, hi) if hi > lo else None  # type: ignore[arg-type]

    return merge(trie.root, 0, len(keys))


def build_pairs(pairs: list[tuple[bytes, bytes | None]]) -> Leaf | Inner | None:
    """The trie of sorted, distinct (key, leaf hash) pairs, skipping deletions (None)."""
    kept = [(key, hash_) for key, hash_ in pairs if hash_ is not None]
    if not kept:
        return None
    return _build([k for k, _ in kept], [h for _, h in kept], 0, len(kept))


def _build(keys: list[bytes], hashes: list[bytes], lo: int, hi: int) -> Leaf | Inner:
    """The trie of sorted, distinct keys ``lo:hi`` (non-empty).

    Between adjacent keys i-1 and i sits the inner node at bit ``common_bits(keys[i-1], keys[i])``;
    the nodes form a Cartesian tree on those bits (a split's parent is the nearer neighbouring
    split with a smaller bit), built left to right with a stack of splits still open to the right.
    """
    sha256 = _sha256
    node: Leaf | Inner = Leaf(keys[lo], hashes[lo])
    open_: list[tuple[int, bytes, Leaf | Inner]] = []
    previous = keys[lo]
    for index in range(lo + 1, hi):
        key = keys[index]
        if len(key) == len(previous):  # common_bits, inlined: this loop runs for every inserted key
            x = int.from_bytes(previous, "big") ^ int.from_bytes(key, "big")
            byte = len(key) - 1 - (x.bit_length() - 1) // 8
            bit = 9 * byte + 9 - (previous[byte] ^ key[byte]).bit_length()
        else:
            bit = common_bits(previous, key)
        while open_ and open_[-1][0] > bit:  # deeper splits end at the previous key
            split, pkey, left = open_.pop()
            node = Inner(split, pkey, left, node, sha256(b"\x01" + left.hash + node.hash).digest(),
                         left.size + node.size)
        open_.append((bit, previous, node))
        node = Leaf(key, hashes[index])
        previous = key
    while open_:
        split, pkey, left = open_.pop()
        node = Inner(split, pkey, left, node, sha256(b"\x01" + left.hash + node.hash).digest(), left.size + node.size)
    return node


def reference_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root over ``(key, value)`` pairs by the definition alone, recursively (tests, checks)."""
    pairs = sorted(items)
    if not pairs:
        return EMPTY_ROOT

    def root(part: list[tuple[bytes, bytes]]) -> bytes:
        if len(part) == 1:
            return leaf_hash(*part[0])
        split_bit = common_bits(part[0][0], part[-1][0])
        left = [pair for pair in part if bit_at(pair[0], split_bit) == 0]
        right = part[len(left):]
        return inner_hash(root(left), root(right))

    return root(pairs)
