"""The call auction: one slot's whole book, all zones together, cleared at gate closure (pure).

Nothing here reads or writes state; ``clock.run_call_auction`` re-checks and
applies the result. docs/market.md ("Call auction") states the rules; in short:

* **Allocation.** The executed volume and the welfare it creates are maximised
  together: welfare first (the sum over traded energy of the bid's all-in limit
  minus the ask's limit minus the route's grid fee), then volume among the
  allocations of maximal welfare (orders exactly at the price trade rather than
  not). A bid trades with an ask only if it accepts the ask's origin and its
  all-in limit covers the ask's limit plus the grid fee of the route between
  their zones. This is the allocation a competitive market reaches: every
  order strictly better than its price trades in full, none strictly worse
  trades at all, only orders at the price are rationed, and the rationing goes
  by time priority (the earlier order id first).
* **Prices.** Energy of one origin sold in one zone has one price per slot (a
  bid restricted to some origins makes origins different goods; when no
  restriction binds, the prices of a zone's origins coincide wherever they
  trade). Sellers receive their class's price; a buyer pays it plus the route's
  fee, which is the same all-in price from every zone and origin it buys from.
  The prices that support the allocation form an interval per class, from the
  lowest to the highest competitive prices (the extreme solutions of the dual
  problem); the auction takes the midpoint of the two, rounded down. Both
  extremes respect every route: a zone's price never exceeds another zone's
  by more than the fee between them, and differs by exactly the fee where
  energy flows. Prices stay between the price floor and the price cap.

Method: a min-cost flow (successive shortest paths with potentials, Dijkstra)
over a small hub network of origin classes, routes and bid classes, fed by
the asks cheapest first and drained by the bids dearest first, then
Bellman-Ford on the same hub graph for the two extreme price vectors.
Integers throughout; ties broken by zone name, origin order and order id,
never by account id. Cost: one shortest-path search over the hub network (a
few nodes per zone and origin) per exhausted order, so about
(orders + routes) x hub size; tools/bench_market.py measures 1,000 orders.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from abci_app.ledger import errors
from abci_app.ledger.modules.market.records import BID, ORIGINS, Order

FeeFn = Callable[[str, str], int]
"""fee(from_zone, to_zone) per kWh."""
INF = 1 << 62


@dataclass(frozen=True)
class CallPairing:
    """``quantity_wh`` of a bid traded with an ask at the seller's class price."""

    bid_id: int
    ask_id: int
    quantity_wh: int
    price: int
    """Energy price per kWh the seller receives."""
    fee_per_kwh: int
    """Grid fee of the route; the buyer pays ``price + fee_per_kwh``."""


@dataclass(frozen=True)
class ClassPrice:
    """The clearing of one origin's energy sold in one zone."""

    zone: str
    origin: str
    price: int
    """Seller price per kWh (the midpoint of the competitive interval, rounded down)."""
    low: int
    """Lowest competitive price."""
    high: int
    """Highest competitive price."""
    volume_wh: int
    """Energy of this class traded."""


@dataclass(frozen=True)
class CallResult:
    pairings: tuple[CallPairing, ...]
    prices: tuple[ClassPrice, ...]
    """Every class with asks in the book, traded or not, by zone and origin."""

    @property
    def volume_wh(self) -> int:
        return sum(p.quantity_wh for p in self.pairings)


# -- the hub network ------------------------------------------------------------------------------------
@dataclass
class _Network:
    """Nodes: 0 is the origin O (source and sink merged); then ask classes H, buyer hubs G, bid classes K."""

    names: list[tuple[str, str, object]] = field(default_factory=list)
    """(kind, zone, origin or accept set) per node."""
    index: dict[tuple[str, str, object], int] = field(default_factory=dict)
    cost: dict[tuple[int, int], int] = field(default_factory=dict)
    """Hub edges (infinite capacity): H->G costs the route's fee, G->K costs nothing."""
    flow: dict[tuple[int, int], int] = field(default_factory=dict)
    out: list[list[int]] = field(default_factory=list)

    def node(self, key: tuple[str, str, object]) -> int:
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.names)
            self.names.append(key)
            self.out.append([])
        return found

    def edge(self, u: int, v: int, cost: int) -> None:
        self.cost[(u, v)] = cost
        self.flow[(u, v)] = 0
        self.out[u].append(v)
        self.out[v].append(u)  # the reverse direction, usable while the edge carries flow

    def residual(self, u: int) -> list[tuple[int, int, int]]:
        """(v, cost, capacity) of the hub edges leaving ``u`` in the residual network."""
        edges = []
        for v in self.out[u]:
            if (u, v) in self.cost:
                edges.append((v, self.cost[(u, v)], INF))
            elif self.flow[(v, u)] > 0:
                edges.append((v, -self.cost[(v, u)], self.flow[(v, u)]))
        return edges


@dataclass
class _Side:
    """One class's orders in priority order and how much of each has traded."""

    orders: list[Order]
    filled: list[int]
    next: int = 0
    """Index of the first order with quantity left."""

    def best(self) -> Order | None:
        while self.next < len(self.orders) and self.filled[self.next] == self.orders[self.next].remaining_wh:
            self.next += 1
        return self.orders[self.next] if self.next < len(self.orders) else None

    def take(self, quantity: int) -> None:
        self.filled[self.next] += quantity


def clear_call_auction(bids: Sequence[Order], asks: Sequence[Order], fee: FeeFn, *, floor: int,
                       cap: int) -> CallResult:
    """The allocation and class prices of one slot's book (module docstring)."""
    net = _Network()
    net.node(("O", "", ""))
    ask_sides = _ask_classes(net, asks)
    bid_sides = _bid_classes(net, bids)
    _hub_edges(net, fee)
    potential = [0] * len(net.names)
    while _augment(net, ask_sides, bid_sides, potential):
        pass
    prices = _prices(net, ask_sides, bid_sides, floor, cap)
    pairings = _pairings(net, ask_sides, bid_sides, prices, fee)
    volumes: dict[int, int] = {}
    for hub, side in ask_sides.items():
        volumes[hub] = sum(side.filled)
    return CallResult(
        pairings=tuple(pairings),
        prices=tuple(ClassPrice(zone=net.names[h][1], origin=str(net.names[h][2]), price=prices[h][0],
                                low=prices[h][1], high=prices[h][2], volume_wh=volumes[h])
                     for h in sorted(ask_sides, key=lambda h: (net.names[h][1], ORIGINS.index(str(net.names[h][2]))))),
    )


def _ask_classes(net: _Network, asks: Sequence[Order]) -> dict[int, _Side]:
    grouped: dict[tuple[str, str], list[Order]] = {}
    for ask in asks:
        grouped.setdefault((ask.zone, ask.origin), []).append(ask)
    sides = {}
    for zone, origin in sorted(grouped, key=lambda k: (k[0], ORIGINS.index(k[1]))):
        orders = sorted(grouped[(zone, origin)], key=lambda o: (o.price, o.id))
        sides[net.node(("H", zone, origin))] = _Side(orders, [0] * len(orders))
    return sides


def _bid_classes(net: _Network, bids: Sequence[Order]) -> dict[int, _Side]:
    grouped: dict[tuple[str, tuple[str, ...]], list[Order]] = {}
    for bid in bids:
        grouped.setdefault((bid.zone, bid.accept_origins), []).append(bid)
    sides = {}
    for zone, accepted in sorted(grouped):
        orders = sorted(grouped[(zone, accepted)], key=lambda o: (-o.price, o.id))
        sides[net.node(("K", zone, accepted))] = _Side(orders, [0] * len(orders))
    return sides


def _hub_edges(net: _Network, fee: FeeFn) -> None:
    """H(za, o) -> G(zb, o) for every bid zone zb; G(zb, o) -> K(zb, A) when A accepts o."""
    classes = [(i, net.names[i]) for i in range(len(net.names))]
    ask_hubs = [(i, zone, str(origin)) for i, (kind, zone, origin) in classes if kind == "H"]
    bid_classes = [(i, zone, accepted) for i, (kind, zone, accepted) in classes if kind == "K"]
    for k, zone_b, accepted in bid_classes:
        for origin in ORIGINS:
            if accepted and origin not in accepted:  # type: ignore[operator]
                continue
            sources = [(h, zone_a) for h, zone_a, o in ask_hubs if o == origin]
            if not sources:
                continue
            g = net.index.get(("G", zone_b, origin))
            if g is None:
                g = net.node(("G", zone_b, origin))
                for h, zone_a in sources:
                    net.edge(h, g, fee(zone_a, zone_b))
            net.edge(g, k, 0)


# -- successive shortest paths ----------------------------------------------------------------------------
def _augment(net: _Network, ask_sides: dict[int, _Side], bid_sides: dict[int, _Side], potential: list[int]) -> bool:
    """Find the cheapest ask-to-bid path; trade along it if it does not lose welfare. False when done."""
    size = len(net.names)
    dist = [INF] * size  # reduced distances from O
    parent = [-1] * size
    heap: list[tuple[int, int]] = []
    for h, side in ask_sides.items():
        ask = side.best()
        if ask is not None:
            reduced = ask.price - potential[h]
            if reduced < dist[h]:
                dist[h], parent[h] = reduced, 0
                heapq.heappush(heap, (reduced, h))
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, cost, _ in net.residual(u):
            reduced = d + cost + potential[u] - potential[v]
            if reduced < dist[v]:
                dist[v], parent[v] = reduced, u
                heapq.heappush(heap, (reduced, v))
    # True distance = reduced distance + potential; the best exit is the bid class whose dearest bid gains most.
    best: tuple[int, int] | None = None
    for k, side in bid_sides.items():
        bid = side.best()
        if bid is None or dist[k] >= INF:
            continue
        gain_cost = dist[k] + potential[k] - bid.price
        if best is None or gain_cost < best[0]:
            best = (gain_cost, k)
    reachable_max = max((d for d in dist if d < INF), default=0)
    for v in range(size):
        potential[v] += dist[v] if dist[v] < INF else reachable_max
    if best is None or best[0] > 0:
        return False
    _push(net, ask_sides, bid_sides, parent, best[1])
    return True


def _push(net: _Network, ask_sides: dict[int, _Side], bid_sides: dict[int, _Side], parent: list[int],
          k: int) -> None:
    path = [k]
    while parent[path[-1]] != 0:
        path.append(parent[path[-1]])
    path.reverse()  # H ... K
    ask_side, bid_side = ask_sides[path[0]], bid_sides[k]
    ask, bid = ask_side.best(), bid_side.best()
    if ask is None or bid is None:
        raise errors.InvariantViolated("call auction: an augmenting path without an ask or a bid")
    amount = min(ask.remaining_wh - ask_side.filled[ask_side.next], bid.remaining_wh - bid_side.filled[bid_side.next])
    for u, v in itertools.pairwise(path):
        if (u, v) not in net.cost:
            amount = min(amount, net.flow[(v, u)])
    for u, v in itertools.pairwise(path):
        if (u, v) in net.cost:
            net.flow[(u, v)] += amount
        else:
            net.flow[(v, u)] -= amount
    ask_side.take(amount)
    bid_side.take(amount)


# -- prices ----------------------------------------------------------------------------------------------
def _prices(net: _Network, ask_sides: dict[int, _Side], bid_sides: dict[int, _Side], floor: int,
            cap: int) -> dict[int, tuple[int, int, int]]:
    """(midpoint, low, high) per hub node: the extreme competitive price vectors and their midpoint."""
    edges = _price_graph(net, ask_sides, bid_sides, floor, cap)
    high = _bellman_ford(len(net.names), edges)
    low = [-d for d in _bellman_ford(len(net.names), [(v, u, c) for u, v, c in edges])]
    return {v: ((low[v] + high[v]) // 2, low[v], high[v]) for v in range(1, len(net.names))}


def _price_graph(net: _Network, ask_sides: dict[int, _Side], bid_sides: dict[int, _Side], floor: int,
                 cap: int) -> list[tuple[int, int, int]]:
    """The final residual network with each class's orders folded into edges to and from O (node 0).

    An untraded ask offers supply at its limit (O -> H); a traded one can be
    withdrawn for its limit (H -> O). An untraded bid offers demand (K -> O);
    a traded one can be dropped (O -> K). Every hub may also take the cap
    (O -> v) and drop to the floor (v -> O), which bounds prices nobody's
    order pins down.
    """
    edges: list[tuple[int, int, int]] = []
    for v in range(1, len(net.names)):
        edges.append((0, v, cap))
        edges.append((v, 0, -floor))
        for w, cost, _ in net.residual(v):
            edges.append((v, w, cost))
    for h, side in ask_sides.items():
        untraded = [o.price for o, f in zip(side.orders, side.filled, strict=True) if f < o.remaining_wh]
        traded = [o.price for o, f in zip(side.orders, side.filled, strict=True) if f > 0]
        if untraded:
            edges.append((0, h, min(untraded)))
        if traded:
            edges.append((h, 0, -max(traded)))
    for k, side in bid_sides.items():
        untraded = [o.price for o, f in zip(side.orders, side.filled, strict=True) if f < o.remaining_wh]
        traded = [o.price for o, f in zip(side.orders, side.filled, strict=True) if f > 0]
        if untraded:
            edges.append((k, 0, -max(untraded)))
        if traded:
            edges.append((0, k, min(traded)))
    return edges


def _bellman_ford(size: int, edges: list[tuple[int, int, int]]) -> list[int]:
    dist = [INF] * size
    dist[0] = 0
    for _ in range(size):
        changed = False
        for u, v, cost in edges:
            if dist[u] < INF and dist[u] + cost < dist[v]:
                dist[v] = dist[u] + cost
                changed = True
        if not changed:
            return dist
    raise errors.InvariantViolated("call auction: the final allocation is not optimal (a negative cycle remains)")


# -- from class flows to order pairings -----------------------------------------------------------------
def _pairings(net: _Network, ask_sides: dict[int, _Side], bid_sides: dict[int, _Side],
              prices: dict[int, tuple[int, int, int]], fee: FeeFn) -> list[CallPairing]:
    """Decompose the flow: each bid, dearest first, takes its origins in origin order, each origin's routes in
    zone order, each route's asks cheapest first; every step moves along edges that carry that much flow."""
    asks_left = {h: [_Piece(o, f) for o, f in zip(side.orders, side.filled, strict=True) if f > 0]
                 for h, side in ask_sides.items()}
    pairings: list[CallPairing] = []
    for k, side in bid_sides.items():
        g_nodes = sorted((g for g in net.out[k] if (g, k) in net.cost and net.flow[(g, k)] > 0),
                         key=lambda g: ORIGINS.index(str(net.names[g][2])))
        for bid, filled in zip(side.orders, side.filled, strict=True):
            need = filled
            for g in g_nodes:
                while need > 0 and net.flow[(g, k)] > 0:
                    h = _first_source(net, g)
                    entry = asks_left[h][0]
                    ask = entry.order
                    quantity = min(need, net.flow[(g, k)], net.flow[(h, g)], entry.left)
                    route_fee = fee(ask.zone, bid.zone)
                    pairings.append(CallPairing(bid_id=bid.id, ask_id=ask.id, quantity_wh=quantity,
                                                price=prices[h][0], fee_per_kwh=route_fee))
                    need -= quantity
                    net.flow[(g, k)] -= quantity
                    net.flow[(h, g)] -= quantity
                    entry.left -= quantity
                    if entry.left == 0:
                        asks_left[h].pop(0)
            if need:
                raise errors.InvariantViolated(f"call auction: bid {bid.id} traded more than its classes received")
    return _merged(pairings)


@dataclass
class _Piece:
    order: Order
    left: int
    """What of the order's traded quantity is not yet paired."""


def _first_source(net: _Network, g: int) -> int:
    """The route into buyer hub ``g`` that still carries flow, from the first zone by name."""
    sources = sorted((h for h in net.out[g] if (h, g) in net.cost and net.flow[(h, g)] > 0),
                     key=lambda h: net.names[h][1])
    if not sources:
        raise errors.InvariantViolated("call auction: flow into a buyer hub has no source")
    return sources[0]


def _merged(pairings: list[CallPairing]) -> list[CallPairing]:
    """One pairing per (bid, ask): consecutive pieces of the same pair are added up."""
    merged: list[CallPairing] = []
    for pairing in pairings:
        last = merged[-1] if merged else None
        if last is not None and (last.bid_id, last.ask_id) == (pairing.bid_id, pairing.ask_id):
            merged[-1] = CallPairing(last.bid_id, last.ask_id, last.quantity_wh + pairing.quantity_wh, last.price,
                                     last.fee_per_kwh)
        else:
            merged.append(pairing)
    return merged


def crossing_self(bids: Sequence[Order], asks: Sequence[Order], fee: FeeFn) -> list[Order]:
    """Orders to withdraw before clearing: an owner's later order where its own bid and ask cross.

    Placement refuses an order that crosses the owner's own (code 68), so this
    happens only after a DSO lowered a fee; the earlier order keeps its place.
    """
    withdrawn: dict[int, Order] = {}
    by_owner: dict[str, list[Order]] = {}
    for order in [*bids, *asks]:
        by_owner.setdefault(order.owner, []).append(order)
    for owner in sorted(by_owner):
        orders = sorted(by_owner[owner], key=lambda o: o.id)
        for later_index, later in enumerate(orders):
            for earlier in orders[:later_index]:
                if earlier.id in withdrawn or earlier.side == later.side:
                    continue
                bid, ask = (earlier, later) if earlier.side == BID else (later, earlier)
                if bid.price >= ask.price + fee(ask.zone, bid.zone):
                    withdrawn[later.id] = later
                    break
    return sorted(withdrawn.values(), key=lambda o: o.id)
