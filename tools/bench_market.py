"""In-process benchmark of the market: orders per second against a book of 10,000 resting orders.

Builds one slot's book with ``--book`` resting asks (one order per price level, 1000 Wh each,
``--per-account`` orders per seller), then measures signed ``place_order`` transactions through
FinalizeBlock + Commit on the in-memory backend, one thread:

(a) bids that rest (priced below the best ask), from buyers holding few open orders;
(b) bids that cross and fill exactly one level (1000 Wh at a limit above the best ask): placement,
    one fill, the trade, both positions and the removal of the filled ask;
(c) bids that rest, from one account already holding 150 to 199 open orders: placement reads
    every open order of the signer (the no-self-trade and open-order-count rules), so this
    phase shows what a busy market maker pays per order.

Signatures are verified by CheckTx first (not timed), as on a validator that saw the transactions
in its mempool, so the figures are the ledger's own work. A benchmark, not a test: it prints
figures with their sample counts and asserts nothing about speed (only that every order was
accepted and that each crossing bid filled one level).

    make bench            (the lead wires it in; until then:)
    .venv/bin/python tools/bench_market.py --book 10000 --orders 2000 --per-account 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from abci_app.app import LedgerApplication
from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.market.msgs import PlaceOrder
from abci_app.ledger.store import MemoryBackend
from abci_app.ledger.tx import encode_tx
from abci_app.pb.tendermint.abci import types_pb2 as abci

CHAIN_ID = "bench-market"
GENESIS_TIME = 1_767_225_600
SLOT = GENESIS_TIME + 86_400
ZONE = "z"
ASK_WH = 1_000
BEST_ASK = 200_000
TICK = 100
MAX_OPEN = 200  # the default max_open_orders


class Bench:
    """One application, its keys and nonces, and a block clock."""

    def __init__(self, sellers: int, buyers: int) -> None:
        self.sellers = [SigningKey.from_seed(b"s" + i.to_bytes(31, "big")) for i in range(sellers)]
        self.buyers = [SigningKey.from_seed(b"b" + i.to_bytes(31, "big")) for i in range(buyers)]
        self.nonces: dict[str, int] = {}
        self.commitment_shares: list[float] = []
        """Per timed phase: the share of FinalizeBlock+Commit spent on the state tree."""
        self.app = LedgerApplication(MemoryBackend())
        self.height = 0
        self.time = GENESIS_TIME
        req = abci.RequestInitChain(chain_id=CHAIN_ID, initial_height=1,
                                    app_state_bytes=json.dumps(self.genesis()).encode())
        req.time.seconds = GENESIS_TIME
        self.app.init_chain(req)

    def genesis(self) -> dict[str, object]:
        dso, lpd = SigningKey.from_seed(b"d" * 32), SigningKey.from_seed(b"l" * 32)
        keys = self.sellers + self.buyers
        return {
            "params": {"max_open_orders": MAX_OPEN},
            "operators": [
                {"name": "dso", "role": "dso", "pubkey": dso.pubkey.hex(), "zones": [ZONE], "power": 1},
                {"name": "lpd", "role": "lpd", "pubkey": lpd.pubkey.hex(), "zones": [], "power": 1},
            ],
            "participants": [{"pubkey": k.pubkey.hex(), "role": "prosumer", "zone": ZONE, "dso": "dso",
                              "balance": 10**15} for k in keys],
            # Meters large enough that capacity never binds: 100 MW x 900 s = 25 MWh per slot.
            "meters": [{"id": f"m{i}", "pubkey": SigningKey.from_seed(b"m" + i.to_bytes(31, "big")).pubkey.hex(),
                        "owner_pubkey": k.pubkey.hex(), "import_capacity_w": 10**8, "export_capacity_w": 10**8}
                       for i, k in enumerate(keys)],
            "grid_fees": [{"dso": "dso", "from": ZONE, "to": ZONE, "fee": 10_000}],
        }

    def sign(self, key: SigningKey, msg: PlaceOrder) -> bytes:
        nonce = self.nonces.get(key.account, 0) + 1
        self.nonces[key.account] = nonce
        return encode_tx(CHAIN_ID, msg, key, nonce)

    def block(self, txs: list[bytes]) -> abci.ResponseFinalizeBlock:
        self.height += 1
        self.time += 1
        req = abci.RequestFinalizeBlock(height=self.height, txs=txs)
        req.time.seconds = self.time
        response = self.app.finalize_block(req)
        self.app.commit(abci.RequestCommit())
        bad = [r.log for r in response.tx_results if r.code != 0]
        if bad:
            raise SystemExit(f"benchmark transaction rejected: {bad[0]}")
        return response

    def timed_blocks(self, txs: list[bytes], per_block: int) -> tuple[list[float], list[abci.ResponseFinalizeBlock]]:
        """Seconds per order of each block (signatures verified beforehand by CheckTx).

        Also notes the state commitment's share of the time (the tree's update and persistence).
        """
        for raw in txs:
            self.app.check_tx(abci.RequestCheckTx(tx=raw))
        per_order, responses = [], []
        commitment_before = self.app.committed.commitment_seconds
        for first in range(0, len(txs), per_block):
            chunk = txs[first:first + per_block]
            start = time.perf_counter()
            responses.append(self.block(chunk))
            per_order.append((time.perf_counter() - start) / len(chunk))
        total = sum(seconds * per_block for seconds in per_order)
        self.commitment_shares.append((self.app.committed.commitment_seconds - commitment_before) / total)
        return per_order, responses


def bid(quantity_wh: int, price: int) -> PlaceOrder:
    return PlaceOrder(side="bid", quantity_wh=quantity_wh, price=price, slot=SLOT, valid_until=SLOT, tif="limit",
                      client_order_id="", origin="", accept_origins=())


def ask(price: int) -> PlaceOrder:
    return PlaceOrder(side="ask", quantity_wh=ASK_WH, price=price, slot=SLOT, valid_until=SLOT, tif="limit",
                      client_order_id="", origin="solar", accept_origins=())


def report(name: str, per_order: list[float], orders: int) -> None:
    """Overall rate, then min/median/max over blocks (blocks are equal in size)."""
    rates = sorted(1 / s for s in per_order)
    overall = len(per_order) / sum(per_order)
    print(f"{name:<44}{overall:>10,.0f}{rates[0]:>10,.0f}{statistics.median(rates):>10,.0f}{rates[-1]:>10,.0f}"
          f"{orders:>9}{len(per_order):>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--book", type=int, default=10_000, help="resting asks in the slot's book")
    parser.add_argument("--orders", type=int, default=2_000, help="measured orders per phase")
    parser.add_argument("--block", type=int, default=100, help="orders per block")
    parser.add_argument("--per-account", type=int, default=20, help="open orders per seller and per buyer in (a)")
    args = parser.parse_args()
    if args.orders % args.block or args.orders >= args.book or not 1 <= args.per_account <= MAX_OPEN:
        raise SystemExit("--orders must be a multiple of --block and smaller than --book; "
                         f"--per-account from 1 to {MAX_OPEN}")

    sellers = -(-args.book // args.per_account)
    # Buyers: enough for (a) at --per-account each, then one for (b) and one for (c).
    bench = Bench(sellers=sellers, buyers=-(-args.orders // args.per_account) + 2)
    busy, crossing_buyer = bench.buyers[-1], bench.buyers[-2]
    buyers = bench.buyers[:-2]
    # The book: ask i at BEST_ASK + i ticks, so every order is its own price level.
    build = [bench.sign(bench.sellers[i % sellers], ask(BEST_ASK + TICK * i)) for i in range(args.book)]
    start = time.perf_counter()
    for first in range(0, len(build), 500):
        bench.block(build[first:first + 500])
    build_seconds = time.perf_counter() - start

    # (a) bids below the best ask (200000 + fee 10000 > 150000): they rest.
    resting = [bench.sign(buyers[i % len(buyers)], bid(ASK_WH, 150_000)) for i in range(args.orders)]
    rest_times, _ = bench.timed_blocks(resting, args.block)
    # (b) bids for exactly one ask's quantity at a limit above every ask: each fills the best level.
    crossing = [bench.sign(crossing_buyer, bid(ASK_WH, 9_000_000)) for _ in range(args.orders)]
    cross_times, responses = bench.timed_blocks(crossing, args.block)
    # (c) one account fills up to 150 open bids (not timed), then places 50 more in blocks of 10.
    bench.block([bench.sign(busy, bid(ASK_WH, 140_000)) for _ in range(150)])
    busy_times, _ = bench.timed_blocks([bench.sign(busy, bid(ASK_WH, 140_000)) for _ in range(50)], 10)
    fills = sum(1 for response in responses for result in response.tx_results for e in result.events
                if e.type == "trade")
    if fills != args.orders:
        raise SystemExit(f"expected one fill per crossing bid, got {fills} for {args.orders}")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, one thread, in-memory store")
    print(f"book: {args.book} resting asks (one per level) built in {build_seconds:.1f} s "
          f"({args.book / build_seconds:,.0f} orders/s incl. signature checks)")
    print(f"{'phase (FinalizeBlock+Commit, sigs cached)':<44}{'orders/s':>10}{'min':>10}{'median':>10}"
          f"{'max':>10}{'orders':>9}{'blocks':>8}")
    report("(a) bid rests", rest_times, args.orders)
    report("(b) bid crosses, fills one level", cross_times, args.orders)
    report("(c) bid rests, signer holds 150-199 orders", busy_times, 50)
    print(f"min/median/max are per block ({args.block} orders; 10 in (c))")
    shares = ", ".join(f"({phase}) {share:.0%}" for phase, share in zip("abc", bench.commitment_shares, strict=True))
    print(f"state commitment (tree update and persistence) share of the time: {shares}")


if __name__ == "__main__":
    main()
