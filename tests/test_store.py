"""Storage: backends, write overlays, the committed store and the app hash."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from abci_app.app import LedgerApplication
from abci_app.ledger.merkle import TRIE_ROOT, leaf_hash, reference_root
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.store import (
    META,
    META_APP_HASH,
    META_HEIGHT,
    Backend,
    CommittedStore,
    LevelDBBackend,
    MemoryBackend,
    Overlay,
    StoreError,
    prefix_end,
    state_items,
)
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import Chain


@pytest.fixture(params=["memory", "leveldb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made: Backend = MemoryBackend() if request.param == "memory" else LevelDBBackend(tmp_path / "db")
    yield made
    made.close()


def filled(parent: Any, items: dict[bytes, bytes]) -> Any:
    overlay = Overlay(parent)
    for key, value in items.items():
        overlay.set(key, value)
    return overlay


# -- backends ----------------------------------------------------------------------------------
def test_backend_get_write_delete(backend: Backend) -> None:
    assert backend.get(b"a") is None
    backend.write([(b"a", b"1"), (b"b", b"2"), (b"empty", b"")])
    assert (backend.get(b"a"), backend.get(b"b"), backend.get(b"empty")) == (b"1", b"2", b"")
    backend.write([(b"a", None), (b"b", b"3"), (b"missing", None)])
    assert (backend.get(b"a"), backend.get(b"b"), backend.get(b"missing")) == (None, b"3", None)


def test_backend_iterate_is_ordered_and_half_open(backend: Backend) -> None:
    backend.write([(key, key.upper()) for key in (b"b", b"a/2", b"a/1", b"a", b"a0", b"\xff")])
    assert [k for k, _ in backend.iterate(b"a/", b"a0")] == [b"a/1", b"a/2"]
    assert list(backend.iterate(b"a", b"a/2")) == [(b"a", b"A"), (b"a/1", b"A/1")]
    assert [k for k, _ in backend.iterate(b"a0", None)] == [b"a0", b"b", b"\xff"]
    assert list(backend.iterate(b"c", b"d")) == []


def test_backends_agree(tmp_path: Path) -> None:
    memory, level = MemoryBackend(), LevelDBBackend(tmp_path / "db")
    batches = [[(b"k%d" % i, b"v%d" % i) for i in range(20)], [(b"k3", None), (b"k7", b"new"), (b"k99", None)]]
    for batch in batches:
        memory.write(batch)
        level.write(batch)
    assert list(memory.iterate(b"", None)) == list(level.iterate(b"", None))
    assert list(memory.iterate(b"k1", b"k5")) == list(level.iterate(b"k1", b"k5"))
    level.close()


# -- overlays -----------------------------------------------------------------------------------
def test_overlay_reads_buffer_first(backend: Backend) -> None:
    backend.write([(b"a", b"old"), (b"b", b"kept"), (b"c", b"gone")])
    overlay = Overlay(CommittedStore(backend))
    overlay.set(b"a", b"new")
    overlay.delete(b"c")
    assert (overlay.get(b"a"), overlay.get(b"b"), overlay.get(b"c"), overlay.get(b"d")) == (b"new", b"kept", None, None)
    assert backend.get(b"a") == b"old" and backend.get(b"c") == b"gone"  # nothing reaches the backend


def test_overlay_iterate_merges_in_key_order(backend: Backend) -> None:
    backend.write([(b"p/1", b"1"), (b"p/3", b"3"), (b"p/5", b"5"), (b"q", b"q")])
    overlay = Overlay(CommittedStore(backend))
    overlay.set(b"p/4", b"4")
    overlay.set(b"p/0", b"0")
    overlay.set(b"p/3", b"three")
    overlay.set(b"p/9", b"9")
    overlay.set(b"o", b"outside")
    assert list(overlay.iterate(b"p/", prefix_end(b"p/"))) == [
        (b"p/0", b"0"), (b"p/1", b"1"), (b"p/3", b"three"), (b"p/4", b"4"), (b"p/5", b"5"), (b"p/9", b"9"),
    ]
    assert [k for k, _ in overlay.iterate(b"p/3", b"p/5")] == [b"p/3", b"p/4"]
    assert [k for k, _ in overlay.iterate(b"p/5", None)] == [b"p/5", b"p/9", b"q"]


def test_overlay_deletes_shadow_parent(backend: Backend) -> None:
    backend.write([(b"k1", b"1"), (b"k2", b"2"), (b"k3", b"3")])
    overlay = Overlay(CommittedStore(backend))
    overlay.delete(b"k1")
    overlay.delete(b"k3")
    overlay.delete(b"k4")  # deleting what does not exist hides nothing else
    assert list(overlay.iterate(b"k", None)) == [(b"k2", b"2")]
    overlay.set(b"k3", b"back")
    assert list(overlay.iterate(b"k", None)) == [(b"k2", b"2"), (b"k3", b"back")]


def test_nested_overlays(backend: Backend) -> None:
    backend.write([(b"a", b"0"), (b"b", b"0"), (b"c", b"0")])
    block = Overlay(CommittedStore(backend))
    block.delete(b"a")
    block.set(b"d", b"1")
    tx = block.branch()
    tx.set(b"a", b"2")
    tx.delete(b"b")
    assert list(tx.iterate(b"", None)) == [(b"a", b"2"), (b"c", b"0"), (b"d", b"1")]
    assert list(block.iterate(b"", None)) == [(b"b", b"0"), (b"c", b"0"), (b"d", b"1")]  # tx not merged yet
    tx.merge_into(block)
    assert list(block.iterate(b"", None)) == [(b"a", b"2"), (b"c", b"0"), (b"d", b"1")]
    assert dict(block.writes) == {b"a": b"2", b"b": None, b"d": b"1"}


def test_dropped_branch_changes_nothing() -> None:
    block = filled(MemoryBackend(), {b"x": b"1"})
    tx = block.branch()
    tx.set(b"x", b"2")
    tx.delete(b"x")
    tx.set(b"y", b"3")
    assert dict(block.writes) == {b"x": b"1"}


@pytest.mark.parametrize(
    ("prefix", "end"),
    [(b"acct/", b"acct0"), (b"a", b"b"), (b"a\xff", b"b"), (b"a\xff\xff", b"b"), (b"ab\xfe", b"ab\xff"),
     (b"\xff", None), (b"\xff\xff", None), (b"", None)],
)
def test_prefix_end(prefix: bytes, end: bytes | None) -> None:
    assert prefix_end(prefix) == end


def test_prefix_end_bounds_exactly_the_prefix(backend: Backend) -> None:
    keys = [b"a", b"a\xff", b"a\xff\x00", b"a\xff\xff\xff", b"b", b"a\xfe\xff"]
    backend.write([(key, b"") for key in keys])
    assert [k for k, _ in backend.iterate(b"a\xff", prefix_end(b"a\xff"))] == [b"a\xff", b"a\xff\x00", b"a\xff\xff\xff"]


# -- committed store ---------------------------------------------------------------------------
def test_committed_store_fresh(backend: Backend) -> None:
    store = CommittedStore(backend)
    assert (store.height, store.app_hash) == (0, b"")


def test_commit_persists_writes_height_tree_and_hash(backend: Backend) -> None:
    store = CommittedStore(backend)
    store.commit(filled(store, {b"gone": b"x", b"kept": b"y"}), 6)
    block = filled(store, {b"k": b"v"})
    block.delete(b"gone")
    store.commit(block, 7)
    root = reference_root([(b"k", b"v"), (b"kept", b"y")])
    assert (store.height, store.app_hash) == (7, root)
    assert (backend.get(b"k"), backend.get(b"gone")) == (b"v", None)
    assert backend.get(META_HEIGHT) == struct.pack(">q", 7)
    assert backend.get(META_APP_HASH) == root
    assert list(store.iterate(b"", None)) == [(b"k", b"v"), (b"kept", b"y")]  # META keys are not state
    reread = CommittedStore(backend)
    assert (reread.height, reread.app_hash, reread.trie.root_hash) == (7, root, root)


def test_commit_uses_the_tree_finalize_block_computed(backend: Backend) -> None:
    store = CommittedStore(backend)
    block = filled(store, {b"a": b"1"})
    trie = store.trie_after(None, block.writes)
    store.commit(block, 1, trie)
    assert store.trie is trie and store.app_hash == leaf_hash(b"a", b"1")


def test_commit_is_one_batch() -> None:
    class Recording(MemoryBackend):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[tuple[bytes, bytes | None]]] = []

        def write(self, writes: list[tuple[bytes, bytes | None]]) -> None:
            self.batches.append(list(writes))
            super().write(writes)

    recording = Recording()
    store = CommittedStore(recording)
    block = filled(store, {b"a": b"1", b"b": b"2"})
    store.commit(block, 3)
    assert len(recording.batches) == 1
    batch = dict(recording.batches[0])
    assert {key: batch[key] for key in (b"a", b"b", META_HEIGHT)} == {b"a": b"1", b"b": b"2",
                                                                        META_HEIGHT: struct.pack(">q", 3)}
    assert batch[META_APP_HASH] == store.app_hash and TRIE_ROOT in batch


def test_store_of_another_app_hash_scheme_is_refused(backend: Backend) -> None:
    backend.write([(b"k", b"v"), (META_HEIGHT, struct.pack(">q", 4)), (META_APP_HASH, b"\x01" * 32)])
    with pytest.raises(StoreError, match="older app-hash scheme"):
        CommittedStore(backend)


def test_state_items_skip_meta_keys(backend: Backend) -> None:
    backend.write([(b"\x00", b"0"), (META + b"x", b"m"), (b"\x00meta0", b"after"), (b"z", b"z")])
    assert [k for k, _ in state_items(backend)] == [b"\x00", b"\x00meta0", b"z"]
    assert [k for k, _ in state_items(backend, b"\x00m", b"\x00n")] == [b"\x00meta0"]
    assert [k for k, _ in state_items(backend, META, META + b"y")] == []


def test_leveldb_reopen_reports_height_and_hash(tmp_path: Path) -> None:
    store = CommittedStore(LevelDBBackend(tmp_path / "db"))
    store.commit(filled(store, {b"k": b"1"}), 1)
    store.commit(filled(store, {b"k": b"2"}), 2)
    store.close()
    reopened = CommittedStore(LevelDBBackend(tmp_path / "db"))
    assert (reopened.height, reopened.app_hash, reopened.get(b"k")) == (2, leaf_hash(b"k", b"2"), b"2")
    reopened.close()


def test_application_restarts_from_leveldb(tmp_path: Path) -> None:
    chain = Chain(backend=LevelDBBackend(tmp_path / "db"))
    chain.block()
    last = chain.block([chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=3, memo=""))])
    chain.app.close()
    app = LedgerApplication(LevelDBBackend(tmp_path / "db"))
    info = app.info(abci.RequestInfo())
    assert (info.last_block_height, info.last_block_app_hash) == (2, last.app_hash)
    answer = app.query(abci.RequestQuery(path=f"/account/{chain.id('bob')}"))
    assert b'"balance":10000003' in answer.value
    app.close()


# -- app hash -------------------------------------------------------------------------------------
def test_app_hash_is_the_root_of_the_whole_state() -> None:
    chain = Chain()
    chain.block([chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=3, memo=""))])
    state = list(chain.app.committed.iterate(b"", None))
    assert chain.app.committed.app_hash == reference_root(state)
    assert chain.app.info(abci.RequestInfo()).last_block_app_hash == reference_root(state)


def test_genesis_hash_is_the_root_of_the_genesis_state() -> None:
    chain = Chain()
    assert chain.app.pending is not None
    assert chain.genesis_hash == reference_root(chain.app.pending.writes.items())  # type: ignore[arg-type]


def test_chains_agree_iff_their_blocks_do() -> None:
    def run(amount: int) -> list[bytes]:
        chain = Chain()
        transfer = chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=amount, memo=""))
        return [chain.genesis_hash, chain.block().app_hash, chain.block([transfer]).app_hash, chain.block().app_hash]

    same, again, other = run(5), run(5), run(6)
    assert same == again
    assert len(set(same)) == 4  # every block moves the hash (its time and height are written)
    assert other[:2] == same[:2]
    assert other[2] != same[2] and other[3] != same[3]  # the difference is carried forward


def test_small_ranges_read_to_their_end_are_remembered_until_the_next_commit() -> None:
    """CommittedStore.iterate remembers a small range read to its end; a commit forgets it, so a block's
    writes are always seen, and a scan stopped early is never taken for the whole range."""
    store = CommittedStore(MemoryBackend())
    block = Overlay(store)
    for key in (b"p/1", b"p/2", b"p/3", b"q/1"):
        block.set(key, b"v")
    store.commit(block, 1)
    assert [k for k, _ in store.iterate(b"p/", b"p0")] == [b"p/1", b"p/2", b"p/3"]
    assert next(iter(store.iterate(b"q/", b"q0")))[0] == b"q/1"  # stopped early
    assert [k for k, _ in store.iterate(b"p/", b"p0")] == [b"p/1", b"p/2", b"p/3"]
    block = Overlay(store)
    block.delete(b"p/2")
    block.set(b"p/4", b"v")
    store.commit(block, 2)
    assert [k for k, _ in store.iterate(b"p/", b"p0")] == [b"p/1", b"p/3", b"p/4"]
    assert [k for k, _ in store.iterate(b"q/", b"q0")] == [b"q/1"]
