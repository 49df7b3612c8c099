"""The state tree (abci_app/ledger/merkle.py) against a naive recomputation from its definition."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from abci_app.ledger.merkle import (
    EMPTY_ROOT,
    META,
    SMALL_KEYS,
    TRIE_NODE,
    TRIE_ROOT,
    Inner,
    Trie,
    TrieError,
    bit_at,
    common_bits,
    inner_hash,
    leaf_hash,
    reference_root,
)
from abci_app.ledger.store import CommittedStore, MemoryBackend

# Few distinct bytes, so keys share long prefixes and some keys are prefixes of others.
KEYS = st.binary(max_size=6).map(lambda raw: bytes(b"ab\x00\xff"[c % 4] for c in raw))
VALUES = st.binary(max_size=4)
BATCHES = st.dictionaries(KEYS, st.none() | VALUES, max_size=40)


def bits(key: bytes) -> str:
    """A key's bit string, spelled out from the definition (1 + 8 bits per byte, then 0)."""
    return "".join("1" + format(byte, "08b") for byte in key) + "0"


class Node:
    """A store holding state and tree together, as CommittedStore commits them."""

    def __init__(self) -> None:
        self.backend = MemoryBackend()
        self.store = CommittedStore(self.backend)
        self.state: dict[bytes, bytes] = {}

    def apply(self, trie: Trie, writes: dict[bytes, bytes | None]) -> Trie:
        for key, value in writes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        return trie.update(writes)

    def persist(self, trie: Trie, writes: dict[bytes, bytes | None]) -> None:
        self.backend.write([*writes.items(), *trie.persist()])

    def reopen(self) -> Trie:
        return Trie.open(self.backend.get, self.store.scan)

    def records(self) -> int:
        return sum(1 for _ in self.backend.iterate(TRIE_NODE, TRIE_NODE[:-1] + b"0"))


def stored_inner_nodes(trie: Trie) -> int:
    """Inner nodes with more than SMALL_KEYS keys below them: exactly those that have a record."""
    count, stack = 0, [trie.root] if trie.root is not None else []
    while stack:
        node = trie.resolved(stack.pop())
        if type(node) is Inner:
            count += node.size > SMALL_KEYS
            stack += [trie.left(node), trie.right(node)]
    return count


# -- definitions ----------------------------------------------------------------------------------
@given(st.binary(max_size=8), st.binary(max_size=8))
def test_common_bits_is_the_first_difference_of_the_bit_strings(a: bytes, b: bytes) -> None:
    if a == b:
        return
    first, second = bits(a), bits(b)
    expected = next(i for i, (x, y) in enumerate(zip(first, second, strict=False)) if x != y)
    assert common_bits(a, b) == expected
    assert bit_at(a, expected) == int(first[expected]) and bit_at(b, expected) == int(second[expected])


@given(st.binary(max_size=8), st.binary(max_size=8))
def test_bit_strings_are_prefix_free_and_keep_byte_order(a: bytes, b: bytes) -> None:
    if a != b:
        assert not bits(a).startswith(bits(b)) and not bits(b).startswith(bits(a))
    assert (bits(a) < bits(b)) == (a < b)


def test_empty_tree() -> None:
    node = Node()
    trie = node.store.trie
    assert trie.root is None and trie.root_hash == EMPTY_ROOT == reference_root([])
    assert trie.update({}) is trie
    assert trie.update({b"absent": None}).root_hash == EMPTY_ROOT


def test_single_key_is_its_leaf() -> None:
    trie = Node().store.trie.update({b"k": b"v"})
    assert trie.root_hash == leaf_hash(b"k", b"v") == hashlib.sha256(b"\x00\x00\x00\x00\x01kv").digest()


def test_two_keys_split_at_their_first_different_bit() -> None:
    trie = Node().store.trie.update({b"a": b"1", b"b": b"2", b"ab": b"3"})
    # "a" ends where "ab" goes on: "a" and "ab" split at bit 9, "a…" and "b" at bit 7.
    assert common_bits(b"a", b"ab") == 9 and common_bits(b"ab", b"b") == 7
    expected = inner_hash(inner_hash(leaf_hash(b"a", b"1"), leaf_hash(b"ab", b"3")), leaf_hash(b"b", b"2"))
    assert trie.root_hash == expected == reference_root([(b"a", b"1"), (b"b", b"2"), (b"ab", b"3")])


def test_empty_values_and_empty_key_are_ordinary() -> None:
    items = [(b"", b""), (b"\x00", b""), (b"zone/x", b"")]
    assert Node().store.trie.update(dict(items)).root_hash == reference_root(items)


def test_meta_keys_are_outside_the_tree() -> None:
    trie = Node().store.trie.update({b"a": b"1", META + b"height": b"x", META + b"anything": b"y"})
    assert trie.root_hash == leaf_hash(b"a", b"1")


def test_keys_that_are_prefixes_of_each_other_nest_deeply() -> None:
    items = [(b"a" * length, bytes([length % 256])) for length in range(1, 400)]
    node = Node()
    trie = node.apply(node.store.trie, dict(items))
    assert trie.root_hash == reference_root(items)
    node.persist(trie, dict(items))
    reopened = node.reopen()
    removal = {b"a" * length: None for length in range(1, 400, 3)}
    assert node.apply(reopened, removal).root_hash == reference_root(node.state.items())


def test_long_shared_prefixes() -> None:
    prefix = b"jrnl/" + b"f" * 40 + b"/"
    items = [(prefix + i.to_bytes(8, "big"), b"x") for i in range(0, 3000, 7)]
    assert Node().store.trie.update(dict(items)).root_hash == reference_root(items)


@given(st.lists(BATCHES, max_size=6), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_root_is_the_definition_after_any_batches(batches: list[dict[bytes, bytes | None]],
                                                  rng: random.Random) -> None:
    node = Node()
    trie = node.store.trie
    pending: dict[bytes, bytes | None] = {}
    for writes in batches:
        trie = node.apply(trie, writes)
        pending.update(writes)
        assert trie.root_hash == reference_root(node.state.items())
        if rng.random() < 0.5:
            node.persist(trie, pending)
            pending = {}
            trie = node.reopen() if rng.random() < 0.5 else trie


@given(st.dictionaries(KEYS, VALUES, max_size=60), st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_shape_does_not_depend_on_write_order(items: dict[bytes, bytes], rng: random.Random) -> None:
    """History independence: a restored state (one batch) has the root of the state built block by block."""
    pairs = list(items.items())
    rng.shuffle(pairs)
    trie = Node().store.trie
    while pairs:
        cut = rng.randint(1, len(pairs))
        trie = trie.update(dict(pairs[:cut]))
        pairs = pairs[cut:]
    assert trie.root_hash == Node().store.trie.update(items).root_hash


def test_deleting_everything_empties_the_store() -> None:
    node = Node()
    items = {b"k%03d" % i: b"v" for i in range(200)}
    trie = node.apply(node.store.trie, dict(items))
    node.persist(trie, dict(items))
    assert node.records() == stored_inner_nodes(node.reopen()) > 0
    trie = node.apply(node.reopen(), dict.fromkeys(items))
    node.persist(trie, dict.fromkeys(items))
    assert trie.root_hash == EMPTY_ROOT and node.records() == 0 and node.backend.get(TRIE_ROOT) is None


# -- persistence --------------------------------------------------------------------------------------
class TreeMachine(RuleBasedStateMachine):
    """Blocks of writes, commits and restarts in any order: the root is always the definition's,
    and the store holds exactly one record per stored node (nothing left behind)."""

    @initialize()
    def start(self) -> None:
        self.node = Node()
        self.trie = self.node.store.trie
        self.pending: dict[bytes, bytes | None] = {}

    @rule(writes=BATCHES)
    def block(self, writes: dict[bytes, bytes | None]) -> None:
        self.trie = self.node.apply(self.trie, writes)
        self.pending.update(writes)

    @rule()
    def commit(self) -> None:
        self.node.persist(self.trie, self.pending)
        self.pending = {}
        assert self.node.records() == stored_inner_nodes(self.node.reopen())

    @rule()
    def restart(self) -> None:
        """A crash: uncommitted writes are lost, the committed tree is read back lazily."""
        for key in self.pending:
            stored = self.node.backend.get(key)
            if stored is None:
                self.node.state.pop(key, None)
            else:
                self.node.state[key] = stored
        self.pending = {}
        self.trie = self.node.reopen()

    @invariant()
    def root_matches_definition(self) -> None:
        assert self.trie.root_hash == reference_root(self.node.state.items())


TestTreeMachine = TreeMachine.TestCase
TestTreeMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def test_large_tree_reloads_lazily_and_updates_like_in_memory() -> None:
    rng = random.Random(7)
    node = Node()
    items = {b"acct/" + rng.randbytes(20).hex().encode(): rng.randbytes(40) for _ in range(3000)}
    trie = node.apply(node.store.trie, dict(items))
    node.persist(trie, dict(items))
    reopened = node.reopen()
    assert reopened.stats.loaded == 0  # nothing read until used
    changes: dict[bytes, bytes | None] = {key: b"new" for key in rng.sample(sorted(items), 50)}
    changes.update({b"acct/" + rng.randbytes(20).hex().encode(): b"ins" for _ in range(50)})
    changes.update(dict.fromkeys(rng.sample(sorted(items), 50)))
    in_memory = trie.update(changes)
    lazily = node.apply(reopened, changes)
    assert lazily.root_hash == in_memory.root_hash == reference_root(node.state.items())
    assert 0 < reopened.stats.loaded < 400  # only the paths to the changed keys


def test_tree_that_does_not_match_the_state_is_refused() -> None:
    node = Node()
    items = {b"k%03d" % i: b"v" for i in range(100)}
    node.persist(node.apply(node.store.trie, dict(items)), dict(items))
    node.backend.write([(b"k050", b"tampered")])
    with pytest.raises(TrieError):
        list(node.reopen().items())


def test_missing_record_is_refused() -> None:
    node = Node()
    items = {b"k%03d" % i: b"v" for i in range(100)}
    node.persist(node.apply(node.store.trie, dict(items)), dict(items))
    victim = next(iter(node.backend.iterate(TRIE_NODE, TRIE_NODE[:-1] + b"0")))[0]
    node.backend.write([(victim, None)])
    with pytest.raises(TrieError):
        list(node.reopen().items())


def iter_leaves(trie: Trie) -> Iterator[bytes]:
    return (key for key, _ in trie.items())


def test_items_are_in_key_order() -> None:
    items = {bytes([a, b]): b"" for a in range(0, 256, 17) for b in range(0, 256, 51)}
    assert list(iter_leaves(Node().store.trie.update(items))) == sorted(items)
