"""Admission and execution of register_participant, register_meter and deactivate.

The stateful rules of a new participant and a new meter are functions that
genesis applies to its accounts and meters too (``registry.genesis``).
"""

from __future__ import annotations

from msgspec.structs import replace

from abci_app.ledger import crypto, errors
from abci_app.ledger.events import event
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.gov.records import Operator
from abci_app.ledger.modules.market.handlers import close_order
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.modules.registry.msgs import Deactivate, RegisterMeter, RegisterParticipant
from abci_app.ledger.modules.registry.records import Meter
from abci_app.ledger.modules.settlement import keeper as settlement
from abci_app.ledger.msg import AdmitContext, Msg, TxContext, require_dso
from abci_app.ledger.params import get_params
from abci_app.ledger.state import State


def admit_dso_message(ctx: AdmitContext, msg: Msg) -> int:
    """Admission of register_participant, register_meter and deactivate: DSOs only."""
    require_dso(ctx.signer)
    return 0


def signing_dso(ctx: TxContext) -> Operator:
    """The signer's operator record, after the rule that only a DSO sends registry messages."""
    require_dso(ctx.signer)
    operator = gov.get_operator(ctx.state, ctx.signer.id)
    if operator is None:
        raise errors.InvariantViolated(f"DSO account {ctx.signer.id} has no operator record")
    return operator


# -- participants ----------------------------------------------------------------------------------
def check_new_participant(state: State, dso: Operator, msg: RegisterParticipant) -> str:
    """The rules of admitting a participant; returns its account id."""
    # Rule: a DSO registers participants only in zones it serves.
    if msg.zone not in dso.zones:
        raise errors.WrongZone(f"zone {msg.zone} is not served by DSO {dso.name}")
    account_id = crypto.account_id(msg.pubkey)
    # Rule: one account per key.
    if auth.get_account(state, account_id) is not None:
        raise errors.AccountExists(f"account {account_id} already exists")
    return account_id


def new_participant(account_id: str, dso: Operator, msg: RegisterParticipant, balance: int, time: int) -> Account:
    return Account(id=account_id, pubkey=msg.pubkey, role=msg.role, zone=msg.zone, dso=dso.account, active=True,
                   balance=balance, locked=0, debt=0, nonce=0, registered_at=time)


def handle_register_participant(ctx: TxContext, msg: RegisterParticipant) -> None:
    dso = signing_dso(ctx)
    account_id = check_new_participant(ctx.state, dso, msg)
    auth.add_account(ctx.state, new_participant(account_id, dso, msg, balance=0, time=ctx.time))
    ctx.events.append(event("account.registered", account=account_id, role=msg.role, zone=msg.zone,
                            dso=ctx.signer.id))


# -- meters ------------------------------------------------------------------------------------------
def check_new_meter(state: State, dso_id: str, msg: RegisterMeter) -> None:
    """The rules of registering a meter with the DSO ``dso_id``."""
    owner = auth.require_account(state, msg.owner)
    # Rule: a DSO registers meters only for participants it registered.
    if owner.dso != dso_id:
        raise errors.NotAuthorised(f"participant {msg.owner} is not registered by this DSO")
    # Rule: meters belong to active participants.
    if not owner.active:
        raise errors.InactiveAccount(f"participant {msg.owner} is deactivated")
    # Rule: meter ids and meter keys are unique.
    if registry.get_meter(state, msg.meter_id) is not None or registry.meter_key_taken(state, msg.pubkey):
        raise errors.MeterExists(f"meter {msg.meter_id} or its key is already registered")
    # Rule: a participant has at most max_meters_per_participant meters.
    limit = get_params(state).max_meters_per_participant
    if len(registry.meters_of(state, msg.owner)) >= limit:
        raise errors.ValueOutOfRange(f"participant already has the maximum of {limit} meters")


def new_meter(dso_id: str, msg: RegisterMeter, time: int) -> Meter:
    return Meter(id=msg.meter_id, pubkey=msg.pubkey, owner=msg.owner, dso=dso_id,
                 import_capacity_w=msg.import_capacity_w, export_capacity_w=msg.export_capacity_w,
                 import_register_wh=msg.import_register_wh, export_register_wh=msg.export_register_wh,
                 active=True, registered_at=time)


def handle_register_meter(ctx: TxContext, msg: RegisterMeter) -> None:
    signing_dso(ctx)
    check_new_meter(ctx.state, ctx.signer.id, msg)
    meter = new_meter(ctx.signer.id, msg, ctx.time)
    registry.add_meter(ctx.state, meter)
    settlement.track_meter(ctx.state, meter)
    ctx.events.append(event("meter.registered", meter=msg.meter_id, owner=msg.owner, dso=ctx.signer.id))


# -- deactivation ------------------------------------------------------------------------------------
def handle_deactivate(ctx: TxContext, msg: Deactivate) -> None:
    signing_dso(ctx)
    if msg.kind == "participant":
        account = auth.require_account(ctx.state, msg.target)
        # Rule: a DSO deactivates only participants it registered.
        if account.dso != ctx.signer.id:
            raise errors.NotAuthorised(f"participant {msg.target} is not registered by this DSO")
        # Rule: only an active participant can be deactivated.
        if not account.active:
            raise errors.InactiveAccount(f"participant {msg.target} is already deactivated")
        auth.put_account(ctx.state, replace(account, active=False))
        ctx.events.append(event("account.deactivated", target=msg.target, dso=ctx.signer.id))
        # A deactivated participant trades no more: its open orders are cancelled and their locks released.
        market = Market(ctx.state)
        for order_id in market.open_order_ids(account.id):
            close_order(market, market.require_order(order_id), "order.cancelled", "deactivated", ctx.events)
        # Its supply ends too: its meters are no longer read (a silent meter would be billed its substitute
        # to an account that can no longer pay it).
        for meter_id in registry.meters_of(ctx.state, account.id):
            owned = registry.get_meter(ctx.state, meter_id)
            if owned is not None and owned.active:
                _deactivate_meter(ctx, owned)
    else:
        meter = registry.get_meter(ctx.state, msg.target)
        # Rule: the meter exists.
        if meter is None:
            raise errors.UnknownMeter(f"meter {msg.target} does not exist")
        # Rule: a DSO deactivates only meters it registered.
        if meter.dso != ctx.signer.id:
            raise errors.NotAuthorised(f"meter {msg.target} is not registered by this DSO")
        # Rule: only an active meter can be deactivated.
        if not meter.active:
            raise errors.UnknownMeter(f"meter {msg.target} is already deactivated")
        _deactivate_meter(ctx, meter)


def _deactivate_meter(ctx: TxContext, meter: Meter) -> None:
    registry.put_meter(ctx.state, replace(meter, active=False))
    # A deactivated meter is no longer read, so its slots get no substitutes from now on.
    settlement.untrack_meter(ctx.state, meter)
    ctx.events.append(event("meter.deactivated", target=meter.id, dso=meter.dso))
