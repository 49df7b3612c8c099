"""Market handlers: the placement rules, then execution of the matcher's fills.

Lock accounting (checked by tests/test_market_invariants.py): an account's
``locked`` equals the ``locked`` of its open orders plus the ``collateral`` of
its unsettled positions. An order locks ``required_lock(remaining)``: a bid
its limit price (all-in, so it covers the highest grid fee it can pay) plus
collateral, an ask its collateral. A fill releases the filled part, pays the
trade from it, and moves the fill's collateral to the slot's position, where it
stays until settlement; the seller's proceeds join it there (held, not free,
until the seller is charged for what it delivered: money received for energy
not yet delivered cannot leave before its delivery is settled).
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import attrgetter

from msgspec.structs import replace

from abci_app.ledger import codec, errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import PARTICIPANT_ROLES, Account
from abci_app.ledger.modules.bank import keeper as bank
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.gov.records import Operator
from abci_app.ledger.modules.market.direct import OfferBody
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.market.matching import FeeFn, Fill, accepts, crosses, match_continuous
from abci_app.ledger.modules.market.msgs import AcceptOffer, CancelOrder, FeeEntry, PlaceOrder, SetGridFees
from abci_app.ledger.modules.market.records import (
    ASK,
    BID,
    CALL_AUCTION,
    CONTINUOUS,
    DIRECT,
    FOK,
    GRID_MIX,
    IOC,
    MECHANISMS,
    POST_ONLY,
    Clearing,
    GridFee,
    Order,
    TakenOffer,
    Trade,
    amount,
)
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.modules.settlement.keeper import mark_due
from abci_app.ledger.msg import AdmitContext, TxContext, require_dso
from abci_app.ledger.params import Params, get_params
from abci_app.ledger.state import State


# -- admission (CheckTx): who may trade, what has expired, the most an order or acceptance locks -----
def authorise_trader(trader: Account) -> None:
    # Rule: only participants trade; operators run the market.
    if trader.role not in PARTICIPANT_ROLES:
        raise errors.NotAuthorised("only consumers, prosumers and producers trade")
    # Rule: an account with unpaid settlement debt places no orders until it repays.
    if trader.debt > 0:
        raise errors.AccountInDebt(f"account owes {trader.debt} from settlement; deposit to repay it first")


def _check_not_expired(valid_until: int, now: int) -> None:
    # Rule: an order may trade at least in the block that places it.
    if valid_until < now:
        raise errors.OrderExpired(f"valid_until {valid_until} is before the block time {now}")


def admit_place_order(ctx: AdmitContext, msg: PlaceOrder) -> int:
    authorise_trader(ctx.signer)
    _check_not_expired(msg.valid_until, ctx.time)
    collateral = amount(msg.quantity_wh, ctx.params.collateral_per_kwh)
    return collateral + (amount(msg.quantity_wh, msg.price) if msg.side == BID else 0)


def admit_accept_offer(ctx: AdmitContext, msg: AcceptOffer) -> int:
    offer, quantity = msg.offer.body, msg.acceptance.body.quantity_wh
    authorise_trader(ctx.signer)
    _check_not_expired(offer.valid_until, ctx.time)
    # Taken stays taken: refusing a late acceptance here never refuses one that could still succeed.
    _check_not_taken(Market(ctx.state), msg.offer.offer_id)
    collateral = amount(quantity, ctx.params.collateral_per_kwh)
    if offer.side == BID:
        return collateral  # the taker sells
    # The taker buys at the offer's price plus the grid fee from the maker's zone to its own.
    return collateral + amount(quantity, offer.price + Market(ctx.state).fee(offer.zone, ctx.signer.zone))


def admit_set_grid_fees(ctx: AdmitContext, msg: SetGridFees) -> int:
    require_dso(ctx.signer)
    return 0


# -- placing ---------------------------------------------------------------------------------
def handle_place_order(ctx: TxContext, msg: PlaceOrder) -> None:
    market = Market(ctx.state)
    params = get_params(ctx.state)
    trader = ctx.signer
    authorise_trader(trader)
    _check_slot_open(market, params, msg.slot, ctx.time)
    _check_not_expired(msg.valid_until, ctx.time)
    _check_price_and_quantity(params, msg.price, msg.quantity_wh)
    # Rule: the call auction has no immediate matching, so IOC and FOK cannot be honoured.
    if params.matching_mode == CALL_AUCTION and msg.tif in (IOC, FOK):
        raise errors.UnsupportedTimeInForce(f"{msg.tif} orders need continuous matching")
    _check_capacity(ctx.state, market, params, trader.id, msg.slot, msg.side, msg.quantity_wh)
    # Rule: an account holds at most max_open_orders open orders.
    if market.open_order_count(trader.id) >= params.max_open_orders:
        raise errors.TooManyOpenOrders(f"account already has {params.max_open_orders} open orders")
    order = Order(
        id=market.next_order_id(), owner=trader.id, side=msg.side, zone=trader.zone, slot=msg.slot,
        price=msg.price, quantity_wh=msg.quantity_wh, remaining_wh=msg.quantity_wh, valid_until=msg.valid_until,
        tif=msg.tif, client_order_id=msg.client_order_id, origin=msg.origin, accept_origins=msg.accept_origins,
        collateral_per_kwh=params.collateral_per_kwh, locked=0, placed_at=ctx.time,
    )
    _check_no_self_cross(market, order)
    order = open_order(market, order)
    ctx.events.append(_placed_event(order))
    if params.matching_mode == CALL_AUCTION:
        return
    fills = match_continuous(order, _opposite_books(ctx.state, market, order), _fee_memo(market))
    filled = sum(fill.quantity_wh for fill in fills)
    # Rule: fill-or-kill trades its whole quantity at once or not at all.
    if order.tif == FOK and filled < order.quantity_wh:
        raise errors.FillOrKillUnfilled(f"only {filled} of {order.quantity_wh} Wh available")
    # Rule: post-only never takes liquidity.
    if order.tif == POST_ONLY and fills:
        raise errors.PostOnlyWouldTake("post-only order would trade on arrival")
    for fill in fills:
        order = _apply_fill(ctx, market, order, fill)
    if order.remaining_wh > 0 and order.tif in (IOC, FOK):
        close_order(market, order, "order.cancelled", "ioc", ctx.events)


def _check_slot_open(market: Market, params: Params, slot: int, now: int) -> None:
    # Rule: slots start at multiples of the slot length.
    if slot % params.slot_length_s != 0:
        raise errors.MisalignedSlot(f"slot {slot} is not a multiple of {params.slot_length_s}")
    # Rule: a slot's book is open until gate closure (slot start minus the lead).
    if slot <= market.closed_through() or slot - params.gate_closure_lead_s <= now:
        raise errors.SlotClosed(f"the gate of slot {slot} closed at {slot - params.gate_closure_lead_s}")
    # Rule: no orders for slots beyond the trading horizon.
    if slot - now > params.max_slot_ahead_s:
        raise errors.SlotTooFar(f"slot {slot} starts more than {params.max_slot_ahead_s} s ahead")


def _check_price_and_quantity(params: Params, price: int, quantity_wh: int) -> None:
    # Rule: prices are whole ticks.
    if price % params.tick_size != 0:
        raise errors.PriceOffTick(f"price {price} is not a multiple of the tick size {params.tick_size}")
    # Rule: prices stay between the market's price floor and cap.
    if not params.min_price_per_kwh <= price <= params.max_price_per_kwh:
        raise errors.ValueOutOfRange(f"price {price} is outside [{params.min_price_per_kwh}, "
                                     f"{params.max_price_per_kwh}] per kWh")
    # Rule: quantities are at least the minimum unit.
    if quantity_wh < params.min_quantity_wh:
        raise errors.QuantityTooSmall(f"quantity below the minimum of {params.min_quantity_wh} Wh")


def _check_capacity(state: State, market: Market, params: Params, owner: str, slot: int, side: str,
                    quantity_wh: int) -> None:
    meters = [registry.get_meter(state, meter_id) for meter_id in registry.meters_of(state, owner)]
    active = [m for m in meters if m is not None and m.active]
    position = market.get_position(slot, owner)
    if side == ASK:
        capacity = sum(m.export_capacity_w for m in active) * params.slot_length_s // 3600
        committed = position.ask_open_wh + position.sold_wh
    else:
        capacity = sum(m.import_capacity_w for m in active) * params.slot_length_s // 3600
        committed = position.bid_open_wh + position.bought_wh
    # Rule: a seller offers at most its meters' export capacity x slot length, a buyer bids at
    # most their import capacity x slot length (open orders and trades of the slot included).
    if committed + quantity_wh > capacity:
        direction = "export" if side == ASK else "import"
        raise errors.CapacityExceeded(
            f"{owner}: {quantity_wh} Wh on top of {committed} Wh exceeds the meters' {direction} capacity "
            f"of {capacity} Wh in this slot"
        )


def _check_no_self_cross(market: Market, order: Order) -> None:
    other_side = ASK if order.side == BID else BID
    # The owner's best opposite order of the slot is the only one that can cross first.
    own = market.best_own_order(order.owner, order.slot, other_side)
    if own is None:
        return
    bid, ask = (order, own) if order.side == BID else (own, order)
    # Rule: no self-trade: an order that crosses one of the owner's own resting orders of
    # the same slot is rejected whole (cancel the resting order first).
    if crosses(bid.price, ask.price, market.fee(ask.zone, bid.zone)):
        raise errors.SelfTrade(f"order crosses the signer's own resting order {own.id}")


def _fee_memo(market: Market) -> FeeFn:
    """``market.fee`` read once per zone pair: matching asks for the same route once per resting order."""
    cache: dict[tuple[str, str], int] = {}

    def fee(from_zone: str, to_zone: str) -> int:
        if (from_zone, to_zone) not in cache:
            cache[(from_zone, to_zone)] = market.fee(from_zone, to_zone)
        return cache[(from_zone, to_zone)]

    return fee


def _opposite_books(state: State, market: Market, order: Order) -> dict[str, Iterator[Order]]:
    other = ASK if order.side == BID else BID
    return {zone: market.iter_book(order.slot, zone, other) for zone in sorted(gov.zone_dsos(state))}


def _apply_fill(ctx: TxContext, market: Market, incoming: Order, fill: Fill) -> Order:
    resting = market.require_order(fill.resting_id)
    bid, ask = (incoming, resting) if incoming.side == BID else (resting, incoming)
    bid, ask, _ = execute_trade(market, bid, ask, fill.quantity_wh, fill.price, MECHANISMS[CONTINUOUS], ctx.height,
                                ctx.time, ctx.events)
    return bid if incoming.side == BID else ask


# -- lifecycle and execution ------------------------------------------------------------------
def open_order(market: Market, order: Order) -> Order:
    """Lock what the order needs and put it on the book."""
    needed = order.required_lock(order.remaining_wh)
    bank.lock(market.state, order.owner, needed)
    order = replace(order, locked=needed)
    market.put_order(order)
    market.change_open_order_count(order.owner, 1)
    _change_open(market, order, order.remaining_wh)
    return order


def close_order(market: Market, order: Order, event_type: str, reason: str, events: list[Event]) -> None:
    """Take an order off the book and release its lock (cancelled, expired, or IOC remainder)."""
    market.remove_order(order)
    market.change_open_order_count(order.owner, -1)
    bank.unlock(market.state, order.owner, order.locked)
    _change_open(market, order, -order.remaining_wh)
    events.append(event(event_type, id=order.id, account=order.owner, slot=order.slot, side=order.side,
                        remaining_wh=order.remaining_wh, released=order.locked, reason=reason))


def _change_open(market: Market, order: Order, delta_wh: int) -> None:
    position = market.get_position(order.slot, order.owner)
    if order.side == BID:
        position = replace(position, bid_open_wh=position.bid_open_wh + delta_wh)
    else:
        position = replace(position, ask_open_wh=position.ask_open_wh + delta_wh)
    market.put_position(position)


def execute_trade(market: Market, bid: Order, ask: Order, quantity_wh: int, price: int, mechanism: str,
                  height: int, time: int, events: list[Event]) -> tuple[Order, Order, Trade]:
    """Re-check and apply one match: pay seller and DSOs, move collateral, record the trade.

    Returns both orders after the fill (removed from the book when filled) and the trade.
    """
    state = market.state
    components = market.fee_components(ask.zone, bid.zone)
    fee_per_kwh = sum(c.fee_per_kwh for c in components)
    # Execution re-checks what matching promised; a failure here is a bug, not a user error.
    if not (bid.owner != ask.owner and bid.slot == ask.slot and accepts(bid, ask)
            and 0 < quantity_wh <= min(bid.remaining_wh, ask.remaining_wh)
            and ask.price <= price and price + fee_per_kwh <= bid.price):
        raise errors.InvariantViolated(f"orders {bid.id} and {ask.id} cannot trade {quantity_wh} Wh at {price}")
    value = amount(quantity_wh, price)
    shares = [(c.dso, amount(quantity_wh, c.fee_per_kwh)) for c in components]
    fee = sum(share for _, share in shares)
    new_bid = _after_fill(bid, quantity_wh)
    new_ask = _after_fill(ask, quantity_wh)
    bid_collateral = amount(quantity_wh, bid.collateral_per_kwh)
    ask_collateral = amount(quantity_wh, ask.collateral_per_kwh)
    # Buyer: release the order's lock, pay energy and fees, lock what remains plus the collateral.
    bank.unlock(state, bid.owner, bid.locked)
    bank.debit(state, bid.owner, value + fee)
    bank.lock(state, bid.owner, new_bid.locked + bid_collateral)
    # Seller: release the order's lock, receive the energy price, lock what remains plus the collateral and
    # the proceeds, both held until the slot's settlement charges the seller for what it delivered.
    bank.unlock(state, ask.owner, ask.locked)
    bank.credit(state, ask.owner, value)
    bank.lock(state, ask.owner, new_ask.locked + ask_collateral + value)
    for dso, share in shares:
        if share:
            bank.credit(state, dso, share)
    trade = Trade(
        id=market.next_trade_id(), slot=bid.slot, buyer=bid.owner, seller=ask.owner, buyer_zone=bid.zone,
        seller_zone=ask.zone, quantity_wh=quantity_wh, price=price, fee_per_kwh=fee_per_kwh, value=value, fee=fee,
        bid_order=bid.id, ask_order=ask.id, origin=ask.origin, mechanism=mechanism, height=height, time=time,
    )
    market.add_trade(trade)
    _book_trade(market, trade, bid_collateral, ask_collateral + value)
    _journal_trade(state, trade, shares)
    mark_due(state, trade.slot, trade.buyer)
    mark_due(state, trade.slot, trade.seller)
    for after in (new_bid, new_ask):
        if after.remaining_wh == 0:
            market.remove_order(after)
            market.change_open_order_count(after.owner, -1)
        else:
            market.put_order(after)
        events.append(event("order.filled", id=after.id, account=after.owner, trade=trade.id,
                            quantity_wh=quantity_wh, remaining_wh=after.remaining_wh,
                            full=after.remaining_wh == 0))
    events.append(event("trade", id=trade.id, slot=trade.slot, buyer=trade.buyer, seller=trade.seller,
                        buyer_zone=trade.buyer_zone, seller_zone=trade.seller_zone, quantity_wh=quantity_wh,
                        price=price, fee_per_kwh=fee_per_kwh, value=value, fee=fee, origin=trade.origin,
                        mechanism=mechanism, bid_order=bid.id, ask_order=ask.id))
    return new_bid, new_ask, trade


def _journal_trade(state: State, trade: Trade, shares: list[tuple[str, int]]) -> None:
    reference = f"trade {trade.id} slot {trade.slot}"
    bank.journal(state, trade.buyer, trade.time, trade.height, "energy_bought", -trade.value, reference)
    if trade.fee:
        bank.journal(state, trade.buyer, trade.time, trade.height, "grid_fee", -trade.fee, reference)
    bank.journal(state, trade.seller, trade.time, trade.height, "energy_sold", trade.value, reference)
    for dso, share in shares:
        if share:
            bank.journal(state, dso, trade.time, trade.height, "grid_fee_income", share, reference)


def _after_fill(order: Order, quantity_wh: int) -> Order:
    remaining = order.remaining_wh - quantity_wh
    return replace(order, remaining_wh=remaining, locked=order.required_lock(remaining))


def _book_trade(market: Market, trade: Trade, bid_collateral: int, ask_collateral: int) -> None:
    """Update both positions (the delivery obligation) and the last price of the seller's zone."""
    buyer = market.get_position(trade.slot, trade.buyer)
    market.put_position(replace(
        buyer, bid_open_wh=buyer.bid_open_wh - trade.quantity_wh, bought_wh=buyer.bought_wh + trade.quantity_wh,
        paid=buyer.paid + trade.value, fees_paid=buyer.fees_paid + trade.fee,
        collateral=buyer.collateral + bid_collateral,
    ))
    seller = market.get_position(trade.slot, trade.seller)
    market.put_position(replace(
        seller, ask_open_wh=seller.ask_open_wh - trade.quantity_wh, sold_wh=seller.sold_wh + trade.quantity_wh,
        received=seller.received + trade.value, collateral=seller.collateral + ask_collateral,
    ))
    if trade.mechanism == MECHANISMS[CONTINUOUS]:
        last = market.get_clearing(trade.slot, trade.seller_zone)
        # A zone's volume sums trades of any number of sellers: saturated, like the settlement's slot totals.
        volume = min(codec.MAX_INT, (last.volume_wh if last is not None else 0) + trade.quantity_wh)
        market.put_clearing(Clearing(slot=trade.slot, zone=trade.seller_zone, price=trade.price, volume_wh=volume,
                                     mechanism=trade.mechanism, height=trade.height))


def _placed_event(order: Order) -> Event:
    return event("order.placed", id=order.id, account=order.owner, side=order.side, slot=order.slot,
                 zone=order.zone, price=order.price, quantity_wh=order.quantity_wh, tif=order.tif,
                 valid_until=order.valid_until, client_order_id=order.client_order_id, origin=order.origin,
                 accept_origins=",".join(order.accept_origins), locked=order.locked)


# -- direct trades: accepted off-chain offers --------------------------------------------------
def handle_accept_offer(ctx: TxContext, msg: AcceptOffer) -> None:
    """Turn a maker's signed offer and the taker's signed acceptance into one trade.

    The trade is made as the book makes trades: each party gets a fill-or-kill
    order that is opened (locks) and filled at once by ``execute_trade`` (price,
    grid fees to the DSOs, collateral into the slot's positions, settlement
    obligations). The orders never rest, so they do not count against
    ``max_open_orders``, and the offer cannot be accepted again.
    """
    offer, acceptance = msg.offer.body, msg.acceptance.body
    offer_id = msg.offer.offer_id
    market = Market(ctx.state)
    params = get_params(ctx.state)
    # Rule: the offer (and with it the acceptance) was signed for this chain.
    if offer.chain_id != ctx.chain_id:
        raise errors.WrongChainId(f"offer is for chain {offer.chain_id!r}, this is {ctx.chain_id!r}")
    # Rule: the taker sends its acceptance itself, so its nonce orders it among its transactions.
    if acceptance.taker != ctx.signer.id:
        raise errors.NotAuthorised(f"only the taker {acceptance.taker} may send this acceptance")
    _check_not_taken(market, offer_id)
    # Rule: an offer may be accepted up to and including its valid_until, as an order may trade.
    if offer.valid_until < ctx.time:
        raise errors.OrderExpired(f"the offer's valid_until {offer.valid_until} is before the block time {ctx.time}")
    maker = _direct_party(ctx.state, offer.maker, offer.maker_pubkey, "maker")
    taker = _direct_party(ctx.state, acceptance.taker, acceptance.taker_pubkey, "taker")
    # Rule: the offer's zone is the maker's registered zone (grid fees and gossip depend on it).
    if offer.zone != maker.zone:
        raise errors.WrongZone(f"the offer names zone {offer.zone}, the maker is in {maker.zone}")
    _check_slot_open(market, params, offer.slot, ctx.time)
    _check_price_and_quantity(params, offer.price, acceptance.quantity_wh)
    bid, ask, price = _direct_orders(market, params, ctx.time, offer, offer_id.hex(), maker, taker,
                                     acceptance.quantity_wh)
    for order in (bid, ask):
        _check_capacity(ctx.state, market, params, order.owner, order.slot, order.side, order.quantity_wh)
        _check_can_lock(ctx.state, order, "maker" if order.owner == maker.id else "taker")
    bid, ask = open_order(market, bid), open_order(market, ask)
    # In id order: the maker's order first.
    ctx.events.extend(_placed_event(order) for order in sorted((bid, ask), key=attrgetter("id")))
    _, _, trade = execute_trade(market, bid, ask, acceptance.quantity_wh, price, DIRECT, ctx.height, ctx.time,
                                ctx.events)
    market.mark_offer_taken(TakenOffer(offer_id=offer_id, maker=maker.id, taker=taker.id,
                                       quantity_wh=acceptance.quantity_wh, trade=trade.id, height=ctx.height,
                                       time=ctx.time))
    ctx.events.append(event("offer.accepted", offer_id=offer_id.hex(), maker=maker.id, taker=taker.id,
                            side=offer.side, slot=offer.slot, offer_quantity_wh=offer.quantity_wh,
                            quantity_wh=acceptance.quantity_wh, offer_price=offer.price, trade=trade.id))


def _check_not_taken(market: Market, offer_id: bytes) -> None:
    taken = market.get_taken_offer(offer_id)
    # Rule: an offer is accepted once: the first committed acceptance wins.
    if taken is not None:
        raise errors.OfferTaken(f"offer {offer_id.hex()} was accepted by {taken.taker} at height {taken.height} "
                                f"(trade {taken.trade})")


def _direct_party(state: State, account_id: str, pubkey: bytes, party: str) -> Account:
    account = auth.get_account(state, account_id)
    # Rule: both parties are registered accounts ...
    if account is None:
        raise errors.UnknownAccount(f"the {party} {account_id} is not a registered account")
    # Rule: ... whose registered key signed their half ...
    if account.pubkey != pubkey:
        raise errors.BadSignature(f"the {party}'s half is not signed with the key registered for {account_id}")
    # Rule: ... that are active ...
    if not account.active:
        raise errors.InactiveAccount(f"the {party} {account_id} is deactivated")
    # Rule: ... participants (operators run the market, they do not trade) ...
    if account.role not in PARTICIPANT_ROLES:
        raise errors.NotAuthorised(f"the {party} {account_id} is a {account.role}; only participants trade")
    # Rule: ... without unpaid settlement debt.
    if account.debt > 0:
        raise errors.AccountInDebt(f"the {party} {account_id} owes {account.debt} from settlement")
    return account


def _direct_orders(market: Market, params: Params, now: int, offer: OfferBody, reference: str, maker: Account,
                   taker: Account, quantity_wh: int) -> tuple[Order, Order, int]:
    """The buyer's and the seller's fill-or-kill orders for an accepted offer, and the energy price."""
    accept_origins: tuple[str, ...]
    if offer.side == ASK:
        buyer, seller = taker, maker
        # The seller receives the offer's price; the buyer's all-in limit adds the route's fee.
        price = offer.price
        bid_price = price + market.fee(seller.zone, buyer.zone)
        ask_origin, accept_origins = offer.origin, ()
    else:
        buyer, seller = maker, taker
        # The buyer pays the offer's all-in price; the seller receives it less the route's fee.
        bid_price = offer.price
        price = offer.price - market.fee(seller.zone, buyer.zone)
        # Rule: a bid offer's all-in price covers the grid fee of the route from the taker's zone.
        if price < 1:
            raise errors.PriceBelowGridFee(
                f"price {offer.price} does not cover the grid fee from {seller.zone} to {buyer.zone}")
        # A seller accepting an any-origin bid claims no particular origin.
        ask_origin = offer.origin or GRID_MIX
        accept_origins = (offer.origin,) if offer.origin else ()

    def order(owner: Account, side: str, limit: int, origin: str, accepts: tuple[str, ...]) -> Order:
        return Order(
            id=market.next_order_id(), owner=owner.id, side=side, zone=owner.zone, slot=offer.slot, price=limit,
            quantity_wh=quantity_wh, remaining_wh=quantity_wh, valid_until=offer.valid_until, tif=FOK,
            client_order_id=reference, origin=origin, accept_origins=accepts,
            collateral_per_kwh=params.collateral_per_kwh, locked=0, placed_at=now,
        )

    # The maker's order gets the lower id: its offer came first.
    if offer.side == ASK:
        ask = order(seller, ASK, price, ask_origin, ())
        bid = order(buyer, BID, bid_price, "", accept_origins)
    else:
        bid = order(buyer, BID, bid_price, "", accept_origins)
        ask = order(seller, ASK, price, ask_origin, ())
    return bid, ask, price


def _check_can_lock(state: State, order: Order, party: str) -> None:
    needed = order.required_lock(order.quantity_wh)
    free = auth.require_account(state, order.owner).free
    # Rule: each party's free balance covers what its side locks (the buyer: the energy at its
    # all-in price plus collateral; the seller: collateral).
    if free < needed:
        raise errors.InsufficientFunds(f"the {party} {order.owner} has {free} free, {needed} needed")


# -- cancelling ---------------------------------------------------------------------------------
def handle_cancel_order(ctx: TxContext, msg: CancelOrder) -> None:
    market = Market(ctx.state)
    order = market.get_order(msg.order_id)
    # Rule: only open orders can be cancelled.
    if order is None:
        raise errors.UnknownOrder(f"order {msg.order_id} is not open")
    # Rule: only the owner cancels.
    if order.owner != ctx.signer.id:
        raise errors.NotAuthorised(f"order {msg.order_id} belongs to another account")
    close_order(market, order, "order.cancelled", "owner", ctx.events)


# -- grid fees -------------------------------------------------------------------------------------
def check_fee_entry(state: State, operator: Operator, entry: FeeEntry) -> None:
    """The rules of one DSO's fee component (a ``set_grid_fees`` entry, or a genesis one)."""
    zones = gov.zone_dsos(state)
    # Rule: fees exist only between served zones.
    for zone in (entry.from_zone, entry.to_zone):
        if zone not in zones:
            raise errors.UnknownZone(f"zone {zone} is not served by any DSO")
    # Rule: a DSO sets its own component only for routes that touch one of its zones.
    if entry.from_zone not in operator.zones and entry.to_zone not in operator.zones:
        raise errors.WrongZone(f"DSO {operator.name} serves neither {entry.from_zone} nor {entry.to_zone}")
    max_fee = get_params(state).max_price_per_kwh
    # Rule: a fee component stays under the price cap.
    if entry.fee_per_kwh > max_fee:
        raise errors.ValueOutOfRange(f"fee above the price cap of {max_fee} per kWh")


def handle_set_grid_fees(ctx: TxContext, msg: SetGridFees) -> None:
    require_dso(ctx.signer)
    operator = gov.get_operator(ctx.state, ctx.signer.id)
    if operator is None:
        raise errors.InvariantViolated(f"DSO account {ctx.signer.id} has no operator record")
    market = Market(ctx.state)
    for entry in msg.entries:
        check_fee_entry(ctx.state, operator, entry)
        market.set_fee_component(GridFee(from_zone=entry.from_zone, to_zone=entry.to_zone, dso=ctx.signer.id,
                                         fee_per_kwh=entry.fee_per_kwh))
        ctx.events.append(event("grid_fee.set", dso=ctx.signer.id, from_zone=entry.from_zone,
                                to_zone=entry.to_zone, fee_per_kwh=entry.fee_per_kwh))

