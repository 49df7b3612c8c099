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
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sortedcontainers import SortedDict

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
        for key in list(self._data.irange(start, stop, inclusive=(True, False))):
            yield key, self._data[key]

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


class Overlay:
    """Buffered writes over a parent; reads see the buffer first."""

    def __init__(self, parent: KV) -> None:
        self.parent = parent
        self.writes: SortedDict = SortedDict()

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            value: bytes | None = self.writes[key]
            return value
        return self.parent.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Merge the parent's range with the buffered writes, in key order."""
        mine = iter(list(self.writes.irange(start, stop, inclusive=(True, False))))
        theirs = self.parent.iterate(start, stop)
        next_mine = next(mine, None)
        next_theirs = next(theirs, None)
        while next_mine is not None or next_theirs is not None:
            if next_theirs is None or (next_mine is not None and next_mine <= next_theirs[0]):
                assert next_mine is not None
                if next_theirs is not None and next_theirs[0] == next_mine:
                    next_theirs = next(theirs, None)
                value = self.writes[next_mine]
                if value is not None:
                    yield next_mine, value
                next_mine = next(mine, None)
            else:
                yield next_theirs
                next_theirs = next(theirs, None)

    def branch(self) -> Overlay:
        return Overlay(self)

    def merge_into(self, parent: Overlay) -> None:
        """Apply this overlay's writes to ``parent`` (a transaction that succeeded)."""
        parent.writes.update(self.writes)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def next_app_hash(height: int, previous: bytes, writes: SortedDict) -> bytes:
    digest = hashlib.sha256()
    digest.update(APP_HASH_DOMAIN)
    digest.update(struct.pack(">q", height))
    digest.update(previous)
    for key, value in writes.items():
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
        writes: list[tuple[bytes, bytes | None]] = list(block.writes.items())
        writes.append((META_HEIGHT, struct.pack(">q", height)))
        writes.append((META_APP_HASH, app_hash))
        self.backend.write(writes)
        self.height = height
        self.app_hash = app_hash

    def close(self) -> None:
        self.backend.close()
