"""Market queries (paths listed in docs/queries.md); answers are JSON-ready dicts."""

from __future__ import annotations

from typing import Any

from abci_app.ledger import errors
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.market.direct import OFFER_ID_BYTES
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.records import ASK, BID, Order, Trade
from abci_app.ledger.query_args import u64_arg
from abci_app.ledger.state import State
from abci_app.ledger.wire import plain

MAX_LEVELS = 50
MAX_TRADES = 500


def query(state: State, head: str, args: list[str]) -> Any | None:
    """Answer a market path, or None if ``head``/``args`` is not one."""
    market = Market(state)
    if head == "book" and len(args) == 2:
        return book_depth(state, market, u64_arg(args[0], "slot"), args[1])
    if head == "best" and len(args) == 2:
        return best_prices(state, market, u64_arg(args[0], "slot"), args[1])
    if head == "orders" and len(args) == 1:
        orders = [market.get_order(order_id) for order_id in market.open_order_ids(args[0])]
        return {"account": args[0], "orders": [_order(o) for o in orders if o is not None]}
    if head == "order" and len(args) == 1:
        order = market.get_order(u64_arg(args[0], "order id"))
        if order is None:
            raise errors.NotFound(f"order {args[0]} is not open")
        return _order(order)
    if head == "trades" and len(args) == 2 and args[0] == "slot":
        trades = market.slot_trades(u64_arg(args[1], "slot"), MAX_TRADES)
        return {"slot": int(args[1]), "trades": [_trade(t) for t in trades]}
    if head == "trades" and len(args) == 2 and args[0] == "account":
        return {"account": args[1], "trades": [_trade(t) for t in market.account_trades(args[1], MAX_TRADES)]}
    if head == "clearing" and len(args) == 2:
        clearing = market.get_clearing(u64_arg(args[0], "slot"), args[1])
        if clearing is None:
            raise errors.NotFound(f"no price formed in slot {args[0]} zone {args[1]}")
        return plain(clearing)
    if head == "position" and len(args) == 2:
        return plain(market.get_position(u64_arg(args[0], "slot"), args[1]))
    if head == "slots" and not args:
        return {"slots": market.booked_slots(), "closed_through": market.closed_through()}
    if head == "fees" and not args:
        return fee_matrix(state, market)
    if head == "offer" and len(args) == 1:
        taken = market.get_taken_offer(_offer_id_arg(args[0]))
        if taken is None:
            raise errors.NotFound(f"offer {args[0]} has not been accepted")
        return {**plain(taken), "offer_id": taken.offer_id.hex()}
    return None


def _offer_id_arg(text: str) -> bytes:
    # Lowercase only: one spelling per offer id, as the CLI prints it.
    if len(text) != 2 * OFFER_ID_BYTES or text.strip("0123456789abcdef"):
        raise errors.BadQuery(f"offer id {text!r} is not 64 lowercase hex digits")
    return bytes.fromhex(text)


def _levels(orders: list[Order]) -> list[dict[str, int]]:
    levels: list[dict[str, int]] = []
    for order in orders:
        if levels and levels[-1]["price"] == order.price:
            levels[-1]["quantity_wh"] += order.remaining_wh
            levels[-1]["orders"] += 1
        elif len(levels) < MAX_LEVELS:
            levels.append({"price": order.price, "quantity_wh": order.remaining_wh, "orders": 1})
        else:
            break
    return levels


def book_depth(state: State, market: Market, slot: int, zone: str) -> dict[str, Any]:
    """Depth of one zone's book, aggregated by price level, best first (at most 50 levels a side)."""
    _require_zone(state, zone)
    return {"slot": slot, "zone": zone, "bids": _levels(list(_take_levels(market, slot, zone, BID))),
            "asks": _levels(list(_take_levels(market, slot, zone, ASK)))}


def _take_levels(market: Market, slot: int, zone: str, side: str) -> list[Order]:
    out: list[Order] = []
    prices: set[int] = set()
    for order in market.iter_book(slot, zone, side):
        if order.price not in prices and len(prices) == MAX_LEVELS:
            break
        prices.add(order.price)
        out.append(order)
    return out


def best_prices(state: State, market: Market, slot: int, buyer_zone: str) -> dict[str, Any]:
    """Best ask for a buyer in ``buyer_zone`` across all zones (by effective price) and the zone's best bid."""
    _require_zone(state, buyer_zone)
    best_ask: dict[str, Any] | None = None
    for zone in sorted(gov.zone_dsos(state)):
        head = next(iter(market.iter_book(slot, zone, ASK)), None)
        if head is None:
            continue
        fee = market.fee(zone, buyer_zone)
        candidate = {"zone": zone, "price": head.price, "fee_per_kwh": fee, "effective_price": head.price + fee,
                     "quantity_wh": head.remaining_wh, "order": head.id, "origin": head.origin}
        if best_ask is None or (candidate["effective_price"], head.id) < (best_ask["effective_price"],
                                                                         best_ask["order"]):
            best_ask = candidate
    head_bid = next(iter(market.iter_book(slot, buyer_zone, BID)), None)
    best_bid = None if head_bid is None else {
        "zone": buyer_zone, "price": head_bid.price, "quantity_wh": head_bid.remaining_wh, "order": head_bid.id}
    return {"slot": slot, "buyer_zone": buyer_zone, "best_ask": best_ask, "best_bid": best_bid}


def fee_matrix(state: State, market: Market) -> dict[str, Any]:
    zones = sorted(gov.zone_dsos(state))
    return {
        "zones": zones,
        "fees": [{"from": a, "to": b, "fee_per_kwh": market.fee(a, b)} for a in zones for b in zones],
        "components": [plain(component) for component in market.iter_fees()],
    }


def _require_zone(state: State, zone: str) -> None:
    if zone not in gov.zone_dsos(state):
        raise errors.NotFound(f"zone {zone} is not served by any DSO")


def _order(order: Order) -> dict[str, Any]:
    out: dict[str, Any] = plain(order)
    out["accept_origins"] = list(order.accept_origins)
    return out


def _trade(trade: Trade) -> dict[str, Any]:
    out: dict[str, Any] = plain(trade)
    return out
