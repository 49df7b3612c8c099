"""Key-value storage: a committed LevelDB (or in-memory) backend plus write overlays.

Writes never reach the backend before ``Commit``: a block runs in an
``Overlay`` over the committed store, each transaction in a child overlay that
is merged into the block on success and dropped on failure. ``commit`` writes
the block's overlay, the nodes of the state tree it changed, the height and
the app hash in one atomic, fsynced batch, so a crash leaves either the
previous or the new committed state.

The app hash is the root of the Merkle-Patricia trie over the whole state
(``abci_app/ledger/merkle.py``; docs/state.md, "App hash"): FinalizeBlock
computes the next version of the tree from the block's write set
(``CommittedStore.trie_after``), Commit persists it with the state.
"""

from __future__ import annotations

import itertools
import struct
import time
from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sortedcontainers import SortedDict, SortedList

from abci_app.ledger.merkle import META, META_END, Trie
from abci_app.ledger.wire import Record, decoder

R = TypeVar("R", bound=Record)

# Keys under META (merkle.META, b"\x00meta/") describe the store itself, not the ledger
# state: the height, the app hash and the tree's nodes. They are outside the state tree.
META_HEIGHT = META + b"height"
META_APP_HASH = META + b"app_hash"
META_RESTORING = META + b"restoring"
"""Present while a state-sync snapshot is being restored (abci_app/ledger/snapshots.py)."""

MAX_CACHED_NODES = 2_000_000
"""Tree nodes kept in memory (about 300 bytes each) before the committed tree is dropped and reloaded on use."""


class StoreError(RuntimeError):
    """The store on disk cannot be used as it is (written by another app-hash scheme, or inconsistent)."""


class View(Protocol):
    """A read-only, consistent view of a backend at one moment (``Backend.snapshot``)."""

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...
    def close(self) -> None: ...


class Backend(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...
    def write(self, writes: list[tuple[bytes, bytes | None]]) -> None: ...
    def snapshot(self) -> View: ...
    def close(self) -> None: ...


class LevelDBBackend:
    """plyvel storage; every write batch is fsynced."""

    def __init__(self, path: Path) -> None:
        import plyvel

        path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(str(path), create_if_missing=True)

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        if stop is None:
            yield from self._db.iterator(start=start)
        else:
            yield from self._db.iterator(start=start, stop=stop)

    def write(self, writes: list[tuple[bytes, bytes | None]]) -> None:
        with self._db.write_batch(transaction=True, sync=True) as batch:
            for key, value in writes:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)

    def snapshot(self) -> View:
        """LevelDB's own snapshot: O(1) to take, later writes stay invisible to it."""
        return _LevelDBView(self._db.snapshot())

    def close(self) -> None:
        self._db.close()


class _LevelDBView:
    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        if stop is None:
            yield from self._snapshot.iterator(start=start)
        else:
            yield from self._snapshot.iterator(start=start, stop=stop)

    def close(self) -> None:
        self._snapshot.close()


class MemoryBackend:
    """The same contract in memory (tests, benchmarks)."""

    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._data.get(key)
        return value

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        # Lazy, as LevelDB's iterator is: a scan that stops at the first match reads one key.
        # The backend changes only at Commit, never while a block scans it.
        data = self._data
        for key in data.irange(start, stop, inclusive=(True, False)):
            yield key, data[key]

    def write(self, writes: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in writes:
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value

    def snapshot(self) -> View:
        """A copy (O(n)): another thread may read it while this backend takes new writes."""
        return _MemoryView(self._data.copy())

    def close(self) -> None:
        pass


class _MemoryView:
    def __init__(self, data: SortedDict) -> None:
        self._data = data

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for key in self._data.irange(start, stop, inclusive=(True, False)):
            yield key, self._data[key]

    def close(self) -> None:
        self._data = SortedDict()


class KV(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...


_ABSENT = object()
LARGE_INDEX = 4_096
"""Up to this many written keys an overlay's sorted index is a plain list (an insertion is a bisection and a
memmove, in C); beyond, a SortedList, whose insertions stay O(log n) however large a block or a genesis grows."""


class Overlay:
    """Buffered writes over a parent; reads see the buffer first.

    Writes live in a plain dict (most transactions never scan a range). Range
    scans merge the parent's range with a sorted index of the written keys,
    built on the first scan and brought up to date at the next one (new keys
    are inserted by bisection, at C speed, until the index is large:
    ``LARGE_INDEX``); a scan of a range this overlay never wrote into is the
    parent's own iterator, with no layer in between.

    A scan also remembers, per start key, how far the parent's keys from that
    start are all shadowed by this overlay's writes (``_shadowed``): a block
    that deletes the best orders of a book (fills) makes the next scan of the
    book seek past them in the parent instead of stepping over each one. Keys
    are never removed from ``writes``, so what it remembers stays true.

    Decoded records are cached per overlay (``get_record``/``put_record``), so
    a block decodes each record it touches once, however many transactions
    read it; records are frozen, so sharing them is safe.

    The parent must not change while the overlay is in use (a transaction's
    overlay is merged into its block, and a block's into the store, only when
    it is done): what the overlay caches of its parent (records, shadowed
    ranges) would go stale.
    """

    __slots__ = ("_fresh", "_index", "_records", "_shadowed", "parent", "writes")

    def __init__(self, parent: KV) -> None:
        self.parent = parent
        self.writes: dict[bytes, bytes | None] = {}
        """Key -> new value, or None for a deletion."""
        self._records: dict[bytes, Record | None] = {}
        self._index: list[bytes] | SortedList | None = None
        """The written keys, sorted, as of the last scan (None until the first scan): a plain list up to
        LARGE_INDEX keys, a SortedList beyond."""
        self._fresh: list[bytes] = []
        """Keys first written since the index was last brought up to date (added at the next scan)."""
        self._shadowed: dict[bytes, bytes] = {}
        """start -> end: every parent key in [start, end) is in ``writes`` (learned by scans)."""

    # -- bytes -------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        value = self.writes.get(key, _ABSENT)
        if value is _ABSENT:
            return self.parent.get(key)
        return value  # type: ignore[return-value]

    def set(self, key: bytes, value: bytes) -> None:
        self._write(key, value)
        self._records.pop(key, None)

    def delete(self, key: bytes) -> None:
        self._write(key, None)
        self._records[key] = None

    def _write(self, key: bytes, value: bytes | None) -> None:
        if self._index is not None and key not in self.writes:
            self._fresh.append(key)
        self.writes[key] = value

    # -- records -----------------------------------------------------------------------
    def get_record(self, key: bytes, cls: type[R]) -> R | None:
        """The record stored under ``key`` (written by the ledger, so decoded without re-checks)."""
        record = self._records.get(key, _ABSENT)
        if record is _ABSENT:
            if isinstance(self.parent, Overlay) and key not in self.writes:
                record = self.parent.get_record(key, cls)
            else:
                raw = self.get(key)
                record = decoder(cls).decode(raw) if raw is not None else None
            self._records[key] = record
        return record  # type: ignore[return-value]

    def put_record(self, key: bytes, record: Record) -> None:
        self._write(key, record.encode())
        self._records[key] = record

    # -- ranges --------------------------------------------------------------------------
    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Merge the parent's range with the buffered writes, in key order.

        The written keys of the range are taken when the scan starts: the caller
        may write on while it iterates (values are read as they are reached).
        """
        mine = self._written_keys(start, stop)
        if not mine:
            return self.parent.iterate(start, stop)
        return self._merged(start, stop, mine)

    def _merged(self, start: bytes, stop: bytes | None, mine: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        writes, shadowed = self.writes, self._shadowed
        index, count = 0, len(mine)
        seek = shadowed.get(start, start)
        # Every parent key from `start` so far is in `writes`: the scan extends `shadowed[start]`.
        covered = True
        parent = self.parent.iterate(seek, stop) if stop is None or seek < stop else iter(())
        for key, value in parent:
            while index < count and mine[index] < key:
                written = mine[index]
                index += 1
                new = writes[written]
                if new is not None:
                    yield written, new
            if index < count and mine[index] == key:
                index += 1  # this overlay's write shadows the parent's value
                if covered:
                    shadowed[start] = key + b"\x00"  # the next possible key after `key`
                new = writes[key]
                if new is not None:
                    yield key, new
            else:
                covered = False
                yield key, value
        while index < count:
            written = mine[index]
            index += 1
            new = writes[written]
            if new is not None:
                yield written, new

    def _written_keys(self, start: bytes, stop: bytes | None) -> list[bytes]:
        """The keys this overlay wrote in [start, stop), sorted (a copy: the caller may write on)."""
        index = self._index
        if index is None:
            written = sorted(self.writes)
            index = self._index = written if len(written) <= LARGE_INDEX else SortedList(written)
            self._fresh = []
        elif self._fresh:
            index = self._add_fresh(index)
        if isinstance(index, list):
            lo = bisect_left(index, start)
            hi = len(index) if stop is None else bisect_left(index, stop, lo)
            return index[lo:hi]
        return list(index.irange(start, stop, inclusive=(True, False)))

    def _add_fresh(self, index: list[bytes] | SortedList) -> list[bytes] | SortedList:
        """Bring the index up to date with the keys first written since the last scan."""
        fresh, self._fresh = self._fresh, []
        if not isinstance(index, list):
            index.update(fresh)
        elif len(index) + len(fresh) > LARGE_INDEX:
            # Grown large (a big block, a genesis): a SortedList, whose insertions stay O(log n).
            index = self._index = SortedList(index)
            index.update(fresh)
        elif len(fresh) <= 16 or len(fresh) * 16 <= len(index):
            for key in fresh:  # a few keys into many: a bisection and a short memmove each
                insort(index, key)
        else:
            index += fresh
            index.sort()  # a sorted run and a tail: timsort merges them
        return index

    # -- transactions --------------------------------------------------------------------
    def branch(self) -> Overlay:
        return Overlay(self)

    def merge_into(self, parent: Overlay) -> None:
        """Apply this overlay's writes to ``parent`` (a transaction that succeeded)."""
        if parent._index is not None:
            parent._fresh.extend(key for key in self.writes if key not in parent.writes)
        parent.writes.update(self.writes)
        parent._records.update(self._records)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def state_items(source: View | Backend, start: bytes = b"", stop: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """The ledger state's keys and values in [start, stop), in key order, skipping META keys."""
    if start < META:
        yield from source.iterate(start, META if stop is None or stop > META else stop)
    if stop is None or stop > META_END:
        yield from source.iterate(max(start, META_END), stop)


SMALL_RANGE = 32
"""Ranges of at most this many entries are remembered between commits (``CommittedStore.iterate``)."""
MAX_CACHED_RANGES = 4_096


class CommittedStore:
    """The committed state, its tree, height and app hash."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._ranges: dict[tuple[bytes, bytes | None], tuple[tuple[bytes, bytes], ...]] = {}
        """Small ranges read to their end since the last commit (``iterate``)."""
        if backend.get(META_RESTORING) is not None:
            # A state-sync restore was cut short: what it wrote is no state at all.
            self.wipe()
        height = backend.get(META_HEIGHT)
        self.height: int = struct.unpack(">q", height)[0] if height is not None else 0
        self.app_hash: bytes = backend.get(META_APP_HASH) or b""
        self.trie = Trie.open(backend.get, self.scan)
        self.commitment_seconds = 0.0
        """Time spent updating and persisting the tree (benchmarks report its share)."""
        if self.height and self.trie.root_hash != self.app_hash:
            raise StoreError(
                f"the store at height {self.height} has no state tree matching its app hash: it was written "
                "by an older app-hash scheme or is damaged; remove the app's data directory and replay "
                "or state-sync the chain")

    def get(self, key: bytes) -> bytes | None:
        return self.backend.get(key)

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """The committed state's keys and values in [start, stop).

        Small ranges read to their end (the operators, a route's fee components, an account's meters) are
        remembered until the next commit: every transaction of a block asks for the same few, and a
        LevelDB iterator costs far more than a list. A scan the caller stops early is not remembered.
        """
        cached = self._ranges.get((start, stop))
        if cached is not None:
            return iter(cached)
        return self._remembered(start, stop)

    def _remembered(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """The backend's range, remembered if it is small and read to its end."""
        seen: list[tuple[bytes, bytes]] | None = []
        for key, value in self.backend.iterate(start, stop):
            if key.startswith(META):
                continue
            if seen is not None:
                seen.append((key, value))
                if len(seen) > SMALL_RANGE:
                    seen = None
            yield key, value
        if seen is not None and len(self._ranges) < MAX_CACHED_RANGES:
            self._ranges[(start, stop)] = tuple(seen)

    def scan(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """The state's keys and values in [start, stop), in key order (how the tree finds its keys)."""
        return state_items(self.backend, start, stop)

    def trie_after(self, base: Trie | None, writes: Mapping[bytes, bytes | None]) -> Trie:
        """The tree after ``writes`` on ``base`` (the committed tree if None); nothing is written."""
        start = time.perf_counter()
        trie = (base or self.trie).update(writes)
        self.commitment_seconds += time.perf_counter() - start
        return trie

    def commit(self, block: Overlay, height: int, trie: Trie | None = None) -> None:
        """Persist a block's writes with its tree, height and app hash, atomically.

        ``trie`` is ``trie_after`` of the block's writes on the committed tree
        (FinalizeBlock already computed it); without it, it is computed here.
        """
        if trie is None:
            trie = self.trie_after(None, block.writes)
        writes = [(key, value) for key, value in block.writes.items() if not key.startswith(META)]
        start = time.perf_counter()
        writes += trie.persist()
        self.commitment_seconds += time.perf_counter() - start
        writes.append((META_HEIGHT, struct.pack(">q", height)))
        writes.append((META_APP_HASH, trie.root_hash))
        self._ranges.clear()
        self.backend.write(writes)
        self.height = height
        self.app_hash = trie.root_hash
        stats = trie.stats
        self.trie = trie.unloaded() if stats.loaded + stats.created > MAX_CACHED_NODES else trie

    # -- state sync (abci_app/ledger/snapshots.py) ---------------------------------------------
    def wipe(self) -> None:
        """Delete every key (state, tree, height): an empty store, as before genesis."""
        self._ranges.clear()
        while True:
            batch: list[tuple[bytes, bytes | None]] = [
                (key, None) for key, _ in itertools.islice(self.backend.iterate(b"", None), 10_000)]
            if not batch:
                break
            self.backend.write(batch)
        self.height, self.app_hash = 0, b""
        self.trie = Trie.open(self.backend.get, self.scan)

    def begin_restore(self) -> None:
        """Start restoring a snapshot into an empty store (marked, so a crash midway is wiped on restart)."""
        self.wipe()
        self.backend.write([(META_RESTORING, b"1")])

    def restore_entries(self, entries: list[tuple[bytes, bytes]]) -> None:
        """Write a chunk's entries (greater than every key written before) with the tree nodes they make."""
        trie = self.trie.update(dict(entries))
        self._ranges.clear()
        self.backend.write([*entries, *trie.persist()])
        self.trie = trie.unloaded()  # the next chunk reloads only the right edge

    def finish_restore(self, height: int) -> None:
        """The restored state is complete at ``height``: record it as committed."""
        self.backend.write([(META_HEIGHT, struct.pack(">q", height)), (META_APP_HASH, self.trie.root_hash),
                            (META_RESTORING, None)])
        self.height, self.app_hash = height, self.trie.root_hash

    def close(self) -> None:
        self.backend.close()
