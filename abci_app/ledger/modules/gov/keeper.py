"""Accessors of operators, proposals, votes and the block's validator updates."""

from __future__ import annotations

from collections.abc import Iterator

from abci_app.ledger.modules.gov.keys import (
    NEXT_PROPOSAL,
    OPEN_PROPOSALS,
    OPERATORS,
    PROPOSALS,
    VALIDATOR_UPDATES,
    open_key,
    operator_key,
    proposal_key,
    validator_update_key,
    vote_key,
)
from abci_app.ledger.modules.gov.records import Operator, Proposal, Vote
from abci_app.ledger.state import State, be64, unbe64


# -- operators ---------------------------------------------------------------------------------
def get_operator(state: State, account_id: str) -> Operator | None:
    return state.get(operator_key(account_id), Operator)


def put_operator(state: State, operator: Operator) -> None:
    state.put(operator_key(operator.account), operator)


def iter_operators(state: State) -> Iterator[Operator]:
    return state.scan_records(OPERATORS, Operator)


def get_operator_by_name(state: State, name: str) -> Operator | None:
    return next((op for op in iter_operators(state) if op.name == name), None)


def total_operator_power(state: State) -> int:
    return sum(op.power for op in iter_operators(state))


def total_validator_power(state: State) -> int:
    return sum(op.power for op in iter_operators(state) if op.is_validator)


def zone_dsos(state: State) -> dict[str, str]:
    """Every served zone and the account id of its DSO."""
    return {zone: op.account for op in iter_operators(state) for zone in op.zones}


# -- validator updates of the block being built ----------------------------------------------------
def queue_validator_update(state: State, pubkey: bytes, power: int) -> None:
    """Record a validator-set change for this block's FinalizeBlock response."""
    state.kv.set(validator_update_key(pubkey), be64(power))


def take_validator_updates(state: State) -> list[tuple[bytes, int]]:
    """This block's queued validator-set changes, by key; the queue is emptied."""
    found = [(bytes.fromhex(key[len(VALIDATOR_UPDATES):].decode()), unbe64(raw))
             for key, raw in state.scan(VALIDATOR_UPDATES)]
    for pubkey, _ in found:
        state.kv.delete(validator_update_key(pubkey))
    return found


# -- proposals and votes -----------------------------------------------------------------------------
def next_proposal_id(state: State) -> int:
    raw = state.kv.get(NEXT_PROPOSAL)
    next_id = unbe64(raw) if raw is not None else 1
    state.kv.set(NEXT_PROPOSAL, be64(next_id + 1))
    return next_id


def get_proposal(state: State, proposal_id: int) -> Proposal | None:
    return state.get(proposal_key(proposal_id), Proposal)


def put_proposal(state: State, proposal: Proposal) -> None:
    """Store a proposal; an open one is indexed by its expiry time."""
    state.put(proposal_key(proposal.id), proposal)
    if proposal.status == "open":
        state.kv.set(open_key(proposal.expires_at, proposal.id), b"")
    else:
        state.kv.delete(open_key(proposal.expires_at, proposal.id))


def iter_proposals(state: State) -> Iterator[Proposal]:
    return state.scan_records(PROPOSALS, Proposal)


def open_proposals_expired_by(state: State, time: int) -> list[int]:
    """Ids of open proposals whose voting period ended at or before ``time``, oldest first."""
    return [unbe64(key[-8:]) for key, _ in state.kv.iterate(OPEN_PROPOSALS, OPEN_PROPOSALS + be64(time + 1))]


def open_proposal_index(state: State) -> list[tuple[int, int]]:
    """(expiry, id) of every entry of the open-proposal index."""
    return [(unbe64(key[len(OPEN_PROPOSALS):len(OPEN_PROPOSALS) + 8]), unbe64(key[-8:]))
            for key, _ in state.scan(OPEN_PROPOSALS)]


def get_vote(state: State, proposal_id: int, voter: str) -> Vote | None:
    return state.get(vote_key(proposal_id, voter), Vote)


def put_vote(state: State, proposal_id: int, voter: str, vote: Vote) -> None:
    state.put(vote_key(proposal_id, voter), vote)
