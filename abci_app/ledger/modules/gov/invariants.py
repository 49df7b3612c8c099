"""Invariants of the gov module: each returns the violations it finds (empty: holds)."""

from __future__ import annotations

from abci_app.ledger.modules.gov import keeper
from abci_app.ledger.modules.gov.keys import VALIDATOR_UPDATES, vote_prefix
from abci_app.ledger.modules.gov.records import Vote
from abci_app.ledger.state import State


def open_index_lists_exactly_the_open_proposals(state: State) -> list[str]:
    expected = {(p.expires_at, p.id) for p in keeper.iter_proposals(state) if p.status == "open"}
    indexed = set(keeper.open_proposal_index(state))
    return [f"open-proposal index: {entry}" for entry in sorted(expected ^ indexed)]


def tallies_are_the_votes(state: State) -> list[str]:
    problems = []
    for proposal in keeper.iter_proposals(state):
        votes = list(state.scan_records(vote_prefix(proposal.id), Vote))
        yes = sum(v.power for v in votes if v.approve)
        no = sum(v.power for v in votes if not v.approve)
        if (yes, no) != (proposal.yes_power, proposal.no_power):
            problems.append(f"proposal {proposal.id}: tally {proposal.yes_power}/{proposal.no_power}, votes {yes}/{no}")
    return problems


def no_validator_update_outlives_its_block(state: State) -> list[str]:
    """Checked between blocks: FinalizeBlock takes every queued update."""
    return [f"queued validator update {key!r}" for key, _ in state.scan(VALIDATOR_UPDATES)]


INVARIANTS = (open_index_lists_exactly_the_open_proposals, tallies_are_the_votes,
              no_validator_update_outlives_its_block)
