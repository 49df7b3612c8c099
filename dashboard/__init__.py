"""gridledger's live market dashboard: a read-only web app over public chain data.

It reads only what any node serves to anyone: CometBFT's RPC and its
``tm.event='NewBlock'`` websocket (which in v0.38 carries the block and its
FinalizeBlock results), and the application's ABCI queries (docs/queries.md).
As each block commits, the server pushes a compact block event to every open
page over server-sent events; the page then re-reads the one view it shows
(the server answers each query once per height for all pages).

Modules: ``config`` (options and the node-home block), ``chain`` (async RPC and
query client with per-height caching), ``follower`` (the NewBlock
subscription), ``views`` (the JSON behind each page), ``names`` (roster
names), ``experiments`` (results/ runs), ``app`` (routes), ``server``
(uvicorn on a pre-bound socket). docs/dashboard.md describes it.
"""
