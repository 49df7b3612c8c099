"""The ledger state: one handle over a KV overlay, and what every module shares.

Each module owns its records, keys, accessors (``keeper``), genesis step,
invariants and queries (``abci_app/ledger/modules/<module>/``, as Cosmos SDK's
x/bank does); docs/state.md lists the whole key layout. Shared here: the
``State`` handle, integer key encoding, and prefix scans. ``chain`` (the
``Chain`` record) belongs to ``execute.py`` and ``params`` to ``params.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TypeVar

from abci_app.ledger.store import Overlay, prefix_end
from abci_app.ledger.wire import Record

R = TypeVar("R", bound=Record)


class State:
    """The ledger state of one view (a block, a transaction, CheckTx, a query): typed records over a KV overlay."""

    __slots__ = ("kv",)

    def __init__(self, kv: Overlay) -> None:
        self.kv = kv

    def get(self, key: bytes, cls: type[R]) -> R | None:
        """The record stored under ``key``, decoded once per block (``Overlay.get_record``)."""
        return self.kv.get_record(key, cls)

    def put(self, key: bytes, record: Record) -> None:
        self.kv.put_record(key, record)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value under ``prefix``, in key order."""
        return self.kv.iterate(prefix, prefix_end(prefix))

    def scan_records(self, prefix: bytes, cls: type[R]) -> Iterator[R]:
        """Every record under ``prefix``, in key order."""
        for key, _ in self.scan(prefix):
            record = self.kv.get_record(key, cls)
            if record is not None:
                yield record


_BE64 = struct.Struct(">Q")
"""Compiled once: every key of an order, a trade or a journal line holds one or more of these."""


def be64(value: int) -> bytes:
    """Big-endian unsigned 64-bit: integers in keys sort in numeric order."""
    return _BE64.pack(value)


def unbe64(raw: bytes) -> int:
    return int(_BE64.unpack(raw)[0])
