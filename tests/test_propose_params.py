"""propose_params: an operator proposes new values for changeable chain parameters."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.modules.gov import CastVote
from abci_app.ledger.modules.gov.msgs import MAX_CHANGES, ProposeParams
from abci_app.ledger.modules.gov.records import ParamChange
from tests.harness import GENESIS_TIME, Chain, events_of, rejected


def propose(*changes: tuple[str, int], description: str = "") -> ProposeParams:
    return ProposeParams(changes=tuple(ParamChange(name, value) for name, value in changes), description=description)


def test_basic(chain: Chain) -> None:
    params = chain.query("/params")
    msg = propose(("max_meters_per_participant", 32), ("voting_period_s", 3_600), description="more meters")
    result = chain.deliver("lpd", msg)
    assert result.code == 0, result.log
    submitted = GENESIS_TIME + 10
    proposal = {
        "id": 1, "proposer": chain.id("lpd"), "kind": "params",
        "changes": [{"name": "max_meters_per_participant", "value": 32}, {"name": "voting_period_s", "value": 3_600}],
        "description": "more meters", "submitted_at": submitted, "expires_at": submitted + 86_400,
        "yes_power": 0, "no_power": 0, "status": "open", "validator_change": [],
        "proposer_name": "lpd-a", "summary": "max_meters_per_participant=32; voting_period_s=3600",
    }
    assert chain.query("/proposal/1") == proposal
    assert chain.query("/proposals") == {"proposals": [proposal]}
    assert chain.query("/params") == params  # nothing changes before the vote
    assert events_of(result, "proposal.submitted") == [
        {"id": "1", "proposer": chain.id("lpd"), "kind": "params", "expires_at": str(submitted + 86_400)}
    ]


def test_basic_ids_increase(chain: Chain) -> None:
    assert chain.deliver("dso", propose(("max_tx_bytes", 1_024))).code == 0
    result = chain.deliver("dso_b", propose(("max_tx_bytes", 2_048)))
    assert events_of(result, "proposal.submitted")[0]["id"] == "2"
    assert [p["id"] for p in chain.query("/proposals")["proposals"]] == [1, 2]


def test_basic_bounds_are_inclusive(chain: Chain) -> None:
    msg = propose(("max_tx_bytes", 256), ("voting_period_s", 365 * 86_400), ("max_meters_per_participant", 1))
    assert chain.deliver("dso", msg).code == 0


@pytest.mark.parametrize("signer", ["alice", "carol"])
def test_invalid_signer_not_operator(chain: Chain, signer: str) -> None:
    rejected(chain, signer, propose(("max_tx_bytes", 1_024)), errors.NotAuthorised, spends_nonce=True)


def test_invalid_unknown_param(chain: Chain) -> None:
    rejected(chain, "dso", propose(("block_reward", 5)), errors.UnknownParam, spends_nonce=False)


@pytest.mark.parametrize("name", ["currency", "currency_exponent"])
def test_invalid_immutable_param(chain: Chain, name: str) -> None:
    rejected(chain, "dso", propose((name, 2)), errors.NotAuthorised, spends_nonce=False)


@pytest.mark.parametrize(
    "change",
    [
        ("max_tx_bytes", 255),
        ("max_tx_bytes", (1 << 20) + 1),
        ("voting_period_s", 59),
        ("voting_period_s", 365 * 86_400 + 1),
        ("max_meters_per_participant", 0),
        ("max_meters_per_participant", 1_001),
    ],
)
def test_invalid_value_out_of_bounds(chain: Chain, change: tuple[str, int]) -> None:
    rejected(chain, "dso", propose(change), errors.ValueOutOfRange, spends_nonce=False)


def test_invalid_no_changes(chain: Chain) -> None:
    rejected(chain, "dso", propose(), errors.MalformedBody, spends_nonce=False)


def test_invalid_too_many_changes(chain: Chain) -> None:
    msg = propose(*[("max_tx_bytes", 1_024)] * (MAX_CHANGES + 1))
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_param_twice(chain: Chain) -> None:
    msg = propose(("max_tx_bytes", 1_024), ("max_tx_bytes", 2_048))
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_description_too_long(chain: Chain) -> None:
    msg = propose(("max_tx_bytes", 1_024), description="d" * 1_025)
    rejected(chain, "dso", msg, errors.ValueOutOfRange, spends_nonce=False)


def test_a_smaller_max_tx_bytes_applies_from_the_next_block() -> None:
    """A vote that lowers max_tx_bytes mid-block does not fail a later transaction of the same block that
    ProcessProposal accepted under the old limit; the next block is held to the new one (code 9)."""
    chain = Chain()
    chain.block()
    assert chain.deliver("dso", propose(("max_tx_bytes", 256))).code == 0
    for voter in ("dso", "dso_b"):
        assert chain.deliver(voter, CastVote(proposal_id=1, approve=True)).code == 0
    big = Transfer(recipient=chain.id("bob"), amount=1, memo="m" * 200)
    deciding = chain.sign("lpd", CastVote(proposal_id=1, approve=True))
    late = chain.sign("alice", big)
    assert len(late) > 256
    result = chain.block([deciding, late])
    assert events_of(result.tx_results[0], "proposal.passed")
    assert chain.query("/params")["max_tx_bytes"] == 256
    assert (result.tx_results[1].code, result.tx_results[1].log) == (0, "")
    assert chain.block([chain.sign("alice", big)]).tx_results[0].code == errors.TxTooLarge.code
