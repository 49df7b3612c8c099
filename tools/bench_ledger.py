"""In-process benchmark: signed transactions per second through CheckTx and FinalizeBlock.

Runs on one core (one Python thread) against the in-memory backend and prints
the rates next to the machine's raw Ed25519 verification rate, as a ratio: the
share of a core's signature-checking capacity the ledger achieves end to end.
It also prints the share of FinalizeBlock+Commit time spent on the state
commitment (updating, encoding and writing the Merkle tree; issue 17's budget
is 25 %), and the size and verification time of an account's proof in a state
of --proof-accounts accounts.
A benchmark, not a test: it prints figures and asserts nothing about speed.

    make bench            (or: .venv/bin/python tools/bench_ledger.py --txs 20000)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time

from abci_app.app import LedgerApplication
from abci_app.ledger import tx as txmod
from abci_app.ledger.crypto import SigningKey, verify
from abci_app.ledger.merkle import META
from abci_app.ledger.modules.auth.keys import account_key
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.proofs import prove_range, verify_range
from abci_app.ledger.store import CommittedStore, MemoryBackend, Overlay
from abci_app.pb.tendermint.abci import types_pb2 as abci

CHAIN_ID = "bench"
GENESIS_TIME = 1_767_225_600


def make_app(keys: list[SigningKey]) -> LedgerApplication:
    dso, lpd = SigningKey.from_seed(b"d" * 32), SigningKey.from_seed(b"l" * 32)
    app_state = {
        "operators": [
            {"name": "dso", "role": "dso", "pubkey": dso.pubkey.hex(), "zones": ["z"], "power": 1},
            {"name": "lpd", "role": "lpd", "pubkey": lpd.pubkey.hex(), "zones": [], "power": 1},
        ],
        "participants": [
            {"pubkey": k.pubkey.hex(), "role": "prosumer", "zone": "z", "dso": "dso", "balance": 10**12}
            for k in keys
        ],
    }
    app = LedgerApplication(TimedBackend())
    req = abci.RequestInitChain(chain_id=CHAIN_ID, initial_height=1, app_state_bytes=json.dumps(app_state).encode())
    req.time.seconds = GENESIS_TIME
    app.init_chain(req)
    return app


class TimedBackend(MemoryBackend):
    """The in-memory backend, timing the writes of tree nodes (keys under META) apart from the state's."""

    def __init__(self) -> None:
        super().__init__()
        self.meta_seconds = 0.0

    def write(self, writes: list[tuple[bytes, bytes | None]]) -> None:
        # CommittedStore.commit lists the state's writes first, then the tree's and the height's.
        split = len(writes)
        while split and writes[split - 1][0].startswith(META):
            split -= 1
        super().write(writes[:split])
        start = time.perf_counter()
        super().write(writes[split:])
        self.meta_seconds += time.perf_counter() - start


def signed_transfers(keys: list[SigningKey], count: int) -> list[bytes]:
    nonces = [0] * len(keys)
    out = []
    for i in range(count):
        sender = i % len(keys)
        nonces[sender] += 1
        recipient = keys[(sender + 1) % len(keys)].account
        out.append(txmod.encode_tx(CHAIN_ID, Transfer(recipient=recipient, amount=1, memo=""), keys[sender],
                                   nonces[sender]))
    return out


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--txs", type=int, default=10_000, help="transactions per phase")
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--block", type=int, default=1_000, help="transactions per block")
    parser.add_argument("--proof-accounts", type=int, default=100_000,
                        help="accounts in the state for the proof figures (0: skip)")
    args = parser.parse_args()

    keys = [SigningKey.from_seed(i.to_bytes(32, "big")) for i in range(1, args.accounts + 1)]
    txs = signed_transfers(keys, args.txs)

    # Raw Ed25519 verification of the same sign bytes (the floor of any signed-tx ledger).
    samples = [(k.pubkey, k.sign(b"x" * 120), b"x" * 120) for k in keys[:100]]
    start = time.perf_counter()
    for i in range(args.txs):
        pubkey, signature, message = samples[i % len(samples)]
        verify(pubkey, signature, message)
    verify_rate = rate(args.txs, time.perf_counter() - start)

    # CheckTx: full checks (decode, signature, nonce, balance) against the mempool view.
    app = make_app(keys)
    start = time.perf_counter()
    for raw in txs:
        assert app.check_tx(abci.RequestCheckTx(tx=raw)).code == 0
    check_rate = rate(len(txs), time.perf_counter() - start)

    # FinalizeBlock + Commit with signatures already verified in CheckTx (a validator's usual case).
    finalize_warm, warm_share = run_blocks(app, txs, args.block)
    # FinalizeBlock + Commit on a node that never saw the transactions (a fresh application, so an
    # empty transaction cache: every signature is verified here).
    finalize_cold, cold_share = run_blocks(make_app(keys), txs, args.block)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; {args.txs} transfers, {args.block} per block, one thread")
    print(f"{'phase':<40}{'tx/s':>12}{'vs verify':>12}")
    for name, value in (
        ("raw Ed25519 verify", verify_rate),
        ("CheckTx", check_rate),
        ("FinalizeBlock+Commit (sig cached)", finalize_warm),
        ("FinalizeBlock+Commit (sig verified)", finalize_cold),
    ):
        print(f"{name:<40}{value:>12,.0f}{value / verify_rate:>11.2f}x")
    print(f"state commitment (Merkle tree update, encoding, writes): {warm_share:.1%} of FinalizeBlock+Commit "
          f"time with signatures cached, {cold_share:.1%} with signatures verified (budget 25%)")
    if args.proof_accounts:
        size, prove_us, verify_us = proof_figures(args.proof_accounts)
        print(f"proof of one account among {args.proof_accounts:,} accounts: {size} bytes (ProofOp data, mean), "
              f"proved in {prove_us:,.0f} us, verified in {verify_us:,.0f} us (mean of 200)")


def proof_figures(accounts: int, samples: int = 200) -> tuple[float, float, float]:
    """Mean proof size (bytes), proving and verification time (microseconds) of one account's record."""
    store = CommittedStore(MemoryBackend())
    block = Overlay(store)
    ids = [hashlib.sha256(i.to_bytes(8, "big")).hexdigest()[:40] for i in range(accounts)]
    for index, account_id in enumerate(ids):
        block.put_record(account_key(account_id), Account(
            id=account_id, pubkey=hashlib.sha256(account_id.encode()).digest(), role="prosumer", zone="z",
            dso=ids[0], active=True, balance=1_000_000 + index, locked=0, debt=0, nonce=index % 7, registered_at=0))
    store.commit(block, 1)
    store.trie = store.trie.unloaded()  # as after a restart: proofs read the tree from the store
    sizes, proving, verifying = 0, 0.0, 0.0
    for account_id in ids[:: max(1, accounts // samples)][:samples]:
        key = account_key(account_id)
        start = time.perf_counter()
        proof, _ = prove_range(store, key, key + b"\x00", limit=1)
        middle = time.perf_counter()
        verify_range(store.app_hash, proof.lo, proof.hi, proof.program, proof.entries)
        verifying += time.perf_counter() - middle
        proving += middle - start
        sizes += len(proof.op_data())
    return sizes / samples, proving / samples * 1e6, verifying / samples * 1e6


def run_blocks(app: LedgerApplication, txs: list[bytes], per_block: int) -> tuple[float, float]:
    """Transactions per second through FinalizeBlock+Commit, and the state commitment's share of that time."""
    store, backend = app.committed, app.committed.backend
    assert isinstance(backend, TimedBackend)
    store.commitment_seconds = backend.meta_seconds = 0.0
    start = time.perf_counter()
    for height, first in enumerate(range(0, len(txs), per_block), start=1):
        req = abci.RequestFinalizeBlock(height=height, txs=txs[first : first + per_block])
        req.time.seconds = GENESIS_TIME + height
        response = app.finalize_block(req)
        assert all(r.code == 0 for r in response.tx_results)
        app.commit(abci.RequestCommit())
    elapsed = time.perf_counter() - start
    return rate(len(txs), elapsed), (store.commitment_seconds + backend.meta_seconds) / elapsed


if __name__ == "__main__":
    main()
