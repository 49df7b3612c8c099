"""A chain with a market: five participants with meters in two zones, a fee matrix, helpers for orders."""

from __future__ import annotations

import copy
from typing import Any

from msgspec.structs import replace

from abci_app.ledger import errors
from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.market.direct import (
    Acceptance,
    OfferBody,
    SignedAcceptance,
    SignedOffer,
    accept_sign_bytes,
    offer_sign_bytes,
)
from abci_app.ledger.modules.market.msgs import AcceptOffer, CancelOrder, PlaceOrder
from abci_app.ledger.msg import Msg
from abci_app.ledger.state import State
from abci_app.ledger.store import Overlay
from tests.harness import (
    GENESIS_TIME,
    ZONE_A,
    ZONE_B,
    Chain,
    default_app_state,
    events_of,
    nonce_spent,
    seeded_key,
    snapshot,
)

SLOT = GENESIS_TIME + 3_600
"""A slot whose gate (lead 300 s) closes at GENESIS_TIME + 3300."""
PRICE = 250_000
"""0.25 EUR/kWh in micro-euro."""
OFFER_PRICE = 240_000
COLLATERAL = 20_000
FEE_AA, FEE_BB, FEE_AB, FEE_BA = 10_000, 10_000, 30_000, 30_000


def market_app_state(mode: int = 0, **params: int) -> dict[str, Any]:
    """Participants: alice (prosumer, a), bob (consumer, a), erin (prosumer, a), carol (producer, b),
    dave (consumer, b); each 10 EUR and one meter of 20 kW import and/or export (5 kWh per slot)."""
    keys = {name: seeded_key(name) for name in ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol",
                                                 "dave", "erin")}
    state = default_app_state(keys)
    state["params"].update({"matching_mode": mode, "collateral_per_kwh": COLLATERAL, **params})
    state["participants"] += [
        {"pubkey": keys["dave"].pubkey.hex(), "role": "consumer", "zone": ZONE_B, "dso": "dso-b",
         "balance": 10_000_000},
        {"pubkey": keys["erin"].pubkey.hex(), "role": "prosumer", "zone": ZONE_A, "dso": "dso-a",
         "balance": 10_000_000},
    ]
    capacity = {"alice": (20_000, 20_000), "bob": (20_000, 0), "erin": (20_000, 20_000), "carol": (0, 20_000),
                "dave": (20_000, 0)}
    state["meters"] = [
        {"id": f"m-{name}", "pubkey": seeded_key(f"meter-{name}").pubkey.hex(),
         "owner_pubkey": keys[name].pubkey.hex(), "import_capacity_w": imp, "export_capacity_w": exp}
        for name, (imp, exp) in capacity.items()
    ]
    state["grid_fees"] = [
        {"dso": "dso-a", "from": ZONE_A, "to": ZONE_A, "fee": FEE_AA},
        {"dso": "dso-b", "from": ZONE_B, "to": ZONE_B, "fee": FEE_BB},
        {"dso": "dso-a", "from": ZONE_A, "to": ZONE_B, "fee": FEE_AB // 2},
        {"dso": "dso-b", "from": ZONE_A, "to": ZONE_B, "fee": FEE_AB // 2},
        {"dso": "dso-a", "from": ZONE_B, "to": ZONE_A, "fee": FEE_BA // 2},
        {"dso": "dso-b", "from": ZONE_B, "to": ZONE_A, "fee": FEE_BA // 2},
    ]
    return state


def market_chain(mode: int = 0, **params: int) -> Chain:
    chain = Chain(app_state=market_app_state(mode, **params))
    chain.block()
    return chain


def order(side: str, quantity_wh: int, price: int, *, slot: int = SLOT, valid_until: int = SLOT, tif: str = "limit",
          client_order_id: str = "", origin: str | None = None, accept: tuple[str, ...] = ()) -> PlaceOrder:
    if origin is None:
        origin = "solar" if side == "ask" else ""
    return PlaceOrder(side=side, quantity_wh=quantity_wh, price=price, slot=slot, valid_until=valid_until, tif=tif,
                      client_order_id=client_order_id, origin=origin, accept_origins=accept)


# -- direct trades: signed off-chain offers and acceptances (tests/test_accept_offer.py) ------------
def offer(chain: Chain, maker: str | SigningKey, side: str = "ask", quantity_wh: int = 2_000,
          price: int = OFFER_PRICE, *, slot: int = SLOT, valid_until: int = SLOT, zone: str | None = None,
          origin: str | None = None, salt: bytes = bytes(16), chain_id: str | None = None) -> SignedOffer:
    """A signed offer of ``maker`` (a key name, or a key of no account); its zone defaults to the maker's."""
    key = chain.keys[maker] if isinstance(maker, str) else maker
    if origin is None:
        origin = "solar" if side == "ask" else ""
    if zone is None:
        zone = chain.account(key.account)["zone"] if isinstance(maker, str) else ZONE_A
    body = OfferBody(chain_id=chain_id or chain.chain_id, maker=key.account, maker_pubkey=key.pubkey, side=side,
                     quantity_wh=quantity_wh, price=price, slot=slot, valid_until=valid_until, zone=zone,
                     origin=origin, salt=salt)
    return SignedOffer(body=body, signature=key.sign(offer_sign_bytes(body)))


def acceptance(chain: Chain, signed: SignedOffer, taker: str | SigningKey, quantity_wh: int | None = None,
               ) -> AcceptOffer:
    """``taker``'s signed acceptance of ``signed`` (all of it unless ``quantity_wh``), as the message."""
    key = chain.keys[taker] if isinstance(taker, str) else taker
    body = Acceptance(chain_id=signed.body.chain_id, offer_id=signed.offer_id, taker=key.account,
                      taker_pubkey=key.pubkey,
                      quantity_wh=signed.body.quantity_wh if quantity_wh is None else quantity_wh)
    signed_acceptance = SignedAcceptance(body=body, signature=key.sign(accept_sign_bytes(body)))
    return AcceptOffer(offer=signed, acceptance=signed_acceptance)


def place(chain: Chain, who: str, msg: PlaceOrder) -> int:
    """Place an order that must be accepted; return its id."""
    result = chain.deliver(who, msg)
    assert result.code == 0, result.log
    return int(events_of(result, "order.placed")[0]["id"])


def cancel(chain: Chain, who: str, order_id: int) -> Any:
    return chain.deliver(who, CancelOrder(order_id=order_id))


def trades(chain: Chain, slot: int = SLOT) -> list[tuple[str, str, int, int, int]]:
    """(buyer, seller, quantity_wh, price, fee_per_kwh) of every trade of a slot, by name."""
    names = {chain.id(name): name for name in chain.keys}
    return [(names[t["buyer"]], names[t["seller"]], t["quantity_wh"], t["price"], t["fee_per_kwh"])
            for t in chain.query(f"/trades/slot/{slot}")["trades"]]


def market_snapshot(chain: Chain, slot: int = SLOT) -> dict[str, Any]:
    """The market's queryable state: open orders, positions of every participant, books, fees."""
    slots = chain.query("/slots")
    return {
        "slots": slots,
        "fees": chain.query("/fees"),
        "orders": {name: chain.query(f"/orders/{key.account}")["orders"] for name, key in chain.keys.items()},
        "positions": {name: chain.query(f"/position/{slot}/{key.account}") for name, key in chain.keys.items()},
        "books": [chain.query(f"/book/{slot}/{zone}") for slot in slots["slots"] for zone in (ZONE_A, ZONE_B)],
        "trades": chain.query(f"/trades/slot/{slot}"),
        "clearing": [_clearing_or_none(chain, slot, zone) for zone in (ZONE_A, ZONE_B)],
    }


def _clearing_or_none(chain: Chain, slot: int, zone: str) -> Any:
    try:
        return chain.query(f"/clearing/{slot}/{zone}")
    except LookupError:
        return None


# -- helpers for the market tests (tests/test_place_order.py and friends) ------------------------
def state_of(chain: Chain) -> State:
    """A read-only view of the committed state (writes go to a throw-away overlay)."""
    return State(Overlay(chain.app.committed))


def deliver_at(chain: Chain, signer: str, msg: Msg, time: int) -> Any:
    """Deliver ``msg`` alone in a block whose time is exactly ``time``."""
    return chain.block([chain.sign(signer, msg)], dt=time - chain.time).tx_results[0]


def block_at(chain: Chain, time: int) -> Any:
    """An empty block at exactly ``time`` (runs the market clock); returns the FinalizeBlock response."""
    return chain.block([], dt=time - chain.time)


def money(chain: Chain, name: str) -> tuple[int, int]:
    """(balance, locked) of an account."""
    account = chain.account(name)
    return account["balance"], account["locked"]


def open_remaining(chain: Chain, name: str) -> list[int]:
    """Remaining Wh of each open order of an account, by order id."""
    return [o["remaining_wh"] for o in chain.query(f"/orders/{chain.id(name)}")["orders"]]


def position(chain: Chain, name: str, slot: int = SLOT) -> Any:
    return chain.query(f"/position/{slot}/{chain.id(name)}")


def put_debt(chain: Chain, name: str, debt: int) -> None:
    """Give an account settlement debt by writing the committed state directly.

    Settlement creates debt only after a slot's deadline; the tests of rule 73 (and of debt at its bound)
    set it between blocks instead, and the next block and CheckTx (which reads the committed state) build
    on it like on any state.
    """
    overlay = Overlay(chain.app.committed)
    state = State(overlay)
    account = auth.get_account(state, chain.id(name))
    assert account is not None
    auth.put_account(state, replace(account, debt=debt))
    committed = chain.app.committed
    committed.commit(overlay, committed.height)


def full_snapshot(chain: Chain, slot: int = SLOT) -> dict[str, Any]:
    """The ledger snapshot of tests/harness.py plus the market's queryable state."""
    return {"ledger": snapshot(chain), "market": market_snapshot(chain, slot)}


def market_rejected(chain: Chain, signer: str, msg: Msg, error: type[errors.LedgerError], *,
                    spends_nonce: bool = True, slot: int = SLOT, closes_through: int | None = None) -> Any:
    """Deliver ``msg``; assert its code and that nothing but (maybe) the signer's nonce changed.

    ``closes_through``: the block's own clock step closes slots up to this one (not the transaction's doing).
    """
    before = full_snapshot(chain, slot)
    result = chain.deliver(signer, msg)
    assert result.code == error.code, result.log
    expected = copy.deepcopy(before)
    if spends_nonce:
        expected["ledger"] = nonce_spent(before["ledger"], signer, chain.nonces[chain.id(signer)])
    if closes_through is not None:
        expected["market"]["slots"]["closed_through"] = closes_through
    assert full_snapshot(chain, slot) == expected
    assert not result.events
    return result
