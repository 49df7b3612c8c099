"""Range scans of overlays: what a scan remembers between scans never hides a write.

An overlay keeps a sorted index of its written keys and remembers, per scan start, how far the
parent's keys are all shadowed by its own writes (abci_app/ledger/store.py, ``Overlay``). These
tests interleave writes and scans on nested overlays and compare every scan with a plain dict.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abci_app.ledger import store
from abci_app.ledger.store import CommittedStore, MemoryBackend, Overlay, prefix_end

# Few distinct keys, so that writes, deletions and scans keep meeting the same ones.
KEYS = st.lists(st.sampled_from(b"abc"), min_size=1, max_size=2).map(lambda raw: b"k" + bytes(raw))


def model_scan(model: dict[bytes, bytes | None], start: bytes, stop: bytes | None) -> list[tuple[bytes, bytes]]:
    return sorted((k, v) for k, v in model.items() if v is not None and start <= k and (stop is None or k < stop))


def committed_with(items: dict[bytes, bytes]) -> CommittedStore:
    backend = MemoryBackend()
    backend.write(list(items.items()))
    return CommittedStore(backend)


def test_basic() -> None:
    store = committed_with({b"k1": b"a", b"k2": b"b", b"k3": b"c", b"k4": b"d"})
    block = Overlay(store)
    block.delete(b"k1")
    block.delete(b"k2")
    assert list(block.iterate(b"k", b"l")) == [(b"k3", b"c"), (b"k4", b"d")]
    # The next scan seeks past the deleted keys, yet sees a key written back inside them.
    block.set(b"k1", b"again")
    block.set(b"k15", b"new")
    assert list(block.iterate(b"k", b"l")) == [(b"k1", b"again"), (b"k15", b"new"), (b"k3", b"c"), (b"k4", b"d")]


def test_invalid_skip_past_a_key_that_is_not_shadowed() -> None:
    store = committed_with({b"k1": b"a", b"k2": b"b", b"k3": b"c"})
    block = Overlay(store)
    block.delete(b"k1")
    block.delete(b"k3")
    assert list(block.iterate(b"k", b"l")) == [(b"k2", b"b")]
    assert list(block.iterate(b"k", b"l")) == [(b"k2", b"b")]  # k2 lies between two deletions: never skipped


def test_write_inside_a_scanned_range_is_seen_by_the_next_scan() -> None:
    store = committed_with({b"k%03d" % i: b"v" for i in range(50)})
    block = Overlay(store)
    for i in range(40):
        block.delete(b"k%03d" % i)
    assert next(block.iterate(b"k", b"l")) == (b"k040", b"v")
    tx = block.branch()
    assert next(tx.iterate(b"k", b"l")) == (b"k040", b"v")
    tx.set(b"k005", b"back")
    assert next(tx.iterate(b"k", b"l")) == (b"k005", b"back")
    tx.merge_into(block)
    assert next(block.iterate(b"k", b"l")) == (b"k005", b"back")
    block.delete(b"k005")
    assert next(block.iterate(b"k", b"l")) == (b"k040", b"v")


def test_scan_is_a_snapshot_of_the_written_keys() -> None:
    block = Overlay(committed_with({b"k1": b"a", b"k3": b"c"}))
    block.set(b"k2", b"b")
    scan = block.iterate(b"k", None)
    assert next(scan) == (b"k1", b"a")
    block.set(b"k25", b"later")  # written during the scan: not part of it
    assert list(scan) == [(b"k2", b"b"), (b"k3", b"c")]
    assert [k for k, _ in block.iterate(b"k", None)] == [b"k1", b"k2", b"k25", b"k3"]


Op = tuple[str, bytes, bytes]
OP_NAMES = ["set", "delete", "delete", "scan", "scan_all", "scan_all", "first", "commit_tx", "branch"]
OPS = st.lists(st.tuples(st.sampled_from(OP_NAMES), KEYS, KEYS), max_size=80)


@pytest.fixture(params=["list", "sortedlist"])
def index_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both forms of an overlay's index: a plain list, and the SortedList of a large overlay (forced small)."""
    saved = store.LARGE_INDEX
    store.LARGE_INDEX = saved if request.param == "list" else 2
    yield request.param
    store.LARGE_INDEX = saved


def test_large_overlay_scans_agree_with_a_dict() -> None:
    committed = committed_with({b"k%05d" % i: b"c" for i in range(0, 20_000, 3)})
    block = Overlay(committed)
    model: dict[bytes, bytes | None] = {b"k%05d" % i: b"c" for i in range(0, 20_000, 3)}
    for i in range(0, 20_000, 2):  # past LARGE_INDEX writes, scanning as it goes
        key = b"k%05d" % i
        if i % 4:
            block.set(key, b"o")
            model[key] = b"o"
        else:
            block.delete(key)
            model[key] = None
        if i % 500 == 0:
            start, stop = b"k%05d" % (i // 2), b"k%05d" % (i // 2 + 700)
            assert list(block.iterate(start, stop)) == model_scan(model, start, stop)
    assert list(block.iterate(b"", None)) == model_scan(model, b"", None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.dictionaries(KEYS, st.binary(max_size=2), min_size=3, max_size=12), ops=OPS)
@pytest.mark.usefixtures("index_kind")
def test_scans_agree_with_a_dict_under_any_interleaving(base: dict[bytes, bytes], ops: list[Op]) -> None:
    block = Overlay(committed_with(base))
    block_model: dict[bytes, bytes | None] = dict(base)
    tx: Overlay | None = None
    tx_model: dict[bytes, bytes | None] = {}
    for op, a, b in ops:
        view, model = (tx, tx_model) if tx is not None else (block, block_model)
        start, stop = min(a, b), (None if a == b else max(a, b))
        if op == "set":
            view.set(a, b)
            model[a] = b
        elif op == "delete":
            view.delete(a)
            model[a] = None
        elif op == "scan":
            assert list(view.iterate(start, stop)) == model_scan(model, start, stop)
        elif op == "scan_all":
            assert list(view.iterate(b"k", None)) == model_scan(model, b"k", None)
        elif op == "first":
            prefix = a[:2]
            expected = model_scan(model, prefix, prefix_end(prefix))
            # A scan stopped at its first key (as a seek for the best order is) learns as it goes too.
            assert next(view.iterate(prefix, prefix_end(prefix)), None) == (expected[0] if expected else None)
        elif op == "branch" and tx is None:
            tx, tx_model = block.branch(), dict(block_model)
        elif op == "commit_tx" and tx is not None:
            tx.merge_into(block)
            block_model = tx_model
            tx = None
    view, model = (tx, tx_model) if tx is not None else (block, block_model)
    assert list(view.iterate(b"", None)) == model_scan(model, b"", None)
