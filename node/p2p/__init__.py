"""Off-chain peer-to-peer layer: direct bilateral offers and the live market feed.

Participants and validators run a libp2p host (``host.py``) that joins
gossipsub topics per chain and zone (``topics.py``). Offers are signed with the
maker's ACCOUNT key so the chain can verify them when an acceptance arrives
(``messages.py``); feed snapshots are signed by the publishing node's p2p
identity key (``feed.py``). Every incoming message passes the checks of
``inbox.py`` under the bounds of ``limits.py`` before it is cached, relayed
or shown. Short-lived CLI commands reach a running host through its local
control socket (``control.py``). The formats are specified in docs/p2p.md.
"""
