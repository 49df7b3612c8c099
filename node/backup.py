"""Check a backup of a node's app state before trusting it (docs/operators.md, "Backup and restore").

    python -m node.backup --db BACKUP/data/app [--node http://127.0.0.1:26657]

Two checks, both against the app hash:

* the copy is whole: the root of the Merkle tree recomputed from every key and
  value it holds equals the app hash it recorded at its last Commit (a torn
  copy, a copy taken while the node was writing, or a damaged disk fails);
* the copy is of this chain: that app hash is the one the validators signed,
  in the header of the next block (``app_hash`` of block h+1 is the state
  after block h), read from a node's RPC.

Exit codes: 0 verified, 1 the copy is damaged or not the chain's state,
2 the directory is no app state, 3 the node did not answer. Nothing is
written to the copy beyond what opening a LevelDB does (use the copy, not
the only archive).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from abci_app.ledger.merkle import EMPTY_ROOT, build_pairs, leaf_hash
from abci_app.ledger.store import META_APP_HASH, META_HEIGHT, META_RESTORING, LevelDBBackend, state_items
from node.rpc import CometRpc, NodeUnreachable, RpcError

EXIT_OK, EXIT_MISMATCH, EXIT_UNREADABLE, EXIT_UNREACHABLE = 0, 1, 2, 3


class BackupError(Exception):
    """The directory holds no usable app state."""


@dataclass(frozen=True)
class AppState:
    height: int
    app_hash: bytes
    """Recorded at the copy's last Commit."""
    recomputed: bytes
    """The root of the tree over every key and value in the copy."""
    entries: int

    @property
    def whole(self) -> bool:
        return self.recomputed == self.app_hash


def read_app_state(db: Path) -> AppState:
    """Height, recorded app hash and recomputed root of the LevelDB app state in ``db``."""
    import plyvel

    if not (db / "CURRENT").is_file():
        raise BackupError(f"{db} is no LevelDB directory (the app state is <home>/data/app)")
    try:
        backend = LevelDBBackend(db)
    except plyvel.Error as exc:  # e.g. locked: the node still runs on it
        raise BackupError(f"{db} cannot be opened: {exc}") from exc
    try:
        if backend.get(META_RESTORING) is not None:
            raise BackupError(f"{db} holds a state-sync restore cut short, not a state")
        height_bytes = backend.get(META_HEIGHT)
        if height_bytes is None:
            raise BackupError(f"{db} has no committed height: not an app state, or an empty one")
        pairs = [(key, leaf_hash(key, value)) for key, value in state_items(backend)]
        root = build_pairs(list(pairs))
        return AppState(height=int.from_bytes(height_bytes, "big", signed=True),
                        app_hash=backend.get(META_APP_HASH) or b"",
                        recomputed=root.hash if root is not None else EMPTY_ROOT, entries=len(pairs))
    finally:
        backend.close()


def signed_app_hash(rpc: CometRpc, height: int) -> bytes | None:
    """The app hash the validators signed for the state after block ``height``; None before block height+1."""
    try:
        header = rpc.call("header", height=str(height + 1))["header"]
    except RpcError as exc:
        if "must be less than or equal to the current blockchain height" in str(exc):
            return None
        raise
    return bytes.fromhex(header["app_hash"])


def verify(db: Path, node: str | None) -> int:
    """Print what was checked; return the exit code."""
    try:
        state = read_app_state(db)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    print(f"height {state.height}, {state.entries} entries, app hash {state.app_hash.hex().upper()}")
    if not state.whole:
        print(f"DAMAGED: the tree of its entries has root {state.recomputed.hex().upper()}, not its app hash")
        return EXIT_MISMATCH
    print("whole: the tree of its entries reproduces its app hash")
    if node is None:
        return EXIT_OK
    rpc = CometRpc(node)
    try:
        signed = signed_app_hash(rpc, state.height)
    except (NodeUnreachable, RpcError) as exc:
        print(f"error: {node}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        rpc.close()
    if signed is None:
        print(f"not checked against the chain: {node} has no block {state.height + 1} yet")
        return EXIT_OK
    if signed != state.app_hash:
        print(f"NOT THIS CHAIN'S STATE: block {state.height + 1} at {node} carries app hash {signed.hex().upper()}")
        return EXIT_MISMATCH
    print(f"the chain agrees: block {state.height + 1} at {node} carries the same app hash")
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="check a backup of a gridledger node's app state")
    parser.add_argument("--db", type=Path, required=True, help="the copy's app state: <home>/data/app")
    parser.add_argument("--node", help="a node of the chain (CometBFT RPC URL) to compare the app hash with")
    args = parser.parse_args(argv)
    sys.exit(verify(args.db, args.node))


if __name__ == "__main__":
    main()
