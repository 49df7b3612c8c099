"""Message type -> message class and handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from abci_app.ledger.modules import bank, gov, registry, settlement
from abci_app.ledger.modules.market import handlers as market
from abci_app.ledger.modules.market import msgs as market_msgs
from abci_app.ledger.msg import Msg, TxContext

Handler = Callable[[TxContext, Any], None]

_ROUTES: tuple[tuple[type[Msg], Handler], ...] = (
    (bank.Deposit, bank.handle_deposit),
    (bank.Withdraw, bank.handle_withdraw),
    (bank.Transfer, bank.handle_transfer),
    (registry.RegisterParticipant, registry.handle_register_participant),
    (registry.RegisterMeter, registry.handle_register_meter),
    (registry.Deactivate, registry.handle_deactivate),
    (gov.ProposeParams, gov.handle_propose_params),
    (gov.ProposeValidator, gov.handle_propose_validator),
    (gov.CastVote, gov.handle_vote),
    (market_msgs.PlaceOrder, market.handle_place_order),
    (market_msgs.CancelOrder, market.handle_cancel_order),
    (market_msgs.SetGridFees, market.handle_set_grid_fees),
    (market_msgs.AcceptOffer, market.handle_accept_offer),
    (settlement.SubmitReadings, settlement.handle_submit_readings),
)

MESSAGE_TYPES: dict[str, type[Msg]] = {cls.TYPE: cls for cls, _ in _ROUTES}
HANDLERS: dict[str, Handler] = {cls.TYPE: handler for cls, handler in _ROUTES}
# Deactivated accounts keep only this: they can still take their money out.
ALLOWED_WHEN_INACTIVE = frozenset({bank.Withdraw.TYPE})
