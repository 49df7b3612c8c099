"""Keys of the market module (``mkt/`` and ``fee/`` keys (docs/state.md).

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
"""

from __future__ import annotations

from abci_app.ledger import codec
from abci_app.ledger.modules.market.records import ASK, Order
from abci_app.ledger.state import be64

BOOKS = b"mkt/book/"
ORDERS = b"mkt/order/"
POSITIONS = b"mkt/pos/"
FEES = b"fee/"
EXPIRY = b"mkt/exp/"
CLOSED = b"mkt/closed"
NEXT_ORDER = b"mkt/next/order"
NEXT_TRADE = b"mkt/next/trade"


def book_side(slot: int, zone: str, side: str) -> bytes:
    return BOOKS + be64(slot) + b"/" + zone.encode() + (b"/a/" if side == ASK else b"/b/")


def slot_book(slot: int) -> bytes:
    return BOOKS + be64(slot) + b"/"


def rank(order: Order) -> bytes:
    """Sort key of a price: ascending for asks, descending for bids."""
    return be64(order.price if order.side == ASK else codec.MAX_INT - order.price)


def book_key(order: Order) -> bytes:
    return book_side(order.slot, order.zone, order.side) + rank(order) + b"/" + be64(order.id)


def own_side(account: str, slot: int, side: str) -> bytes:
    return b"mkt/own/" + account.encode() + b"/" + be64(slot) + (b"/a/" if side == ASK else b"/b/")


def own_key(order: Order) -> bytes:
    return own_side(order.owner, order.slot, order.side) + rank(order) + b"/" + be64(order.id)


def order_key(order_id: int) -> bytes:
    return ORDERS + be64(order_id)


def open_prefix(account: str) -> bytes:
    return b"mkt/open/" + account.encode() + b"/"


def open_key(account: str, order_id: int) -> bytes:
    return open_prefix(account) + be64(order_id)


def open_count_key(account: str) -> bytes:
    return b"mkt/nopen/" + account.encode()


def expiry_key(valid_until: int, order_id: int) -> bytes:
    return EXPIRY + be64(valid_until) + b"/" + be64(order_id)


def trade_key(trade_id: int) -> bytes:
    return b"mkt/trade/" + be64(trade_id)


def slot_trades_prefix(slot: int) -> bytes:
    return b"mkt/tslot/" + be64(slot) + b"/"


def account_trades_prefix(account: str) -> bytes:
    return b"mkt/tacct/" + account.encode() + b"/"


def position_key(slot: int, account: str) -> bytes:
    return POSITIONS + be64(slot) + b"/" + account.encode()


def clearing_key(slot: int, zone: str) -> bytes:
    return b"mkt/clear/" + be64(slot) + b"/" + zone.encode()


def taken_key(offer_id: bytes) -> bytes:
    return b"mkt/taken/" + offer_id.hex().encode()


def fee_prefix(from_zone: str, to_zone: str) -> bytes:
    return FEES + f"{from_zone}/{to_zone}/".encode()


def fee_key(from_zone: str, to_zone: str, dso: str) -> bytes:
    return fee_prefix(from_zone, to_zone) + dso.encode()
