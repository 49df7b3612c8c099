"""Benchmark of the call auction (abci_app/ledger/modules/market/auction.py): one slot's whole book cleared.

Random books of ``--orders`` orders (half bids, half asks) over ``--zones`` zones, with origin-restricted
bids, cross-zone fees and limits around a common price, so most orders trade. Prints the time of the pure
clearing (allocation, prices, pairings) per book, with the number of shortest-path searches it needed.
A benchmark, not a test: it prints figures and asserts only that every pairing crosses.

    make bench            (or: .venv/bin/python tools/bench_auction.py --orders 1000 --books 5)
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time

from abci_app.ledger.modules.market import auction
from abci_app.ledger.modules.market.records import ORIGINS, Order

ACCEPTS = ((), (), (), ("solar",), ("solar", "wind"), ("wind",))


def book(rnd: random.Random, orders: int, zones: list[str]) -> tuple[list[Order], list[Order]]:
    made = []
    for order_id in range(1, orders + 1):
        side = "bid" if order_id % 2 else "ask"
        price = rnd.randrange(150, 350) * 1_000 if side == "bid" else rnd.randrange(100, 300) * 1_000
        quantity = rnd.randrange(1, 50) * 100
        made.append(Order(id=order_id, owner=f"acct-{order_id}", side=side, zone=rnd.choice(zones), slot=0,
                          price=price, quantity_wh=quantity, remaining_wh=quantity, valid_until=0, tif="limit",
                          client_order_id="", origin=rnd.choice(ORIGINS) if side == "ask" else "",
                          accept_origins=rnd.choice(ACCEPTS) if side == "bid" else (), collateral_per_kwh=0,
                          locked=0, placed_at=0))
    return [o for o in made if o.side == "bid"], [o for o in made if o.side == "ask"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000, help="orders per slot (half bids, half asks)")
    parser.add_argument("--zones", type=int, default=3)
    parser.add_argument("--books", type=int, default=5, help="random books to clear")
    args = parser.parse_args()
    rnd = random.Random(7)
    zones = [f"zone-{i}" for i in range(args.zones)]
    fees = {(a, b): (10_000 if a == b else 30_000) for a in zones for b in zones}

    searches = 0
    real_augment = auction._augment

    def counted(*a: object) -> bool:
        nonlocal searches
        searches += 1
        return real_augment(*a)  # type: ignore[arg-type]

    auction._augment = counted  # type: ignore[assignment]
    seconds, volumes, counts = [], [], []
    for _ in range(args.books):
        bids, asks = book(rnd, args.orders, zones)
        searches = 0
        start = time.perf_counter()
        result = auction.clear_call_auction(bids, asks, lambda a, b: fees[(a, b)], floor=0, cap=10_000_000)
        seconds.append(time.perf_counter() - start)
        orders = {o.id: o for o in bids + asks}
        for p in result.pairings:
            bid, ask = orders[p.bid_id], orders[p.ask_id]
            assert ask.price <= p.price and p.price + p.fee_per_kwh <= bid.price
        volumes.append(result.volume_wh)
        counts.append(searches)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, one thread")
    print(f"call auction: {args.orders} orders, {args.zones} zones, {len(ORIGINS)} origins, {args.books} random books")
    print(f"  clearing time per book: median {statistics.median(seconds) * 1000:,.0f} ms, "
          f"max {max(seconds) * 1000:,.0f} ms")
    print(f"  shortest-path searches per book: median {statistics.median(counts):,.0f}; "
          f"volume traded per book: median {statistics.median(volumes) / 1000:,.0f} kWh")


if __name__ == "__main__":
    main()
