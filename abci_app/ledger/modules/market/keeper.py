"""Accessors of the market's state (keys in ``keys.py``).

Books are key ranges, so the store's sorted order is the price-time priority.
Finding the best order is a seek into a sorted range (O(log n)); matching
pulls orders lazily, so it reads only as many as it fills.
"""

from __future__ import annotations

from collections.abc import Iterator

from abci_app.ledger import errors
from abci_app.ledger.modules.market import keys
from abci_app.ledger.modules.market.records import Clearing, GridFee, Order, Position, TakenOffer, Trade
from abci_app.ledger.state import State, be64, unbe64
from abci_app.ledger.store import prefix_end


class Market:
    """Typed access to the market's part of the state (a keeper: one per state view)."""

    __slots__ = ("kv", "state")

    def __init__(self, state: State) -> None:
        self.state = state
        self.kv = state.kv

    def _next_id(self, key: bytes) -> int:
        raw = self.kv.get(key)
        next_id = unbe64(raw) if raw is not None else 1
        self.kv.set(key, be64(next_id + 1))
        return next_id

    # -- orders ------------------------------------------------------------------------
    def next_order_id(self) -> int:
        return self._next_id(keys.NEXT_ORDER)

    def get_order(self, order_id: int) -> Order | None:
        return self.state.get(keys.order_key(order_id), Order)

    def require_order(self, order_id: int) -> Order:
        """An order an index points at: it must exist."""
        order = self.get_order(order_id)
        if order is None:
            raise errors.InvariantViolated(f"an index points at order {order_id}, which is not stored")
        return order

    def put_order(self, order: Order) -> None:
        """Store an order (new or changed): its record and every index."""
        self.state.put(keys.order_key(order.id), order)
        self.kv.set(keys.book_key(order), b"")
        self.kv.set(keys.own_key(order), b"")
        self.kv.set(keys.open_key(order.owner, order.id), b"")
        self.kv.set(keys.expiry_key(order.valid_until, order.id), b"")

    def remove_order(self, order: Order) -> None:
        self.kv.delete(keys.order_key(order.id))
        self.kv.delete(keys.book_key(order))
        self.kv.delete(keys.own_key(order))
        self.kv.delete(keys.open_key(order.owner, order.id))
        self.kv.delete(keys.expiry_key(order.valid_until, order.id))

    def best_own_order(self, account_id: str, slot: int, side: str) -> Order | None:
        """The account's best open order on one side of a slot (one seek)."""
        for key, _ in self.state.scan(keys.own_side(account_id, slot, side)):
            return self.require_order(unbe64(key[-8:]))
        return None

    def open_order_count(self, account_id: str) -> int:
        raw = self.kv.get(keys.open_count_key(account_id))
        return unbe64(raw) if raw is not None else 0

    def change_open_order_count(self, account_id: str, delta: int) -> None:
        count = self.open_order_count(account_id) + delta
        if count < 0:
            raise errors.InvariantViolated(f"open-order count of {account_id} below zero")
        key = keys.open_count_key(account_id)
        if count:
            self.kv.set(key, be64(count))
        else:
            self.kv.delete(key)

    def open_order_ids(self, account_id: str) -> list[int]:
        prefix = keys.open_prefix(account_id)
        return [unbe64(key[len(prefix):]) for key, _ in self.state.scan(prefix)]

    def iter_book(self, slot: int, zone: str, side: str) -> Iterator[Order]:
        """A zone's orders on one side of a slot's book, in priority order, read lazily.

        Do not write to the state while the iterator is alive.
        """
        for key, _ in self.state.scan(keys.book_side(slot, zone, side)):
            yield self.require_order(unbe64(key[-8:]))

    def book_orders(self, slot: int, zone: str, side: str) -> list[Order]:
        return list(self.iter_book(slot, zone, side))

    def slot_orders(self, slot: int) -> list[Order]:
        """Every open order of a slot (all zones, both sides), by id."""
        orders = [self.require_order(unbe64(key[-8:])) for key, _ in self.state.scan(keys.slot_book(slot))]
        return sorted(orders, key=lambda o: o.id)

    def iter_orders(self) -> Iterator[Order]:
        return self.state.scan_records(keys.ORDERS, Order)

    def first_booked_slot(self) -> int | None:
        for key, _ in self.state.scan(keys.BOOKS):
            return unbe64(key[len(keys.BOOKS):len(keys.BOOKS) + 8])
        return None

    def booked_slots(self) -> list[int]:
        """Slots with open orders, ascending (one seek per slot)."""
        slots: list[int] = []
        start: bytes | None = keys.BOOKS
        stop = prefix_end(keys.BOOKS)
        while start is not None:
            found = next(iter(self.kv.iterate(start, stop)), None)
            if found is None:
                break
            slot_prefix = found[0][: len(keys.BOOKS) + 8]
            slots.append(unbe64(slot_prefix[len(keys.BOOKS):]))
            start = prefix_end(slot_prefix)
        return slots

    def orders_expired_before(self, time: int) -> list[int]:
        """Ids of open orders whose valid_until is before ``time``, in expiry then id order."""
        return [unbe64(key[-8:]) for key, _ in self.kv.iterate(keys.EXPIRY, keys.EXPIRY + be64(time))]

    # -- slots ------------------------------------------------------------------------------
    def closed_through(self) -> int:
        """Start of the latest slot whose gate has closed (-1 before any)."""
        raw = self.kv.get(keys.CLOSED)
        return unbe64(raw) if raw is not None else -1

    def mark_closed_through(self, slot: int) -> None:
        self.kv.set(keys.CLOSED, be64(slot))

    # -- positions ------------------------------------------------------------------------------
    def get_position(self, slot: int, account_id: str) -> Position:
        position = self.state.get(keys.position_key(slot, account_id), Position)
        if position is None:
            return Position(slot=slot, account=account_id, bid_open_wh=0, ask_open_wh=0, bought_wh=0,
                            sold_wh=0, paid=0, received=0, fees_paid=0, collateral=0)
        return position

    def put_position(self, position: Position) -> None:
        key = keys.position_key(position.slot, position.account)
        if position.is_empty:
            self.kv.delete(key)
        else:
            self.state.put(key, position)

    def iter_positions(self) -> Iterator[Position]:
        return self.state.scan_records(keys.POSITIONS, Position)

    # -- trades -----------------------------------------------------------------------------------
    def next_trade_id(self) -> int:
        return self._next_id(keys.NEXT_TRADE)

    def add_trade(self, trade: Trade) -> None:
        self.state.put(keys.trade_key(trade.id), trade)
        self.kv.set(keys.slot_trades_prefix(trade.slot) + be64(trade.id), b"")
        for account in sorted({trade.buyer, trade.seller}):
            self.kv.set(keys.account_trades_prefix(account) + be64(trade.id), b"")

    def get_trade(self, trade_id: int) -> Trade | None:
        return self.state.get(keys.trade_key(trade_id), Trade)

    def _trades(self, prefix: bytes, limit: int) -> list[Trade]:
        ids = [unbe64(key[-8:]) for key, _ in self.state.scan(prefix)]
        trades = [self.get_trade(trade_id) for trade_id in ids[-limit:]]
        return [t for t in trades if t is not None]

    def slot_trades(self, slot: int, limit: int = 1_000_000) -> list[Trade]:
        return self._trades(keys.slot_trades_prefix(slot), limit)

    def account_trades(self, account_id: str, limit: int = 1_000_000) -> list[Trade]:
        return self._trades(keys.account_trades_prefix(account_id), limit)

    # -- accepted off-chain offers -------------------------------------------------------------
    def get_taken_offer(self, offer_id: bytes) -> TakenOffer | None:
        return self.state.get(keys.taken_key(offer_id), TakenOffer)

    def mark_offer_taken(self, taken: TakenOffer) -> None:
        self.state.put(keys.taken_key(taken.offer_id), taken)

    # -- clearing prices -----------------------------------------------------------------------------
    def get_clearing(self, slot: int, zone: str) -> Clearing | None:
        return self.state.get(keys.clearing_key(slot, zone), Clearing)

    def put_clearing(self, clearing: Clearing) -> None:
        self.state.put(keys.clearing_key(clearing.slot, clearing.zone), clearing)

    # -- grid fees --------------------------------------------------------------------------------------
    def set_fee_component(self, fee: GridFee) -> None:
        key = keys.fee_key(fee.from_zone, fee.to_zone, fee.dso)
        if fee.fee_per_kwh == 0:
            self.kv.delete(key)
        else:
            self.state.put(key, fee)

    def fee_components(self, from_zone: str, to_zone: str) -> list[GridFee]:
        """The DSOs' components of the fee from ``from_zone`` to ``to_zone``, by DSO id."""
        return list(self.state.scan_records(keys.fee_prefix(from_zone, to_zone), GridFee))

    def fee(self, from_zone: str, to_zone: str) -> int:
        """Grid fee per kWh for energy from ``from_zone`` to ``to_zone``: the sum of the components."""
        return sum(component.fee_per_kwh for component in self.fee_components(from_zone, to_zone))

    def iter_fees(self) -> Iterator[GridFee]:
        return self.state.scan_records(keys.FEES, GridFee)
