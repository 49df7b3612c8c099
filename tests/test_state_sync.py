"""Snapshots and restoring them, through the ABCI calls CometBFT's state sync makes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from abci_app.app import LedgerApplication
from abci_app.ledger.merkle import reference_root
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.snapshots import FORMAT, Manifest, SnapshotStore, parse_chunk
from abci_app.ledger.store import CommittedStore, LevelDBBackend, MemoryBackend
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import Chain

OFFER = abci.ResponseOfferSnapshot
APPLY = abci.ResponseApplySnapshotChunk


def chain_with_snapshots(tmp_path: Path, interval: int = 4, keep: int = 2, leveldb: bool = False) -> Chain:
    chain = Chain(backend=LevelDBBackend(tmp_path / "source-db") if leveldb else None)
    chain.app.snapshots = SnapshotStore(tmp_path / "snapshots", interval=interval, keep=keep, chunk_bytes=1024)
    return chain


def busy_blocks(chain: Chain, count: int) -> None:
    for step in range(count):
        chain.block([chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=1 + step, memo="x" * 40)),
                     chain.sign("bob", Transfer(recipient=chain.id("carol"), amount=2 + step, memo="y" * 40))])


def snapshot_of(chain: Chain) -> abci.Snapshot:
    assert chain.app.snapshots is not None
    chain.app.snapshots.wait()
    snapshots = chain.app.list_snapshots(abci.RequestListSnapshots()).snapshots
    assert snapshots, "no snapshot taken"
    return snapshots[0]


def chunks_of(chain: Chain, snapshot: abci.Snapshot) -> list[bytes]:
    return [chain.app.load_snapshot_chunk(abci.RequestLoadSnapshotChunk(height=snapshot.height, format=snapshot.format,
                                                                        chunk=index)).chunk
            for index in range(snapshot.chunks)]


def offer(app: LedgerApplication, snapshot: abci.Snapshot, app_hash: bytes) -> int:
    return int(app.offer_snapshot(abci.RequestOfferSnapshot(snapshot=snapshot, app_hash=app_hash)).result)


def apply(app: LedgerApplication, index: int, chunk: bytes, sender: str = "peer-a") -> abci.ResponseApplySnapshotChunk:
    return app.apply_snapshot_chunk(abci.RequestApplySnapshotChunk(index=index, chunk=chunk, sender=sender))


def test_basic(tmp_path: Path) -> None:
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    hash_at_4 = source.app.committed.app_hash
    snapshot = snapshot_of(source)
    assert (snapshot.height, snapshot.format) == (4, FORMAT) and snapshot.chunks > 1
    assert hashlib.sha256(snapshot.metadata).digest() == snapshot.hash
    state_at_4 = list(source.app.committed.iterate(b"", None))

    joining = LedgerApplication(MemoryBackend())
    assert offer(joining, snapshot, hash_at_4) == OFFER.ACCEPT
    for index, chunk in enumerate(chunks_of(source, snapshot)):
        assert apply(joining, index, chunk).result == APPLY.ACCEPT
    info = joining.info(abci.RequestInfo())
    assert (info.last_block_height, info.last_block_app_hash) == (4, hash_at_4)
    assert list(joining.committed.iterate(b"", None)) == state_at_4
    assert reference_root(state_at_4) == hash_at_4

    # The joined node goes on with the chain block by block, as CometBFT sends them.
    blocks = []
    for step in range(3):
        txs = [source.sign("carol", Transfer(recipient=source.id("alice"), amount=5 + step, memo=""))]
        response = source.block(txs)
        blocks.append((source.height, source.time, txs, response.app_hash))
    for height, time, txs, app_hash in blocks:
        req = abci.RequestFinalizeBlock(height=height, txs=txs)
        req.time.seconds = time
        assert joining.finalize_block(req).app_hash == app_hash
        joining.commit(abci.RequestCommit())
    assert joining.check_tx(abci.RequestCheckTx(tx=source.sign("alice", Transfer(
        recipient=source.id("bob"), amount=1, memo="")))).code == 0


def test_basic_snapshots_are_deterministic_and_bounded(tmp_path: Path) -> None:
    one, two = chain_with_snapshots(tmp_path / "one", interval=2), chain_with_snapshots(tmp_path / "two", interval=2)
    for chain in (one, two):
        for _ in range(6):
            busy_blocks(chain, 1)
            if chain.height % 2 == 0:
                snapshot_of(chain)  # one writer at a time: wait for it
    first, second = snapshot_of(one), snapshot_of(two)
    assert (first.height, first.hash, first.metadata) == (second.height, second.hash, second.metadata) == \
        (6, first.hash, first.metadata)
    assert chunks_of(one, first) == chunks_of(two, second)
    assert one.app.snapshots is not None
    assert [s.height for s in one.app.snapshots.list()] == [6, 4]  # keep=2: height 2 is pruned
    assert sorted(p.name for p in (tmp_path / "one" / "snapshots").iterdir()) == [f"{4:020d}", f"{6:020d}"]


def test_basic_snapshot_reads_the_state_of_its_height(tmp_path: Path) -> None:
    """Blocks committed while a snapshot is written do not leak into it (LevelDB's own snapshot)."""
    source = chain_with_snapshots(tmp_path, leveldb=True)
    busy_blocks(source, 4)
    hash_at_4 = source.app.committed.app_hash
    busy_blocks(source, 3)  # the writer thread may still be running
    snapshot = snapshot_of(source)
    assert snapshot.height == 4
    entries = [entry for chunk in chunks_of(source, snapshot) for entry in parse_chunk(chunk)]
    assert reference_root(entries) == hash_at_4 == Manifest.decode(snapshot.metadata).app_hash


def test_invalid_corrupted_chunk_is_refetched(tmp_path: Path) -> None:
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    snapshot = snapshot_of(source)
    chunks = chunks_of(source, snapshot)
    joining = LedgerApplication(MemoryBackend())
    assert offer(joining, snapshot, source.app.committed.app_hash) == OFFER.ACCEPT
    assert apply(joining, 0, chunks[0]).result == APPLY.ACCEPT
    damaged = bytearray(chunks[1])
    damaged[len(damaged) // 2] ^= 0xFF
    answer = apply(joining, 1, bytes(damaged), sender="bad-peer")
    assert answer.result == APPLY.RETRY
    assert list(answer.refetch_chunks) == [1] and list(answer.reject_senders) == ["bad-peer"]
    assert joining.committed.height == 0
    for index, chunk in enumerate(chunks[1:], start=1):  # the refetched chunk, from another peer
        assert apply(joining, index, chunk, sender="good-peer").result == APPLY.ACCEPT
    assert joining.info(abci.RequestInfo()).last_block_app_hash == source.app.committed.app_hash


def test_invalid_offer_of_another_app_hash(tmp_path: Path) -> None:
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    snapshot = snapshot_of(source)
    assert offer(LedgerApplication(MemoryBackend()), snapshot, b"\x01" * 32) == OFFER.REJECT


@pytest.mark.parametrize("field", ["hash", "metadata", "chunks", "height", "format"])
def test_invalid_offer_with_forged_fields(tmp_path: Path, field: str) -> None:
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    snapshot = snapshot_of(source)
    forged = abci.Snapshot()
    forged.CopyFrom(snapshot)
    if field == "hash":
        forged.hash = b"\x00" * 32
    elif field == "metadata":
        forged.metadata = snapshot.metadata[:-1]
    elif field == "chunks":
        forged.chunks = snapshot.chunks + 1
    elif field == "height":
        forged.height = snapshot.height + 1
    else:
        forged.format = FORMAT + 1
    expected = OFFER.REJECT_FORMAT if field == "format" else OFFER.REJECT
    assert offer(LedgerApplication(MemoryBackend()), forged, source.app.committed.app_hash) == expected


def test_invalid_state_that_does_not_reproduce_the_app_hash(tmp_path: Path) -> None:
    """A self-consistent forged snapshot (chunk hashes match) claiming the verified app hash is refused at the end."""
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    snapshot = snapshot_of(source)
    chunks = chunks_of(source, snapshot)
    entries = parse_chunk(chunks[-1])
    key, value = entries[-1]
    forged_last = b"".join(len(k).to_bytes(4, "big") + k + len(v).to_bytes(4, "big") + v
                           for k, v in [*entries[:-1], (key, value + b"!")])
    forged_chunks = [*chunks[:-1], forged_last]
    manifest = Manifest.decode(snapshot.metadata)
    metadata = Manifest(format=FORMAT, height=manifest.height, app_hash=manifest.app_hash, entries=manifest.entries,
                        chunk_hashes=tuple(hashlib.sha256(c).digest() for c in forged_chunks)).encode()
    forged = abci.Snapshot(height=snapshot.height, format=FORMAT, chunks=len(forged_chunks),
                           hash=hashlib.sha256(metadata).digest(), metadata=metadata)
    joining = LedgerApplication(MemoryBackend())
    assert offer(joining, forged, source.app.committed.app_hash) == OFFER.ACCEPT
    results = [apply(joining, index, chunk).result for index, chunk in enumerate(forged_chunks)]
    assert results == [APPLY.ACCEPT] * (len(forged_chunks) - 1) + [APPLY.REJECT_SNAPSHOT]
    assert joining.committed.height == 0 and list(joining.committed.backend.iterate(b"", None)) == []
    # The honest snapshot is accepted after the forged one was refused.
    assert offer(joining, snapshot, source.app.committed.app_hash) == OFFER.ACCEPT
    assert [apply(joining, i, c).result for i, c in enumerate(chunks)] == [APPLY.ACCEPT] * len(chunks)


def test_invalid_chunk_out_of_order(tmp_path: Path) -> None:
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    snapshot = snapshot_of(source)
    chunks = chunks_of(source, snapshot)
    joining = LedgerApplication(MemoryBackend())
    assert offer(joining, snapshot, source.app.committed.app_hash) == OFFER.ACCEPT
    assert apply(joining, 1, chunks[1]).result == APPLY.REJECT_SNAPSHOT
    assert apply(joining, 0, chunks[0]).result == APPLY.ABORT  # nothing is being restored any more


def test_invalid_offer_to_a_node_with_state(tmp_path: Path) -> None:
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    assert offer(source.app, snapshot_of(source), source.app.committed.app_hash) == OFFER.ABORT


def test_restore_cut_short_by_a_crash_leaves_an_empty_store(tmp_path: Path) -> None:
    source = chain_with_snapshots(tmp_path)
    busy_blocks(source, 4)
    snapshot = snapshot_of(source)
    chunks = chunks_of(source, snapshot)
    joining = LedgerApplication(LevelDBBackend(tmp_path / "joining"))
    assert offer(joining, snapshot, source.app.committed.app_hash) == OFFER.ACCEPT
    assert apply(joining, 0, chunks[0]).result == APPLY.ACCEPT
    joining.close()  # the process dies here
    reopened = CommittedStore(LevelDBBackend(tmp_path / "joining"))
    assert reopened.height == 0 and list(reopened.backend.iterate(b"", None)) == []
    reopened.close()


def test_node_without_snapshot_store_offers_none() -> None:
    app = Chain().app
    assert not app.list_snapshots(abci.RequestListSnapshots()).snapshots
    assert app.load_snapshot_chunk(abci.RequestLoadSnapshotChunk(height=1, format=1, chunk=0)).chunk == b""


@pytest.mark.parametrize(("interval", "keep", "chunk_bytes"), [(-1, 2, 4096), (10, 0, 4096), (10, 2, 10)])
def test_invalid_snapshot_settings(tmp_path: Path, interval: int, keep: int, chunk_bytes: int) -> None:
    with pytest.raises(ValueError):
        SnapshotStore(tmp_path, interval=interval, keep=keep, chunk_bytes=chunk_bytes)


def test_snapshot_settings_are_documented() -> None:
    from abci_app.ledger.snapshots import DEFAULT_CHUNK_BYTES, DEFAULT_INTERVAL, DEFAULT_KEEP

    doc = (Path(__file__).resolve().parents[1] / "docs" / "operators.md").read_text()
    assert f"interval = {DEFAULT_INTERVAL} " in doc and f"keep = {DEFAULT_KEEP} " in doc
    assert f"chunk_bytes = {DEFAULT_CHUNK_BYTES}" in doc
