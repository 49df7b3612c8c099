"""Key-value storage: a committed LevelDB (or in-memory) backend plus write overlays.

Writes never reach the backend before ``Commit``: a block runs in an
``Overlay`` over the committed store, each transaction in a child overlay that
is merged into the block on success and dropped on failure. ``commit`` writes
the block's overlay, the height and the app hash in one atomic, fsynced batch,
so a crash leaves either the previous or the new committed state.

App hash (documented in docs/state.md)::

    app_hash(h) = SHA-256( "gridledger/apphash/v1" || be64(h) || app_hash(h-1)
                           || for each written key in byte order:
                              be32(len k) || k || (0x00 if deleted
                                                   else 0x01 || be32(len v) || v) )

with ``app_hash(initial_height - 1)`` the hash of the genesis writes over 32
zero bytes. Since the state is a function of genesis and every block's writes,
the chain of hashes commits to the whole state: two nodes agree at a height iff
they wrote the same keys and values at every height.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from sortedcontainers import SortedDict, SortedList

from abci_app.ledger.wire import Record, decoder

R = TypeVar("R", bound=Record)

# Keys under this prefix describe the store itself, not the ledger state; they
# are outside the app hash.
META = b"\x00meta/"
META_HEIGHT = META + b"height"
META_APP_HASH = META + b"app_hash"
APP_HASH_DOMAIN = b"gridledger/apphash/v1"
EMPTY_HASH = bytes(32)


class Backend(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...
    def write(self, writes: list[tuple[bytes, bytes | None]]) -> None: ...
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

    def close(self) -> None:
        self._db.close()


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

    def close(self) -> None:
        pass


class KV(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...


_ABSENT = object()
SMALL_OVERLAY = 64
"""Up to this many writes, a range scan filters the writes instead of building a sorted index."""


class Overlay:
    """Buffered writes over a parent; reads see the buffer first.

    Writes live in a plain dict (most transactions never scan a range); the
    sorted index of the written keys that range scans merge with the parent's
    is built on the first scan and kept up to date from then on. Decoded
    records are cached per overlay (``get_record``/``put_record``), so a
    block decodes each record it touches once, however many transactions
    read it; records are frozen, so sharing them is safe.
    """

    __slots__ = ("_records", "_sorted", "parent", "writes")

    def __init__(self, parent: KV) -> None:
        self.parent = parent
        self.writes: dict[bytes, bytes | None] = {}
        """Key -> new value, or None for a deletion."""
        self._records: dict[bytes, Record | None] = {}
        self._sorted: SortedList | None = None

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
        if self._sorted is not None and key not in self.writes:
            self._sorted.add(key)
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
        """Merge the parent's range with the buffered writes, in key order."""
        mine = self._written_keys(start, stop)
        if not mine:
            yield from self.parent.iterate(start, stop)
            return
        index = 0
        for key, value in self.parent.iterate(start, stop):
            while index < len(mine) and mine[index] < key:
                yield from self._written(mine[index])
                index += 1
            if index < len(mine) and mine[index] == key:
                yield from self._written(key)  # this overlay's write shadows the parent's value
                index += 1
            else:
                yield key, value
        for key in mine[index:]:
            yield from self._written(key)

    def _written_keys(self, start: bytes, stop: bytes | None) -> list[bytes]:
        """The keys this overlay wrote in [start, stop), sorted (a snapshot: the caller may write on)."""
        if self._sorted is None:
            if len(self.writes) <= SMALL_OVERLAY:
                # A transaction's own overlay: a few writes, cheaper to filter than to index.
                return sorted(k for k in self.writes if start <= k and (stop is None or k < stop))
            self._sorted = SortedList(self.writes)
        return list(self._sorted.irange(start, stop, inclusive=(True, False)))

    def _written(self, key: bytes) -> Iterator[tuple[bytes, bytes]]:
        value = self.writes[key]
        if value is not None:
            yield key, value

    # -- transactions --------------------------------------------------------------------
    def branch(self) -> Overlay:
        return Overlay(self)

    def merge_into(self, parent: Overlay) -> None:
        """Apply this overlay's writes to ``parent`` (a transaction that succeeded)."""
        if parent._sorted is not None:
            parent._sorted.update(key for key in self.writes if key not in parent.writes)
        parent.writes.update(self.writes)
        parent._records.update(self._records)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def next_app_hash(height: int, previous: bytes, writes: Mapping[bytes, bytes | None]) -> bytes:
    digest = hashlib.sha256()
    digest.update(APP_HASH_DOMAIN)
    digest.update(struct.pack(">q", height))
    digest.update(previous)
    for key, value in sorted(writes.items()):
        if key.startswith(META):
            continue
        digest.update(struct.pack(">I", len(key)))
        digest.update(key)
        if value is None:
            digest.update(b"\x00")
        else:
            digest.update(b"\x01")
            digest.update(struct.pack(">I", len(value)))
            digest.update(value)
    return digest.digest()


class CommittedStore:
    """The committed state and its height and app hash."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        height = backend.get(META_HEIGHT)
        self.height: int = struct.unpack(">q", height)[0] if height is not None else 0
        self.app_hash: bytes = backend.get(META_APP_HASH) or b""

    def get(self, key: bytes) -> bytes | None:
        return self.backend.get(key)

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self.backend.iterate(start, stop):
            if not key.startswith(META):
                yield key, value

    def commit(self, block: Overlay, height: int, app_hash: bytes) -> None:
        """Persist a block's writes with its height and app hash, atomically."""
        writes = list(block.writes.items())
        writes.append((META_HEIGHT, struct.pack(">q", height)))
        writes.append((META_APP_HASH, app_hash))
        self.backend.write(writes)
        self.height = height
        self.app_hash = app_hash

    def close(self) -> None:
        self.backend.close()
