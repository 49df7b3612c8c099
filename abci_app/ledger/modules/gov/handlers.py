"""Admission and execution of propose_params, propose_validator and vote; the block step that expires proposals."""

from __future__ import annotations

import base64

from msgspec.structs import replace

from abci_app.ledger import crypto, errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.gov.msgs import MAX_TOTAL_POWER, CastVote, ProposeParams, ProposeValidator
from abci_app.ledger.modules.gov.records import Operator, ParamChange, Proposal, ValidatorChange, Vote
from abci_app.ledger.msg import AdmitContext, Msg, TxContext, require_operator
from abci_app.ledger.params import Params, check_params_consistent, get_params, put_params
from abci_app.ledger.state import State


def apply_param_changes(params: Params, changes: tuple[ParamChange, ...]) -> Params:
    updates: dict[str, object] = {change.name: change.value for change in changes}
    return replace(params, **updates)


def admit_proposal(ctx: AdmitContext, msg: Msg) -> int:
    """Admission of propose_params and propose_validator: operators only."""
    require_operator(ctx.signer, "propose")
    return 0


def admit_vote(ctx: AdmitContext, msg: CastVote) -> int:
    require_operator(ctx.signer, "vote")
    return 0


def handle_propose_params(ctx: TxContext, msg: ProposeParams) -> None:
    require_operator(ctx.signer, "propose")
    # Rule: the changed parameters are consistent with each other and with the rest (checked again at passing).
    check_params_consistent(apply_param_changes(get_params(ctx.state), msg.changes))
    period = get_params(ctx.state).voting_period_s
    proposal = Proposal(
        id=gov.next_proposal_id(ctx.state), proposer=ctx.signer.id, kind="params", changes=msg.changes,
        validator_change=(), description=msg.description, submitted_at=ctx.time, expires_at=ctx.time + period,
        yes_power=0, no_power=0, status="open",
    )
    gov.put_proposal(ctx.state, proposal)
    ctx.events.append(event("proposal.submitted", id=proposal.id, proposer=ctx.signer.id, kind=proposal.kind,
                            expires_at=proposal.expires_at))


def handle_propose_validator(ctx: TxContext, msg: ProposeValidator) -> None:
    require_operator(ctx.signer, "propose")
    # Rule: the change must be applicable now (it is checked again when it passes).
    check_validator_change(ctx.state, msg.change)
    period = get_params(ctx.state).voting_period_s
    proposal = Proposal(
        id=gov.next_proposal_id(ctx.state), proposer=ctx.signer.id, kind="validator", changes=(),
        validator_change=(msg.change,), description=msg.description, submitted_at=ctx.time,
        expires_at=ctx.time + period, yes_power=0, no_power=0, status="open",
    )
    gov.put_proposal(ctx.state, proposal)
    ctx.events.append(event("proposal.submitted", id=proposal.id, proposer=ctx.signer.id, kind=proposal.kind,
                            expires_at=proposal.expires_at))


def check_validator_change(state: State, change: ValidatorChange) -> None:
    """Stateful rules of a validator change; raise a typed error if it cannot apply."""
    if change.action == "add":
        check_new_operator(state, change.name, change.account_pubkey, change.consensus_pubkey, change.zones)
        check_total_power(state, change.power)
        return
    operator = gov.get_operator_by_name(state, change.name)
    # Rule: remove and power name a current validator.
    if operator is None or not operator.is_validator:
        raise errors.UnknownOperator(f"no validator operator named {change.name}")
    new_power = 0 if change.action == "remove" else change.power
    removed = operator.power - new_power
    total = gov.total_validator_power(state)
    check_total_power(state, new_power - operator.power)
    # Rule: one step never removes more than 1/3 of the validator power, nor the last validator.
    if new_power == 0 and total == operator.power:
        raise errors.ValidatorSetGuard("the last validator cannot be removed")
    if 3 * removed > total:
        raise errors.ValidatorSetGuard(f"removing {removed} of {total} validator power in one step")


def check_new_operator(state: State, name: str, account_pubkey: bytes, consensus_pubkey: bytes,
                       zones: tuple[str, ...]) -> None:
    """Stateful rules of a new operator (an ``add`` proposal's, or a genesis operator's)."""
    # Rule: operator names, account keys and consensus keys are unique.
    if gov.get_operator_by_name(state, name) is not None:
        raise errors.OperatorExists(f"an operator named {name} exists")
    if auth.get_account(state, crypto.account_id(account_pubkey)) is not None:
        raise errors.OperatorExists("an account with this key exists")
    if consensus_pubkey and any(op.consensus_pubkey == consensus_pubkey for op in gov.iter_operators(state)):
        raise errors.OperatorExists("this consensus key is already a validator's")
    served = gov.zone_dsos(state)
    taken = [zone for zone in zones if zone in served]
    # Rule: each zone has exactly one DSO.
    if taken:
        raise errors.WrongZone(f"zones {taken} are served by another DSO")


def check_total_power(state: State, added: int) -> None:
    total = gov.total_operator_power(state) + added
    # Rule: the total operator power stays within MAX_TOTAL_POWER.
    if total > MAX_TOTAL_POWER:
        raise errors.ValueOutOfRange(f"total operator power would be {total}, the limit is {MAX_TOTAL_POWER}")


def create_operator(state: State, role: str, name: str, account_pubkey: bytes, consensus_pubkey: bytes,
                    zones: tuple[str, ...], power: int, balance: int) -> Operator:
    """Store a new operator and its account (after ``check_new_operator``)."""
    account = Account(id=crypto.account_id(account_pubkey), pubkey=account_pubkey, role=role, zone="", dso="",
                      active=True, balance=balance, locked=0, debt=0, nonce=0, registered_at=0)
    auth.add_account(state, account)
    operator = Operator(account=account.id, name=name, role=role, zones=zones, power=power,
                        consensus_pubkey=consensus_pubkey)
    gov.put_operator(state, operator)
    return operator


def apply_validator_change(state: State, change: ValidatorChange) -> None:
    if change.action == "add":
        create_operator(state, change.role, change.name, change.account_pubkey, change.consensus_pubkey,
                        change.zones, change.power, balance=0)
        gov.queue_validator_update(state, change.consensus_pubkey, change.power)
        return
    operator = gov.get_operator_by_name(state, change.name)
    if operator is None:
        raise errors.InvariantViolated(f"validator {change.name} vanished after its change was checked")
    gov.queue_validator_update(state, operator.consensus_pubkey, change.power)
    if change.action == "remove":
        # The operator stays (its zones keep their DSO) but no longer validates or votes.
        gov.put_operator(state, replace(operator, power=0, consensus_pubkey=b""))
    else:
        gov.put_operator(state, replace(operator, power=change.power))


def handle_vote(ctx: TxContext, msg: CastVote) -> None:
    require_operator(ctx.signer, "vote")
    operator = gov.get_operator(ctx.state, ctx.signer.id)
    if operator is None:
        raise errors.InvariantViolated(f"operator account {ctx.signer.id} has no operator record")
    proposal = gov.get_proposal(ctx.state, msg.proposal_id)
    if proposal is None:
        raise errors.UnknownProposal(f"proposal {msg.proposal_id} does not exist")
    # Rule: votes count only while the proposal is open and inside its voting period.
    if proposal.status != "open" or ctx.time >= proposal.expires_at:
        raise errors.ProposalClosed(f"proposal {proposal.id} is {_effective_status(proposal, ctx.time)}")
    # Rule: one vote per operator and proposal.
    if gov.get_vote(ctx.state, proposal.id, ctx.signer.id) is not None:
        raise errors.DuplicateVote(f"operator {operator.name} already voted on proposal {proposal.id}")
    gov.put_vote(ctx.state, proposal.id, ctx.signer.id, Vote(approve=msg.approve, power=operator.power))
    if msg.approve:
        proposal = replace(proposal, yes_power=proposal.yes_power + operator.power)
    else:
        proposal = replace(proposal, no_power=proposal.no_power + operator.power)
    ctx.events.append(event("proposal.vote", id=proposal.id, voter=ctx.signer.id, approve=msg.approve,
                            power=operator.power))
    total = gov.total_operator_power(ctx.state)
    if 3 * proposal.yes_power > 2 * total:
        proposal = _enact(ctx, proposal, total)
    elif 3 * proposal.no_power >= total:
        proposal = replace(proposal, status="rejected")
        ctx.events.append(event("proposal.rejected", id=proposal.id, no_power=proposal.no_power, total=total))
    gov.put_proposal(ctx.state, proposal)


def _enact(ctx: TxContext, proposal: Proposal, total: int) -> Proposal:
    """Apply a proposal that has just passed; one that no longer applies is marked failed."""
    if proposal.kind == "params":
        changed = apply_param_changes(get_params(ctx.state), proposal.changes)
        try:
            check_params_consistent(changed)
        except errors.LedgerError as exc:
            ctx.events.append(event("proposal.failed", id=proposal.id, reason=exc.log))
            return replace(proposal, status="failed")
        put_params(ctx.state, changed)
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
    for proposal_id in gov.open_proposals_expired_by(state, time):
        proposal = gov.get_proposal(state, proposal_id)
        if proposal is None:
            raise errors.InvariantViolated(f"the open-proposal index points at a missing proposal {proposal_id}")
        gov.put_proposal(state, replace(proposal, status="expired"))
        out.append(event("proposal.expired", id=proposal_id))
    return out


def _effective_status(proposal: Proposal, time: int) -> str:
    if proposal.status == "open" and time >= proposal.expires_at:
        return "expired"
    return proposal.status
