"""State-sync snapshots: taking them (every N blocks, in the background) and restoring one.

A snapshot (format 1) is the whole ledger state at a committed height, in key
order, cut into chunks (docs/operators.md, "Joining by state sync"):

* an entry is ``be32(len key) || key || be32(len value) || value``; a chunk is
  whole entries, closed before it would pass ``chunk_bytes`` (one entry larger
  than that is a chunk of its own); an empty state is one empty chunk;
* the manifest (``Snapshot.metadata``) is the canonical msgpack record
  ``[format, height, app_hash, entries, [SHA-256 of each chunk]]`` and
  ``Snapshot.hash`` is SHA-256 of the manifest, so nodes that snapshot the same
  height with the same chunk size offer byte-identical snapshots.

Taking one costs one pass over the state in a background thread of the app,
reading a LevelDB snapshot taken right after Commit (O(1) to take; later
blocks do not disturb it), and one chunk of memory. Consensus goes on; the
thread shares the interpreter, so blocks are slower while it runs.

Restoring checks each chunk against the manifest's hash (a corrupted chunk is
refetched from another peer, and its sender rejected), writes its entries
with the tree nodes they make, and at the end compares the tree's root with
the app hash the light client verified: a state that does not reproduce it is
wiped and the snapshot rejected.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from abci_app.ledger.merkle import META
from abci_app.ledger.store import CommittedStore, View, state_items
from abci_app.ledger.wire import I64, Record, WireError

log = logging.getLogger("gridledger.snapshots")

FORMAT = 1
DEFAULT_INTERVAL = 1000
"""Blocks between snapshots: about 20 minutes at one block a second."""
DEFAULT_KEEP = 2
"""Snapshots kept: the newest and the one a joining node may still be fetching."""
DEFAULT_CHUNK_BYTES = 4 << 20
MANIFEST = "manifest"


class Manifest(Record, frozen=True):
    format: I64
    height: I64
    app_hash: bytes
    entries: I64
    chunk_hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class SnapshotInfo:
    height: int
    format: int
    chunks: int
    hash: bytes
    metadata: bytes


def _entry(key: bytes, value: bytes) -> bytes:
    return len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value


def parse_chunk(chunk: bytes) -> list[tuple[bytes, bytes]]:
    """The entries of a chunk; ValueError if it is not a sequence of whole entries."""
    entries, at = [], 0
    while at < len(chunk):
        size = int.from_bytes(chunk[at : at + 4], "big")
        key = chunk[at + 4 : at + 4 + size]
        at += 4 + size
        length = int.from_bytes(chunk[at : at + 4], "big")
        value = chunk[at + 4 : at + 4 + length]
        at += 4 + length
        if len(key) != size or len(value) != length or at > len(chunk):
            raise ValueError("truncated entry")
        entries.append((key, value))
    return entries


def write_snapshot(view: View, height: int, app_hash: bytes, directory: Path, chunk_bytes: int) -> SnapshotInfo:
    """Write the state of ``view`` as snapshot ``height`` under ``directory`` (atomically: a rename)."""
    final = directory / f"{height:020d}"
    partial = directory / f".partial-{height:020d}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    hashes: list[bytes] = []
    buffer = bytearray()
    entries = 0

    def flush() -> None:
        name = partial / f"chunk-{len(hashes):06d}"
        name.write_bytes(buffer)
        hashes.append(hashlib.sha256(buffer).digest())
        buffer.clear()

    for key, value in state_items(view):
        item = _entry(key, value)
        if buffer and len(buffer) + len(item) > chunk_bytes:
            flush()
        buffer += item
        entries += 1
    flush()
    metadata = Manifest(format=FORMAT, height=height, app_hash=app_hash, entries=entries,
                        chunk_hashes=tuple(hashes)).encode()
    (partial / MANIFEST).write_bytes(metadata)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return SnapshotInfo(height, FORMAT, len(hashes), hashlib.sha256(metadata).digest(), metadata)


class SnapshotStore:
    """The node's snapshots in a directory; one is taken every ``interval`` heights, ``keep`` are kept."""

    def __init__(self, directory: Path, interval: int = DEFAULT_INTERVAL, keep: int = DEFAULT_KEEP,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        if interval < 0 or keep < 1 or chunk_bytes < 1024:
            raise ValueError("snapshot interval must be >= 0 (0: none), keep >= 1, chunk bytes >= 1024")
        self.directory = directory
        self.interval = interval
        self.keep = keep
        self.chunk_bytes = chunk_bytes
        self._thread: threading.Thread | None = None
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob(".partial-*"):  # a snapshot cut short by a crash
            shutil.rmtree(leftover, ignore_errors=True)

    def after_commit(self, store: CommittedStore) -> None:
        """Called after each Commit: at a snapshot height, start writing one in the background."""
        height = store.height
        if not self.interval or height % self.interval:
            return
        if self._thread is not None and self._thread.is_alive():
            log.warning("snapshot at height %d skipped: the previous one is still being written", height)
            return
        view = store.backend.snapshot()  # taken now, before the next block writes anything
        self._thread = threading.Thread(target=self._take, args=(view, height, store.app_hash),
                                        name=f"snapshot-{height}", daemon=True)
        self._thread.start()

    def _take(self, view: View, height: int, app_hash: bytes) -> None:
        try:
            info = write_snapshot(view, height, app_hash, self.directory, self.chunk_bytes)
            log.info("snapshot at height %d: %d chunks, hash %s", height, info.chunks, info.hash.hex())
            self._prune()
        except Exception:
            log.exception("snapshot at height %d failed", height)
        finally:
            view.close()

    def _prune(self) -> None:
        for old in self._heights()[self.keep :]:
            shutil.rmtree(self.directory / f"{old:020d}", ignore_errors=True)

    def _heights(self) -> list[int]:
        """Complete snapshots, newest first."""
        heights = []
        for path in self.directory.iterdir():
            if path.name.isdigit() and (path / MANIFEST).is_file():
                heights.append(int(path.name))
        return sorted(heights, reverse=True)

    def list(self) -> list[SnapshotInfo]:
        found = []
        for height in self._heights()[: self.keep]:
            try:
                metadata = (self.directory / f"{height:020d}" / MANIFEST).read_bytes()
                manifest = Manifest.decode(metadata)
            except (OSError, WireError):
                continue  # pruned meanwhile, or damaged: not offered
            found.append(SnapshotInfo(height, manifest.format, len(manifest.chunk_hashes),
                                      hashlib.sha256(metadata).digest(), metadata))
        return found

    def chunk(self, height: int, format_: int, index: int) -> bytes:
        """A chunk's bytes, or b"" if this node does not have it (any more)."""
        if format_ != FORMAT or height < 0 or index < 0:
            return b""
        try:
            return (self.directory / f"{height:020d}" / f"chunk-{index:06d}").read_bytes()
        except OSError:
            return b""

    def wait(self, timeout: float | None = None) -> None:
        """Until the snapshot being written (if any) is done (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        self.wait(60)


# -- restoring ----------------------------------------------------------------------------------------------
class Offer(Enum):
    ACCEPT = "accept"
    ABORT = "abort"
    REJECT = "reject"
    REJECT_FORMAT = "reject_format"


class Apply(Enum):
    ACCEPT = "accept"
    ABORT = "abort"
    RETRY = "retry"
    REJECT_SNAPSHOT = "reject_snapshot"


@dataclass
class ApplyResult:
    result: Apply
    refetch: list[int] = field(default_factory=list)
    reject_senders: list[str] = field(default_factory=list)


@dataclass
class Restorer:
    """One snapshot being restored into an empty store (OfferSnapshot, then ApplySnapshotChunk in order)."""

    store: CommittedStore
    on_restored: Callable[[], None] = lambda: None
    manifest: Manifest | None = None
    next_index: int = 0
    last_key: bytes | None = None
    entries: int = 0

    def offer(self, height: int, format_: int, chunks: int, hash_: bytes, metadata: bytes,
              trusted_app_hash: bytes) -> Offer:
        if format_ != FORMAT:
            return Offer.REJECT_FORMAT
        if self.store.height != 0:
            log.error("snapshot offered to a store that already holds height %d", self.store.height)
            return Offer.ABORT
        try:
            manifest = Manifest.decode(metadata)
        except WireError as exc:
            log.warning("snapshot at height %d rejected: malformed manifest: %s", height, exc)
            return Offer.REJECT
        problem = (
            "its hash is not the manifest's" if hashlib.sha256(metadata).digest() != hash_ else
            "the manifest is of another height or format" if (manifest.height, manifest.format) != (height, FORMAT)
            else "the chunk count is not the manifest's" if chunks != len(manifest.chunk_hashes) or not chunks
            else "its app hash is not the one the light client verified" if manifest.app_hash != trusted_app_hash
            else None
        )
        if problem:
            log.warning("snapshot at height %d rejected: %s", height, problem)
            return Offer.REJECT
        self.store.begin_restore()
        self.manifest, self.next_index, self.last_key, self.entries = manifest, 0, None, 0
        log.info("restoring snapshot at height %d: %d chunks, %d entries", height, chunks, manifest.entries)
        return Offer.ACCEPT

    def apply(self, index: int, chunk: bytes, sender: str) -> ApplyResult:
        manifest = self.manifest
        if manifest is None:
            return ApplyResult(Apply.ABORT)
        if index != self.next_index:
            return self._reject(f"chunk {index} arrived, chunk {self.next_index} was due")
        if hashlib.sha256(chunk).digest() != manifest.chunk_hashes[index]:
            # Damaged or forged on the way: fetch it again, from someone else.
            log.warning("snapshot chunk %d from %s does not match the manifest: refetching", index, sender or "?")
            return ApplyResult(Apply.RETRY, refetch=[index], reject_senders=[sender] if sender else [])
        try:
            entries = parse_chunk(chunk)
        except ValueError as exc:
            return self._reject(f"chunk {index}: {exc}")
        for key, _ in entries:
            if (self.last_key is not None and key <= self.last_key) or key.startswith(META):
                return self._reject(f"chunk {index}: keys out of order or outside the state")
            self.last_key = key
        self.store.restore_entries(entries)
        self.entries += len(entries)
        self.next_index += 1
        if self.next_index < len(manifest.chunk_hashes):
            return ApplyResult(Apply.ACCEPT)
        if self.entries != manifest.entries or self.store.trie.root_hash != manifest.app_hash:
            return self._reject(f"the restored state's root {self.store.trie.root_hash.hex()} is not the "
                                f"verified app hash {manifest.app_hash.hex()}")
        self.store.finish_restore(manifest.height)
        log.info("snapshot at height %d restored: %d entries, app hash %s", manifest.height, self.entries,
                 manifest.app_hash.hex())
        self.manifest = None
        self.on_restored()
        return ApplyResult(Apply.ACCEPT)

    def _reject(self, problem: str) -> ApplyResult:
        log.error("snapshot rejected: %s", problem)
        self.store.wipe()
        self.manifest = None
        return ApplyResult(Apply.REJECT_SNAPSHOT)
