"""Invariants of the market module: each returns the violations it finds (empty: holds).

Lock accounting: an account's ``locked`` is the ``locked`` of its open orders
plus the collateral of its unsettled positions; an open order locks exactly
what its remaining quantity requires; a position's open quantities are its
open orders' remaining quantities.
"""

from __future__ import annotations

from collections import defaultdict

from abci_app.ledger.modules.auth.keeper import iter_accounts
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.records import BID
from abci_app.ledger.state import State


def orders_lock_what_they_require(state: State) -> list[str]:
    return [f"order {o.id}: locks {o.locked}, requires {o.required_lock(o.remaining_wh)}, "
            f"remaining {o.remaining_wh} of {o.quantity_wh}"
            for o in Market(state).iter_orders()
            if o.locked != o.required_lock(o.remaining_wh) or not 0 < o.remaining_wh <= o.quantity_wh]


def locks_are_orders_and_positions(state: State) -> list[str]:
    market = Market(state)
    expected: dict[str, int] = defaultdict(int)
    open_wh: dict[tuple[int, str, str], int] = defaultdict(int)
    for order in market.iter_orders():
        expected[order.owner] += order.locked
        open_wh[(order.slot, order.owner, order.side)] += order.remaining_wh
    problems = []
    for position in market.iter_positions():
        expected[position.account] += position.collateral
        bid_open = open_wh.pop((position.slot, position.account, BID), 0)
        ask_open = open_wh.pop((position.slot, position.account, "ask"), 0)
        if (position.bid_open_wh, position.ask_open_wh) != (bid_open, ask_open):
            problems.append(f"position {position.slot}/{position.account}: open {position.bid_open_wh}/"
                            f"{position.ask_open_wh} Wh, its orders {bid_open}/{ask_open} Wh")
    problems += [f"open orders without a position: {key}" for key in sorted(open_wh)]
    for account in iter_accounts(state):
        if account.locked != expected.get(account.id, 0):
            problems.append(f"account {account.id}: locked {account.locked}, orders and positions "
                            f"{expected.get(account.id, 0)}")
    return problems


def open_order_counts_match(state: State) -> list[str]:
    market = Market(state)
    counts: dict[str, int] = defaultdict(int)
    for order in market.iter_orders():
        counts[order.owner] += 1
    return [f"account {owner}: {market.open_order_count(owner)} open orders counted, {count} open"
            for owner, count in sorted(counts.items()) if market.open_order_count(owner) != count]


INVARIANTS = (orders_lock_what_they_require, locks_are_orders_and_positions, open_order_counts_match)
