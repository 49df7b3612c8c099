"""Message type -> message class, admission check and handler: one route per message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from abci_app.ledger.modules.bank import handlers as bank
from abci_app.ledger.modules.bank import msgs as bank_msgs
from abci_app.ledger.modules.gov import handlers as gov
from abci_app.ledger.modules.gov import msgs as gov_msgs
from abci_app.ledger.modules.market import handlers as market
from abci_app.ledger.modules.market import msgs as market_msgs
from abci_app.ledger.modules.registry import handlers as registry
from abci_app.ledger.modules.registry import msgs as registry_msgs
from abci_app.ledger.modules.settlement import handlers as settlement
from abci_app.ledger.modules.settlement import msgs as settlement_msgs
from abci_app.ledger.msg import Admit, Msg, TxContext, admit_freely

Handler = Callable[[TxContext, Any], None]


@dataclass(frozen=True)
class Route:
    msg: type[Msg]
    admit: Admit
    """CheckTx: the order-independent rules of the signer (role, debt, expiry) and the most it may debit."""
    handle: Handler
    """FinalizeBlock: every rule, then the state change."""


ROUTES: tuple[Route, ...] = (
    Route(bank_msgs.Deposit, bank.admit_deposit, bank.handle_deposit),
    Route(bank_msgs.Withdraw, bank.admit_withdraw, bank.handle_withdraw),
    Route(bank_msgs.Transfer, bank.admit_transfer, bank.handle_transfer),
    Route(registry_msgs.RegisterParticipant, registry.admit_dso_message, registry.handle_register_participant),
    Route(registry_msgs.RegisterMeter, registry.admit_dso_message, registry.handle_register_meter),
    Route(registry_msgs.Deactivate, registry.admit_dso_message, registry.handle_deactivate),
    Route(gov_msgs.ProposeParams, gov.admit_proposal, gov.handle_propose_params),
    Route(gov_msgs.ProposeValidator, gov.admit_proposal, gov.handle_propose_validator),
    Route(gov_msgs.CastVote, gov.admit_vote, gov.handle_vote),
    Route(market_msgs.PlaceOrder, market.admit_place_order, market.handle_place_order),
    Route(market_msgs.CancelOrder, admit_freely, market.handle_cancel_order),
    Route(market_msgs.SetGridFees, market.admit_set_grid_fees, market.handle_set_grid_fees),
    Route(market_msgs.AcceptOffer, market.admit_accept_offer, market.handle_accept_offer),
    Route(settlement_msgs.SubmitReadings, settlement.admit_submit_readings, settlement.handle_submit_readings),
)

ROUTE_BY_TYPE: dict[str, Route] = {route.msg.TYPE: route for route in ROUTES}
MESSAGE_TYPES: dict[str, type[Msg]] = {route.msg.TYPE: route.msg for route in ROUTES}
HANDLERS: dict[str, Handler] = {route.msg.TYPE: route.handle for route in ROUTES}
# Deactivated accounts keep only this: they can still take their money out.
ALLOWED_WHEN_INACTIVE = frozenset({bank_msgs.Withdraw.TYPE})
