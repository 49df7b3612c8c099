"""/proposals and /proposal/<id> read well: the proposer's name, a summary, base64 consensus keys."""

from __future__ import annotations

import base64

import pytest

from abci_app.ledger.modules.gov import ProposeParams
from abci_app.ledger.modules.gov.records import ParamChange
from tests.harness import Chain
from tests.test_propose_validator import NEW_ACCOUNT, NEW_CONSENSUS, add, change, pass_proposal, validator_app_state


@pytest.fixture
def chain() -> Chain:
    chain = Chain(app_state=validator_app_state())
    chain.block()
    return chain


def test_basic_validator_proposal_is_readable(chain: Chain) -> None:
    assert chain.deliver("dso", add()).code == 0
    proposal = chain.query("/proposal/1")
    assert proposal["proposer_name"] == "dso-a"
    assert proposal["summary"] == "add validator dso-e (dso, zones zone-e, power 10)"
    (entry,) = proposal["validator_change"]
    # The same text CometBFT's priv_validator_key.json, /validators and /operators use.
    assert entry["consensus_pubkey"] == base64.b64encode(NEW_CONSENSUS).decode()
    assert entry["account_pubkey"] == NEW_ACCOUNT.pubkey.hex()
    assert chain.query("/proposals")["proposals"] == [proposal]


def test_basic_every_kind_of_change_has_a_summary(chain: Chain) -> None:
    pass_proposal(chain, add())
    pass_proposal(chain, change("power", "dso-e", 5), voters=("dso", "dso_b", "lpd", "lpd_b"))
    assert chain.deliver("lpd_b", change("remove", "dso-e")).code == 0
    params = ProposeParams(changes=(ParamChange(name="max_tx_bytes", value=2048),
                                    ParamChange(name="voting_period_s", value=3600)), description="")
    assert chain.deliver("dso_b", params).code == 0
    answers = chain.query("/proposals")["proposals"]
    assert [(p["proposer_name"], p["summary"]) for p in answers] == [
        ("dso-a", "add validator dso-e (dso, zones zone-e, power 10)"),
        ("dso-a", "set power of dso-e to 5"),
        ("lpd-b", "remove validator dso-e"),
        ("dso-b", "max_tx_bytes=2048; voting_period_s=3600"),
    ]
    # Changes without keys keep them empty, not as the base64 of nothing.
    assert answers[2]["validator_change"][0]["consensus_pubkey"] == ""


def test_basic_operator_and_proposal_use_the_same_key_text(chain: Chain) -> None:
    pass_proposal(chain, add())
    operator = next(op for op in chain.query("/operators")["operators"] if op["name"] == "dso-e")
    assert operator["consensus_pubkey"] == chain.query("/proposal/1")["validator_change"][0]["consensus_pubkey"]
