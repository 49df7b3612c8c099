"""The energy market: per-slot order books, continuous and call-auction matching,
collateral locks and grid fees (docs/market.md).

* ``types``    stored records (orders, trades, positions, clearings) and money arithmetic;
* ``book``     state accessors with verb names over the ``mkt/`` and ``fee/`` keys;
* ``matching`` pure functions from a book snapshot and an order to fills;
* ``msgs``     messages and their stateless checks;
* ``handlers`` message handlers: the rules, then execution of the fills;
* ``clock``    block-time steps: order expiry, gate closure, call auctions;
* ``query``    read-only query answers.
"""
