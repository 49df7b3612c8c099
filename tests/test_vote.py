"""vote: operators vote; > 2/3 of operator power passes a proposal, >= 1/3 against rejects it."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.gov import CastVote, ProposeParams
from abci_app.ledger.modules.gov.records import ParamChange
from tests.harness import Chain, events_of, nonce_spent, rejected, snapshot

OPERATORS = ("dso", "dso_b", "lpd", "lpd_b")  # 4 x power 10 in the harness genesis


@pytest.fixture
def chain(chain: Chain) -> Chain:
    """A chain with proposal 1 (max_meters_per_participant -> 3) open."""
    msg = ProposeParams(changes=(ParamChange("max_meters_per_participant", 3),), description="")
    assert chain.deliver("dso", msg).code == 0
    return chain


def vote(chain: Chain, voter: str, approve: bool) -> None:
    result = chain.deliver(voter, CastVote(proposal_id=1, approve=approve))
    assert result.code == 0, result.log


def test_basic(chain: Chain) -> None:
    result = chain.deliver("lpd", CastVote(proposal_id=1, approve=True))
    assert result.code == 0, result.log
    proposal = chain.query("/proposal/1")
    assert (proposal["yes_power"], proposal["no_power"], proposal["status"]) == (10, 0, "open")
    assert chain.query("/params")["max_meters_per_participant"] == 16
    assert events_of(result, "proposal.vote") == [
        {"id": "1", "voter": chain.id("lpd"), "approve": "true", "power": "10"}
    ]
    assert events_of(result, "proposal.passed") == []


def test_basic_no_vote(chain: Chain) -> None:
    result = chain.deliver("dso_b", CastVote(proposal_id=1, approve=False))
    assert events_of(result, "proposal.vote")[0]["approve"] == "false"
    proposal = chain.query("/proposal/1")
    assert (proposal["yes_power"], proposal["no_power"], proposal["status"]) == (0, 10, "open")


def test_basic_passes_above_two_thirds(chain: Chain) -> None:
    vote(chain, "dso", True)
    vote(chain, "dso_b", True)
    # 20 of 40 is not more than 2/3.
    assert chain.query("/proposal/1")["status"] == "open"
    assert chain.query("/params")["max_meters_per_participant"] == 16
    result = chain.deliver("lpd", CastVote(proposal_id=1, approve=True))
    assert result.code == 0, result.log
    assert events_of(result, "proposal.passed") == [{"id": "1", "yes_power": "30", "total": "40"}]
    proposal = chain.query("/proposal/1")
    assert (proposal["yes_power"], proposal["status"]) == (30, "passed")
    assert chain.query("/params")["max_meters_per_participant"] == 3


def test_basic_passed_proposal_takes_effect() -> None:
    chain = Chain()
    chain.block()
    msg = ProposeParams(changes=(ParamChange("max_tx_bytes", 256),), description="small txs")
    assert chain.deliver("dso", msg).code == 0
    for voter in ("dso", "lpd", "lpd_b"):
        vote(chain, voter, True)
    assert chain.query("/params")["max_tx_bytes"] == 256
    big = Transfer(recipient=chain.id("bob"), amount=1, memo="m" * 200)
    assert chain.deliver("alice", big).code == errors.TxTooLarge.code


def test_basic_rejected_at_one_third_no(chain: Chain) -> None:
    vote(chain, "dso", False)
    assert chain.query("/proposal/1")["status"] == "open"  # 10 of 40 is below 1/3
    vote(chain, "lpd", True)
    result = chain.deliver("lpd_b", CastVote(proposal_id=1, approve=False))
    assert result.code == 0, result.log
    assert events_of(result, "proposal.rejected") == [{"id": "1", "no_power": "20", "total": "40"}]
    proposal = chain.query("/proposal/1")
    assert (proposal["yes_power"], proposal["no_power"], proposal["status"]) == (10, 20, "rejected")
    assert chain.query("/params")["max_meters_per_participant"] == 16


def test_basic_expires_by_block_time(chain: Chain) -> None:
    expires_at = chain.query("/proposal/1")["expires_at"]
    # One second before the end a vote still counts and nothing expires.
    tx = chain.sign("lpd", CastVote(proposal_id=1, approve=True))
    last_chance = chain.block([tx], dt=expires_at - 1 - chain.time)
    assert last_chance.tx_results[0].code == 0, last_chance.tx_results[0].log
    assert events_of(last_chance, "proposal.expired") == []
    assert chain.query("/proposal/1")["status"] == "open"
    # The first block at the end time closes it, in begin-block.
    closing = chain.block(dt=1)
    assert chain.time == expires_at
    assert events_of(closing, "proposal.expired") == [{"id": "1"}]
    proposal = chain.query("/proposal/1")
    assert (proposal["status"], proposal["yes_power"]) == ("expired", 10)
    assert chain.query("/params")["max_meters_per_participant"] == 16


def test_basic_expiry_in_begin_block_precedes_votes(chain: Chain) -> None:
    expires_at = chain.query("/proposal/1")["expires_at"]
    tx = chain.sign("lpd", CastVote(proposal_id=1, approve=True))
    response = chain.block([tx], dt=expires_at - chain.time)
    assert chain.time == expires_at
    assert events_of(response, "proposal.expired") == [{"id": "1"}]
    assert response.tx_results[0].code == errors.ProposalClosed.code


def test_invalid_duplicate_vote(chain: Chain) -> None:
    vote(chain, "dso", True)
    before = snapshot(chain)
    result = chain.deliver("dso", CastVote(proposal_id=1, approve=False))
    assert result.code == errors.DuplicateVote.code == 42
    assert snapshot(chain) == nonce_spent(before, "dso", chain.nonces[chain.id("dso")])


@pytest.mark.parametrize("voter", ["alice", "carol"])
def test_invalid_voter_not_operator(chain: Chain, voter: str) -> None:
    rejected(chain, voter, CastVote(proposal_id=1, approve=True), errors.NotAuthorised, spends_nonce=True)


def test_invalid_unknown_proposal(chain: Chain) -> None:
    rejected(chain, "dso", CastVote(proposal_id=2, approve=True), errors.UnknownProposal, spends_nonce=True)


def test_invalid_proposal_id_not_positive(chain: Chain) -> None:
    rejected(chain, "dso", CastVote(proposal_id=0, approve=True), errors.ValueOutOfRange, spends_nonce=False)


def test_invalid_vote_after_expiry(chain: Chain) -> None:
    chain.block(dt=86_400)
    assert chain.query("/proposal/1")["status"] == "expired"
    rejected(chain, "lpd", CastVote(proposal_id=1, approve=True), errors.ProposalClosed, spends_nonce=True)


def test_invalid_vote_after_passed(chain: Chain) -> None:
    for voter in ("dso", "dso_b", "lpd"):
        vote(chain, voter, True)
    rejected(chain, "lpd_b", CastVote(proposal_id=1, approve=False), errors.ProposalClosed, spends_nonce=True)
    assert chain.query("/proposal/1")["status"] == "passed"


def test_invalid_vote_after_rejected(chain: Chain) -> None:
    vote(chain, "dso", False)
    vote(chain, "dso_b", False)
    assert chain.query("/proposal/1")["status"] == "rejected"
    rejected(chain, "lpd", CastVote(proposal_id=1, approve=True), errors.ProposalClosed, spends_nonce=True)
