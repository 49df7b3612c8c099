"""Operator governance: proposals pass with more than 2/3 of operator voting power.

A proposal is open for ``voting_period_s`` seconds of block time. Each operator
votes once, with the power it has when it votes. The proposal passes (and takes
effect in the same transaction) as soon as approving power exceeds 2/3 of the
total operator power; it is rejected once opposing power reaches 1/3 (it can no
longer pass); it expires at the first block at or after its end time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

from abci_app.ledger import codec, errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.msg import Msg, TxContext, require_text
from abci_app.ledger.state import ParamChange, Params, Proposal, State, Vote

MAX_CHANGES = 32


@dataclass(frozen=True)
class ProposeParams(Msg):
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


@dataclass(frozen=True)
class CastVote(Msg):
    """An operator approves or opposes an open proposal."""

    TYPE: ClassVar[str] = "vote"
    proposal_id: int
    """The proposal voted on."""
    approve: bool
    """True for yes, False for no."""

    def validate_basic(self) -> None:
        if not 1 <= self.proposal_id <= codec.MAX_INT:
            raise errors.ValueOutOfRange("proposal_id must be positive")


def check_param_change(change: ParamChange) -> None:
    """Stateless validity of one parameter change."""
    known = {f.name for f in fields(Params)}
    if change.name not in known:
        raise errors.UnknownParam(f"no parameter named {change.name!r}")
    if change.name in Params.IMMUTABLE:
        raise errors.NotAuthorised(f"parameter {change.name} is fixed at genesis")
    low, high = Params.BOUNDS[change.name]
    if not low <= change.value <= high:
        raise errors.ValueOutOfRange(f"{change.name} must be between {low} and {high}")


def apply_param_changes(params: Params, changes: tuple[ParamChange, ...]) -> Params:
    updates: dict[str, object] = {change.name: change.value for change in changes}
    return replace(params, **updates)  # type: ignore[arg-type]


def handle_propose_params(ctx: TxContext, msg: ProposeParams) -> None:
    operator = ctx.state.get_operator(ctx.signer.id)
    # Rule: only operators propose.
    if operator is None:
        raise errors.NotAuthorised("only an operator may propose")
    period = ctx.state.get_params().voting_period_s
    proposal = Proposal(
        id=ctx.state.next_proposal_id(), proposer=ctx.signer.id, kind="params", changes=msg.changes,
        description=msg.description, submitted_at=ctx.time, expires_at=ctx.time + period,
        yes_power=0, no_power=0, status="open",
    )
    ctx.state.put_proposal(proposal)
    ctx.events.append(event("proposal.submitted", id=proposal.id, proposer=ctx.signer.id, kind=proposal.kind,
                            expires_at=proposal.expires_at))


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
        proposal = replace(proposal, status="passed")
        ctx.state.put_params(apply_param_changes(ctx.state.get_params(), proposal.changes))
        ctx.events.append(event("proposal.passed", id=proposal.id, yes_power=proposal.yes_power, total=total))
    elif 3 * proposal.no_power >= total:
        proposal = replace(proposal, status="rejected")
        ctx.events.append(event("proposal.rejected", id=proposal.id, no_power=proposal.no_power, total=total))
    ctx.state.put_proposal(proposal)


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
