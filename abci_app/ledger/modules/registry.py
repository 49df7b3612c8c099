"""Identities: a DSO registers the participants and meters of its grid zones."""

from __future__ import annotations

from typing import ClassVar

from msgspec.structs import replace

from abci_app.ledger import crypto, errors
from abci_app.ledger.events import event
from abci_app.ledger.msg import (
    Msg,
    TxContext,
    require_account_id,
    require_amount,
    require_name,
    require_pubkey,
)
from abci_app.ledger.state import PARTICIPANT_ROLES, Account, Meter, Operator
from abci_app.ledger.wire import I64

MAX_CAPACITY_W = 100_000_000  # 100 MW: far above any single grid connection


class RegisterParticipant(Msg, frozen=True):
    """A DSO admits a consumer, prosumer or producer of one of its zones."""

    TYPE: ClassVar[str] = "register_participant"
    pubkey: bytes
    """The participant's Ed25519 account key."""
    role: str
    """consumer | prosumer | producer."""
    zone: str
    """Grid zone the participant is connected in (served by the signing DSO)."""

    def validate_basic(self) -> None:
        require_pubkey("pubkey", self.pubkey)
        if self.role not in PARTICIPANT_ROLES:
            raise errors.MalformedBody(f"role must be one of {', '.join(PARTICIPANT_ROLES)}")
        require_name("zone", self.zone)


class RegisterMeter(Msg, frozen=True):
    """A DSO registers a smart meter to one of its participants."""

    TYPE: ClassVar[str] = "register_meter"
    meter_id: str
    """Meter id, unique on the chain (e.g. the serial number)."""
    pubkey: bytes
    """The meter's own Ed25519 key for signed readings."""
    owner: str
    """Account id of the participant."""
    import_capacity_w: I64
    """Largest import power of the connection, W."""
    export_capacity_w: I64
    """Largest export power of the connection, W."""
    import_register_wh: I64
    """Import register (1.8.0) at installation, Wh."""
    export_register_wh: I64
    """Export register (2.8.0) at installation, Wh."""

    def validate_basic(self) -> None:
        require_name("meter_id", self.meter_id)
        require_pubkey("pubkey", self.pubkey)
        require_account_id("owner", self.owner)
        require_amount("import_capacity_w", self.import_capacity_w, minimum=0)
        require_amount("export_capacity_w", self.export_capacity_w, minimum=0)
        if max(self.import_capacity_w, self.export_capacity_w) > MAX_CAPACITY_W:
            raise errors.ValueOutOfRange(f"meter capacity above {MAX_CAPACITY_W} W")
        if self.import_capacity_w == 0 and self.export_capacity_w == 0:
            raise errors.ValueOutOfRange("a meter needs import or export capacity")
        require_amount("import_register_wh", self.import_register_wh, minimum=0)
        require_amount("export_register_wh", self.export_register_wh, minimum=0)


class Deactivate(Msg, frozen=True):
    """A DSO deactivates one of its participants or meters."""

    TYPE: ClassVar[str] = "deactivate"
    kind: str
    """participant | meter."""
    target: str
    """Account id or meter id."""

    def validate_basic(self) -> None:
        if self.kind == "participant":
            require_account_id("target", self.target)
        elif self.kind == "meter":
            require_name("target", self.target)
        else:
            raise errors.MalformedBody("kind must be participant or meter")


def _require_dso(ctx: TxContext) -> Operator:
    operator = ctx.state.get_operator(ctx.signer.id)
    # Rule: only a DSO registers and deactivates grid users.
    if operator is None or operator.role != "dso":
        raise errors.NotAuthorised("only a DSO may do this")
    return operator


def handle_register_participant(ctx: TxContext, msg: RegisterParticipant) -> None:
    dso = _require_dso(ctx)
    # Rule: a DSO registers participants only in zones it serves.
    if msg.zone not in dso.zones:
        raise errors.WrongZone(f"zone {msg.zone} is not served by DSO {dso.name}")
    account_id = crypto.account_id(msg.pubkey)
    # Rule: one account per key.
    if ctx.state.get_account(account_id) is not None:
        raise errors.AccountExists(f"account {account_id} already exists")
    ctx.state.add_account(
        Account(
            id=account_id, pubkey=msg.pubkey, role=msg.role, zone=msg.zone, dso=ctx.signer.id,
            active=True, balance=0, locked=0, debt=0, nonce=0, registered_at=ctx.time,
        )
    )
    ctx.events.append(event("account.registered", account=account_id, role=msg.role, zone=msg.zone,
                            dso=ctx.signer.id))


def handle_register_meter(ctx: TxContext, msg: RegisterMeter) -> None:
    _require_dso(ctx)
    owner = ctx.state.require_account(msg.owner)
    # Rule: a DSO registers meters only for participants it registered.
    if owner.dso != ctx.signer.id:
        raise errors.NotAuthorised(f"participant {msg.owner} is not registered by this DSO")
    # Rule: meters belong to active participants.
    if not owner.active:
        raise errors.InactiveAccount(f"participant {msg.owner} is deactivated")
    # Rule: meter ids and meter keys are unique.
    if ctx.state.get_meter(msg.meter_id) is not None or ctx.state.meter_key_taken(msg.pubkey):
        raise errors.MeterExists(f"meter {msg.meter_id} or its key is already registered")
    # Rule: a participant has at most max_meters_per_participant meters.
    limit = ctx.state.get_params().max_meters_per_participant
    if len(ctx.state.meters_of(msg.owner)) >= limit:
        raise errors.ValueOutOfRange(f"participant already has the maximum of {limit} meters")
    ctx.state.add_meter(
        Meter(
            id=msg.meter_id, pubkey=msg.pubkey, owner=msg.owner, dso=ctx.signer.id,
            import_capacity_w=msg.import_capacity_w, export_capacity_w=msg.export_capacity_w,
            import_register_wh=msg.import_register_wh, export_register_wh=msg.export_register_wh,
            active=True, registered_at=ctx.time,
        )
    )
    ctx.events.append(event("meter.registered", meter=msg.meter_id, owner=msg.owner, dso=ctx.signer.id))


def handle_deactivate(ctx: TxContext, msg: Deactivate) -> None:
    _require_dso(ctx)
    if msg.kind == "participant":
        account = ctx.state.require_account(msg.target)
        # Rule: a DSO deactivates only participants it registered.
        if account.dso != ctx.signer.id:
            raise errors.NotAuthorised(f"participant {msg.target} is not registered by this DSO")
        # Rule: only an active participant can be deactivated.
        if not account.active:
            raise errors.InactiveAccount(f"participant {msg.target} is already deactivated")
        ctx.state.put_account(replace(account, active=False))
    else:
        meter = ctx.state.get_meter(msg.target)
        if meter is None:
            raise errors.UnknownMeter(f"meter {msg.target} does not exist")
        # Rule: a DSO deactivates only meters it registered.
        if meter.dso != ctx.signer.id:
            raise errors.NotAuthorised(f"meter {msg.target} is not registered by this DSO")
        # Rule: only an active meter can be deactivated.
        if not meter.active:
            raise errors.UnknownMeter(f"meter {msg.target} is already deactivated")
        ctx.state.put_meter(replace(meter, active=False))
    ctx.events.append(event("account.deactivated" if msg.kind == "participant" else "meter.deactivated",
                            target=msg.target, dso=ctx.signer.id))
