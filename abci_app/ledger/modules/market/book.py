"""Market state accessors over the ``mkt/`` and ``fee/`` keys (docs/state.md).

Books are key ranges, so the store's sorted order is the price-time priority:

    mkt/book/<slot:be64>/<zone>/a/<price:be64>/<id:be64>          asks, cheapest first
    mkt/book/<slot:be64>/<zone>/b/<MAX-price:be64>/<id:be64>      bids, dearest first
    mkt/order/<id:be64>                  Order (open orders only)
    mkt/open/<account>/<id:be64>         the account's open orders
    mkt/own/<account>/<slot:be64>/<a|b>/<rank:be64>/<id:be64>  the account's orders by slot, side, price
    mkt/nopen/<account>                  be64: number of the account's open orders
    mkt/exp/<valid_until:be64>/<id:be64> open orders by expiry
    mkt/trade/<id:be64>                  Trade
    mkt/tslot/<slot:be64>/<id:be64>      trades of a slot
    mkt/tacct/<account>/<id:be64>        trades of an account
    mkt/pos/<slot:be64>/<account>        Position (open quantities, trades, collateral)
    mkt/clear/<slot:be64>/<zone>         Clearing (last price formed)
    mkt/taken/<offer_id hex>             TakenOffer (accepted off-chain offers)
    mkt/closed                           be64: start of the last slot whose gate has closed
    mkt/next/order, mkt/next/trade       be64 id counters
    fee/<from>/<to>/<dso>                GridFee component

Finding the best order is a seek into a sorted range (O(log n)); matching
pulls orders lazily, so it reads only as many as it fills.
"""

from __future__ import annotations

from collections.abc import Iterator

from abci_app.ledger import codec
from abci_app.ledger.modules.market.types import ASK, Clearing, GridFee, Order, Position, TakenOffer, Trade
from abci_app.ledger.state import State, be64, unbe64
from abci_app.ledger.store import prefix_end


def _book_side(slot: int, zone: str, side: str) -> bytes:
    return b"mkt/book/" + be64(slot) + b"/" + zone.encode() + (b"/a/" if side == ASK else b"/b/")


def _rank(order: Order) -> bytes:
    """Sort key of a price: ascending for asks, descending for bids."""
    return be64(order.price if order.side == ASK else codec.MAX_INT - order.price)


def _book_key(order: Order) -> bytes:
    return _book_side(order.slot, order.zone, order.side) + _rank(order) + b"/" + be64(order.id)


def _own_side(account: str, slot: int, side: str) -> bytes:
    return b"mkt/own/" + account.encode() + b"/" + be64(slot) + (b"/a/" if side == ASK else b"/b/")


def _own_key(order: Order) -> bytes:
    return _own_side(order.owner, order.slot, order.side) + _rank(order) + b"/" + be64(order.id)


class Market:
    """Typed access to the market's part of the state."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.kv = state.kv

    def _scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.kv.iterate(prefix, prefix_end(prefix))

    def _next_id(self, key: bytes) -> int:
        raw = self.kv.get(key)
        next_id = unbe64(raw) if raw is not None else 1
        self.kv.set(key, be64(next_id + 1))
        return next_id

    # -- orders ------------------------------------------------------------------------
    def next_order_id(self) -> int:
        return self._next_id(b"mkt/next/order")

    def get_order(self, order_id: int) -> Order | None:
        raw = self.kv.get(b"mkt/order/" + be64(order_id))
        return Order.decode(raw) if raw is not None else None

    def put_order(self, order: Order) -> None:
        """Store an order (new or changed): its record and every index."""
        self.kv.set(b"mkt/order/" + be64(order.id), order.encode())
        self.kv.set(_book_key(order), b"")
        self.kv.set(_own_key(order), b"")
        self.kv.set(b"mkt/open/" + order.owner.encode() + b"/" + be64(order.id), b"")
        self.kv.set(b"mkt/exp/" + be64(order.valid_until) + b"/" + be64(order.id), b"")

    def remove_order(self, order: Order) -> None:
        self.kv.delete(b"mkt/order/" + be64(order.id))
        self.kv.delete(_book_key(order))
        self.kv.delete(_own_key(order))
        self.kv.delete(b"mkt/open/" + order.owner.encode() + b"/" + be64(order.id))
        self.kv.delete(b"mkt/exp/" + be64(order.valid_until) + b"/" + be64(order.id))

    def best_own_order(self, account_id: str, slot: int, side: str) -> Order | None:
        """The account's best open order on one side of a slot (one seek)."""
        for key, _ in self._scan(_own_side(account_id, slot, side)):
            return self.get_order(unbe64(key[-8:]))
        return None

    def open_order_count(self, account_id: str) -> int:
        raw = self.kv.get(b"mkt/nopen/" + account_id.encode())
        return unbe64(raw) if raw is not None else 0

    def change_open_order_count(self, account_id: str, delta: int) -> None:
        count = self.open_order_count(account_id) + delta
        assert count >= 0, f"open-order count of {account_id} below zero"
        key = b"mkt/nopen/" + account_id.encode()
        if count:
            self.kv.set(key, be64(count))
        else:
            self.kv.delete(key)

    def open_order_ids(self, account_id: str) -> list[int]:
        prefix = b"mkt/open/" + account_id.encode() + b"/"
        return [unbe64(key[len(prefix):]) for key, _ in self._scan(prefix)]

    def iter_book(self, slot: int, zone: str, side: str) -> Iterator[Order]:
        """A zone's orders on one side of a slot's book, in priority order, read lazily.

        Do not write to the state while the iterator is alive.
        """
        for key, _ in self._scan(_book_side(slot, zone, side)):
            order = self.get_order(unbe64(key[-8:]))
            assert order is not None, "book index points at a missing order"
            yield order

    def book_orders(self, slot: int, zone: str, side: str) -> list[Order]:
        return list(self.iter_book(slot, zone, side))

    def slot_orders(self, slot: int) -> list[Order]:
        """Every open order of a slot (all zones, both sides)."""
        prefix = b"mkt/book/" + be64(slot) + b"/"
        orders = [self.get_order(unbe64(key[-8:])) for key, _ in self._scan(prefix)]
        return sorted((o for o in orders if o is not None), key=lambda o: o.id)

    def first_booked_slot(self) -> int | None:
        for key, _ in self._scan(b"mkt/book/"):
            return unbe64(key[len(b"mkt/book/"):len(b"mkt/book/") + 8])
        return None

    def booked_slots(self) -> list[int]:
        """Slots with open orders, ascending (one seek per slot)."""
        slots: list[int] = []
        start: bytes | None = b"mkt/book/"
        stop = prefix_end(b"mkt/book/")
        while start is not None:
            found = next(iter(self.kv.iterate(start, stop)), None)
            if found is None:
                break
            slot_prefix = found[0][: len(b"mkt/book/") + 8]
            slots.append(unbe64(slot_prefix[len(b"mkt/book/"):]))
            start = prefix_end(slot_prefix)
        return slots

    def orders_expired_before(self, time: int) -> list[int]:
        """Ids of open orders whose valid_until is before ``time``, in expiry then id order."""
        return [unbe64(key[-8:]) for key, _ in self.kv.iterate(b"mkt/exp/", b"mkt/exp/" + be64(time))]

    # -- slots ------------------------------------------------------------------------------
    def closed_through(self) -> int:
        """Start of the latest slot whose gate has closed (-1 before any)."""
        raw = self.kv.get(b"mkt/closed")
        return unbe64(raw) if raw is not None else -1

    def mark_closed_through(self, slot: int) -> None:
        self.kv.set(b"mkt/closed", be64(slot))

    # -- positions ------------------------------------------------------------------------------
    def get_position(self, slot: int, account_id: str) -> Position:
        raw = self.kv.get(b"mkt/pos/" + be64(slot) + b"/" + account_id.encode())
        if raw is None:
            return Position(slot=slot, account=account_id, bid_open_wh=0, ask_open_wh=0, bought_wh=0,
                            sold_wh=0, paid=0, received=0, fees_paid=0, collateral=0)
        return Position.decode(raw)

    def put_position(self, position: Position) -> None:
        key = b"mkt/pos/" + be64(position.slot) + b"/" + position.account.encode()
        if position.is_empty:
            self.kv.delete(key)
        else:
            self.kv.set(key, position.encode())

    def iter_positions(self) -> Iterator[Position]:
        for _, raw in self._scan(b"mkt/pos/"):
            yield Position.decode(raw)

    # -- trades -----------------------------------------------------------------------------------
    def next_trade_id(self) -> int:
        return self._next_id(b"mkt/next/trade")

    def add_trade(self, trade: Trade) -> None:
        self.kv.set(b"mkt/trade/" + be64(trade.id), trade.encode())
        self.kv.set(b"mkt/tslot/" + be64(trade.slot) + b"/" + be64(trade.id), b"")
        for account in sorted({trade.buyer, trade.seller}):
            self.kv.set(b"mkt/tacct/" + account.encode() + b"/" + be64(trade.id), b"")

    def get_trade(self, trade_id: int) -> Trade | None:
        raw = self.kv.get(b"mkt/trade/" + be64(trade_id))
        return Trade.decode(raw) if raw is not None else None

    def _trades(self, prefix: bytes, limit: int) -> list[Trade]:
        ids = [unbe64(key[-8:]) for key, _ in self._scan(prefix)]
        trades = [self.get_trade(trade_id) for trade_id in ids[-limit:]]
        return [t for t in trades if t is not None]

    def slot_trades(self, slot: int, limit: int = 1_000_000) -> list[Trade]:
        return self._trades(b"mkt/tslot/" + be64(slot) + b"/", limit)

    def account_trades(self, account_id: str, limit: int = 1_000_000) -> list[Trade]:
        return self._trades(b"mkt/tacct/" + account_id.encode() + b"/", limit)

    # -- accepted off-chain offers -------------------------------------------------------------
    def get_taken_offer(self, offer_id: bytes) -> TakenOffer | None:
        raw = self.kv.get(b"mkt/taken/" + offer_id.hex().encode())
        return TakenOffer.decode(raw) if raw is not None else None

    def mark_offer_taken(self, taken: TakenOffer) -> None:
        self.kv.set(b"mkt/taken/" + taken.offer_id.hex().encode(), taken.encode())

    # -- clearing prices -----------------------------------------------------------------------------
    def get_clearing(self, slot: int, zone: str) -> Clearing | None:
        raw = self.kv.get(b"mkt/clear/" + be64(slot) + b"/" + zone.encode())
        return Clearing.decode(raw) if raw is not None else None

    def put_clearing(self, clearing: Clearing) -> None:
        self.kv.set(b"mkt/clear/" + be64(clearing.slot) + b"/" + clearing.zone.encode(), clearing.encode())

    # -- grid fees --------------------------------------------------------------------------------------
    def set_fee_component(self, fee: GridFee) -> None:
        key = f"fee/{fee.from_zone}/{fee.to_zone}/{fee.dso}".encode()
        if fee.fee_per_kwh == 0:
            self.kv.delete(key)
        else:
            self.kv.set(key, fee.encode())

    def fee_components(self, from_zone: str, to_zone: str) -> list[GridFee]:
        """The DSOs' components of the fee from ``from_zone`` to ``to_zone``, by DSO id."""
        return [GridFee.decode(raw) for _, raw in self._scan(f"fee/{from_zone}/{to_zone}/".encode())]

    def fee(self, from_zone: str, to_zone: str) -> int:
        """Grid fee per kWh for energy from ``from_zone`` to ``to_zone``: the sum of the components."""
        return sum(component.fee_per_kwh for component in self.fee_components(from_zone, to_zone))

    def iter_fees(self) -> Iterator[GridFee]:
        for _, raw in self._scan(b"fee/"):
            yield GridFee.decode(raw)

