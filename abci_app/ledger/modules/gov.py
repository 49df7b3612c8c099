"""Operator governance: proposals pass with more than 2/3 of operator voting power.

Two kinds: ``params`` (parameter changes) and ``validator`` (add a DSO/LPD
operator with its validator, remove a validator, change its power). A passed
validator proposal takes effect through ``validator_updates`` of the block's
FinalizeBlock; CometBFT applies them from height H+2.

A proposal is open for ``voting_period_s`` seconds of block time. Each operator
votes once, with the power it has when it votes. The proposal passes (and takes
effect in the same transaction) as soon as approving power exceeds 2/3 of the
total operator power; it is rejected once opposing power reaches 1/3 (it can no
longer pass); it expires at the first block at or after its end time.
"""

from __future__ import annotations

import base64
from typing import ClassVar

from msgspec.structs import replace

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.msg import Msg, TxContext, require_amount, require_name, require_pubkey, require_text
from abci_app.ledger.state import (
    OPERATOR_ROLES,
    Account,
    Operator,
    ParamChange,
    Params,
    Proposal,
    State,
    ValidatorChange,
    Vote,
)
from abci_app.ledger.wire import I64

MAX_CHANGES = 32


class ProposeParams(Msg, frozen=True):
    """An operator proposes new values for chain parameters."""

    TYPE: ClassVar[str] = "propose_params"
    changes: tuple[ParamChange, ...]
    """Parameter names and new values; each name at most once."""
    description: str
    """Why: shown to the voters."""

    def validate_basic(self) -> None:
        if not 1 <= len(self.changes) <= MAX_CHANGES:
            raise errors.MalformedBody(f"a proposal changes between 1 and {MAX_CHANGES} parameters")
        names = [change.name for change in self.changes]
        if len(set(names)) != len(names):
            raise errors.MalformedBody("a parameter appears twice in one proposal")
        for change in self.changes:
            check_param_change(change)
        require_text("description", self.description, limit=1024)


class CastVote(Msg, frozen=True):
    """An operator approves or opposes an open proposal."""

    TYPE: ClassVar[str] = "vote"
    proposal_id: I64
    """The proposal voted on."""
    approve: bool
    """True for yes, False for no."""

    def validate_basic(self) -> None:
        if not 1 <= self.proposal_id <= codec.MAX_INT:
            raise errors.ValueOutOfRange("proposal_id must be positive")


VALIDATOR_ACTIONS = ("add", "remove", "power")


class ProposeValidator(Msg, frozen=True):
    """An operator proposes a change to the validator set."""

    TYPE: ClassVar[str] = "propose_validator"
    change: ValidatorChange
    """What changes (see ``ValidatorChange``)."""
    description: str
    """Why: shown to the voters."""

    def validate_basic(self) -> None:
        change = self.change
        if change.action not in VALIDATOR_ACTIONS:
            raise errors.MalformedBody(f"action must be one of {', '.join(VALIDATOR_ACTIONS)}")
        require_name("name", change.name)
        require_text("description", self.description, limit=1024)
        if change.action == "add":
            _check_new_operator(change)
        elif change.role or change.account_pubkey or change.consensus_pubkey or change.zones:
            raise errors.MalformedBody(f"{change.action} names an existing validator: only name and power")
        if change.action == "remove" and change.power != 0:
            raise errors.MalformedBody("remove has power 0")
        if change.action == "power":
            require_amount("power", change.power)


def _check_new_operator(change: ValidatorChange) -> None:
    if change.role not in OPERATOR_ROLES:
        raise errors.MalformedBody("only DSO and LPD operators run validators: role must be dso or lpd")
    require_pubkey("account_pubkey", change.account_pubkey)
    require_pubkey("consensus_pubkey", change.consensus_pubkey)
    require_amount("power", change.power)
    for zone in change.zones:
        require_name("zone", zone)
    if list(change.zones) != sorted(set(change.zones)):
        raise errors.MalformedBody("zones must be sorted and distinct")
    if (change.role == "dso") != bool(change.zones):
        raise errors.MalformedBody("a DSO serves at least one zone, an LPD none")


def check_param_change(change: ParamChange) -> None:
    """Stateless validity of one parameter change."""
    known = set(Params.__struct_fields__)
    if change.name not in known:
        raise errors.UnknownParam(f"no parameter named {change.name!r}")
    if change.name in Params.IMMUTABLE:
        raise errors.NotAuthorised(f"parameter {change.name} is fixed at genesis")
    low, high = Params.BOUNDS[change.name]
    if not low <= change.value <= high:
        raise errors.ValueOutOfRange(f"{change.name} must be between {low} and {high}")


def apply_param_changes(params: Params, changes: tuple[ParamChange, ...]) -> Params:
    updates: dict[str, object] = {change.name: change.value for change in changes}
    return replace(params, **updates)


def handle_propose_params(ctx: TxContext, msg: ProposeParams) -> None:
    operator = ctx.state.get_operator(ctx.signer.id)
    # Rule: only operators propose.
    if operator is None:
        raise errors.NotAuthorised("only an operator may propose")
    period = ctx.state.get_params().voting_period_s
    proposal = Proposal(
        id=ctx.state.next_proposal_id(), proposer=ctx.signer.id, kind="params", changes=msg.changes,
        validator_change=(), description=msg.description, submitted_at=ctx.time, expires_at=ctx.time + period,
        yes_power=0, no_power=0, status="open",
    )
    ctx.state.put_proposal(proposal)
    ctx.events.append(event("proposal.submitted", id=proposal.id, proposer=ctx.signer.id, kind=proposal.kind,
                            expires_at=proposal.expires_at))


def handle_propose_validator(ctx: TxContext, msg: ProposeValidator) -> None:
    # Rule: only operators propose.
    if ctx.state.get_operator(ctx.signer.id) is None:
        raise errors.NotAuthorised("only an operator may propose")
    # Rule: the change must be applicable now (it is checked again when it passes).
    check_validator_change(ctx.state, msg.change)
    period = ctx.state.get_params().voting_period_s
    proposal = Proposal(
        id=ctx.state.next_proposal_id(), proposer=ctx.signer.id, kind="validator", changes=(),
        validator_change=(msg.change,), description=msg.description, submitted_at=ctx.time,
        expires_at=ctx.time + period, yes_power=0, no_power=0, status="open",
    )
    ctx.state.put_proposal(proposal)
    ctx.events.append(event("proposal.submitted", id=proposal.id, proposer=ctx.signer.id, kind=proposal.kind,
                            expires_at=proposal.expires_at))


def check_validator_change(state: State, change: ValidatorChange) -> None:
    """Stateful rules of a validator change; raise a typed error if it cannot apply."""
    if change.action == "add":
        # Rule: operator names, account keys and consensus keys are unique.
        if state.get_operator_by_name(change.name) is not None:
            raise errors.OperatorExists(f"an operator named {change.name} exists")
        if state.get_account(crypto.account_id(change.account_pubkey)) is not None:
            raise errors.OperatorExists("an account with this key exists")
        if any(op.consensus_pubkey == change.consensus_pubkey for op in state.iter_operators()):
            raise errors.OperatorExists("this consensus key is already a validator's")
        # Rule: each zone has exactly one DSO.
        served = state.zone_dsos()
        taken = [zone for zone in change.zones if zone in served]
        if taken:
            raise errors.WrongZone(f"zones {taken} are served by another DSO")
        return
    operator = state.get_operator_by_name(change.name)
    # Rule: remove and power name a current validator.
    if operator is None or not operator.is_validator:
        raise errors.UnknownOperator(f"no validator operator named {change.name}")
    new_power = 0 if change.action == "remove" else change.power
    removed = operator.power - new_power
    total = state.total_validator_power()
    # Rule: one step never removes more than 1/3 of the validator power, nor the last validator.
    if new_power == 0 and total == operator.power:
        raise errors.ValidatorSetGuard("the last validator cannot be removed")
    if 3 * removed > total:
        raise errors.ValidatorSetGuard(f"removing {removed} of {total} validator power in one step")


def apply_validator_change(state: State, change: ValidatorChange) -> None:
    if change.action == "add":
        account = Account(
            id=crypto.account_id(change.account_pubkey), pubkey=change.account_pubkey, role=change.role, zone="",
            dso="", active=True, balance=0, locked=0, debt=0, nonce=0, registered_at=0,
        )
        state.add_account(account)
        state.put_operator(Operator(account=account.id, name=change.name, role=change.role, zones=change.zones,
                                    power=change.power, consensus_pubkey=change.consensus_pubkey))
        state.queue_validator_update(change.consensus_pubkey, change.power)
        return
    operator = state.get_operator_by_name(change.name)
    assert operator is not None
    state.queue_validator_update(operator.consensus_pubkey, change.power)
    if change.action == "remove":
        # The operator stays (its zones keep their DSO) but no longer validates or votes.
        state.put_operator(replace(operator, power=0, consensus_pubkey=b""))
    else:
        state.put_operator(replace(operator, power=change.power))


def handle_vote(ctx: TxContext, msg: CastVote) -> None:
    operator = ctx.state.get_operator(ctx.signer.id)
    # Rule: only operators vote.
    if operator is None:
        raise errors.NotAuthorised("only an operator may vote")
    proposal = ctx.state.get_proposal(msg.proposal_id)
    if proposal is None:
        raise errors.UnknownProposal(f"proposal {msg.proposal_id} does not exist")
    # Rule: votes count only while the proposal is open and inside its voting period.
    if proposal.status != "open" or ctx.time >= proposal.expires_at:
        raise errors.ProposalClosed(f"proposal {proposal.id} is {_effective_status(proposal, ctx.time)}")
    # Rule: one vote per operator and proposal.
    if ctx.state.get_vote(proposal.id, ctx.signer.id) is not None:
        raise errors.DuplicateVote(f"operator {operator.name} already voted on proposal {proposal.id}")
    ctx.state.put_vote(proposal.id, ctx.signer.id, Vote(approve=msg.approve, power=operator.power))
    if msg.approve:
        proposal = replace(proposal, yes_power=proposal.yes_power + operator.power)
    else:
        proposal = replace(proposal, no_power=proposal.no_power + operator.power)
    ctx.events.append(event("proposal.vote", id=proposal.id, voter=ctx.signer.id, approve=msg.approve,
                            power=operator.power))
    total = ctx.state.total_operator_power()
    if 3 * proposal.yes_power > 2 * total:
        proposal = _enact(ctx, proposal, total)
    elif 3 * proposal.no_power >= total:
        proposal = replace(proposal, status="rejected")
        ctx.events.append(event("proposal.rejected", id=proposal.id, no_power=proposal.no_power, total=total))
    ctx.state.put_proposal(proposal)


def _enact(ctx: TxContext, proposal: Proposal, total: int) -> Proposal:
    """Apply a proposal that has just passed; one that no longer applies is marked failed."""
    if proposal.kind == "params":
        ctx.state.put_params(apply_param_changes(ctx.state.get_params(), proposal.changes))
    else:
        (change,) = proposal.validator_change
        try:
            check_validator_change(ctx.state, change)
        except errors.LedgerError as exc:
            ctx.events.append(event("proposal.failed", id=proposal.id, reason=exc.log))
            return replace(proposal, status="failed")
        apply_validator_change(ctx.state, change)
        ctx.events.append(event("validator.updated", action=change.action, name=change.name,
                                consensus_pubkey=base64.b64encode(change.consensus_pubkey).decode()
                                if change.consensus_pubkey else "", power=change.power))
    ctx.events.append(event("proposal.passed", id=proposal.id, yes_power=proposal.yes_power, total=total))
    return replace(proposal, status="passed")


def expire_proposals(state: State, time: int) -> list[Event]:
    """Begin-block step: close every open proposal whose voting period has ended."""
    out = []
    for proposal_id in state.open_proposals_expired_by(time):
        proposal = state.get_proposal(proposal_id)
        assert proposal is not None, "open-proposal index points at a missing proposal"
        state.put_proposal(replace(proposal, status="expired"))
        out.append(event("proposal.expired", id=proposal_id))
    return out


def _effective_status(proposal: Proposal, time: int) -> str:
    if proposal.status == "open" and time >= proposal.expires_at:
        return "expired"
    return proposal.status
