"""propose_validator: operators add, remove and re-weight validators by a > 2/3 vote."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from abci_app.ledger import errors
from abci_app.ledger.genesis import GenesisError, load_genesis
from abci_app.ledger.modules.gov import CastVote, ProposeValidator
from abci_app.ledger.modules.gov.msgs import MAX_POWER, MAX_TOTAL_POWER
from abci_app.ledger.modules.gov.records import ValidatorChange
from abci_app.ledger.state import State
from abci_app.ledger.store import MemoryBackend, Overlay
from tests.harness import Chain, default_app_state, events_of, rejected, seeded_key

# Real Ed25519 keys: weak keys (small order, not on the curve) are refused where a key enters the state.
CONSENSUS = {name: seeded_key(f"consensus-{name}").pubkey for name in ("dso-a", "dso-b", "lpd-a", "lpd-b")}
NEW_ACCOUNT = seeded_key("dso-e")
NEW_CONSENSUS = seeded_key("consensus-dso-e").pubkey


def validator_app_state() -> dict[str, Any]:
    keys = {name: seeded_key(name) for name in ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol")}
    state = copy.deepcopy(default_app_state(keys))
    for operator in state["operators"]:
        operator["consensus_pubkey"] = base64.b64encode(CONSENSUS[operator["name"]]).decode()
    return state


@pytest.fixture
def chain() -> Chain:
    chain = Chain(app_state=validator_app_state())
    chain.block()
    return chain


def add(name: str = "dso-e", zones: tuple[str, ...] = ("zone-e",), power: int = 10,
        account: bytes = NEW_ACCOUNT.pubkey, consensus: bytes = NEW_CONSENSUS, role: str = "dso") -> ProposeValidator:
    return ProposeValidator(change=ValidatorChange(action="add", name=name, role=role, account_pubkey=account,
                                                   consensus_pubkey=consensus, zones=zones, power=power),
                            description="new DSO")


def change(action: str, name: str, power: int = 0) -> ProposeValidator:
    return ProposeValidator(change=ValidatorChange(action=action, name=name, role="", account_pubkey=b"",
                                                   consensus_pubkey=b"", zones=(), power=power),
                            description="")


def validators(chain: Chain) -> dict[str, int]:
    return {op["name"]: op["power"] for op in chain.query("/operators")["operators"] if op["consensus_pubkey"]}


def pass_proposal(chain: Chain, msg: ProposeValidator, voters: tuple[str, ...] = ("dso", "dso_b", "lpd")) -> Any:
    """Propose (by the first voter) and vote yes until it passes; return the passing block's response."""
    assert chain.deliver(voters[0], msg).code == 0
    proposal_id = chain.query("/proposals")["proposals"][-1]["id"]
    response = None
    for voter in voters:
        response = chain.block([chain.sign(voter, CastVote(proposal_id=proposal_id, approve=True))])
        assert response.tx_results[0].code == 0, response.tx_results[0].log
    return response


def test_basic(chain: Chain) -> None:
    response = pass_proposal(chain, add())
    # The third yes vote (30 of 40 power) passes it: the update goes to CometBFT in that block.
    assert [(u.pub_key.ed25519, u.power) for u in response.validator_updates] == [(NEW_CONSENSUS, 10)]
    assert events_of(response.tx_results[0], "validator.updated") == [
        {"action": "add", "name": "dso-e", "consensus_pubkey": base64.b64encode(NEW_CONSENSUS).decode(),
         "power": "10"}]
    assert validators(chain) == {"dso-a": 10, "dso-b": 10, "lpd-a": 10, "lpd-b": 10, "dso-e": 10}
    assert chain.query(f"/account/{NEW_ACCOUNT.account}")["role"] == "dso"
    assert chain.query("/proposal/1")["status"] == "passed"
    # The next block carries no update again.
    assert list(chain.block().validator_updates) == []


def test_basic_remove_and_power(chain: Chain) -> None:
    pass_proposal(chain, add())
    response = pass_proposal(chain, change("power", "dso-e", 5), voters=("dso", "dso_b", "lpd", "lpd_b"))
    assert [(u.pub_key.ed25519, u.power) for u in response.validator_updates] == [(NEW_CONSENSUS, 5)]
    response = pass_proposal(chain, change("remove", "dso-e"), voters=("dso", "dso_b", "lpd", "lpd_b"))
    assert [(u.pub_key.ed25519, u.power) for u in response.validator_updates] == [(NEW_CONSENSUS, 0)]
    assert "dso-e" not in validators(chain)
    # The operator stays, with its zone, but without power.
    removed = next(op for op in chain.query("/operators")["operators"] if op["name"] == "dso-e")
    assert (removed["power"], removed["zones"], removed["consensus_pubkey"]) == (0, ["zone-e"], "")


def test_basic_new_operator_registers_in_its_zone(chain: Chain) -> None:
    from abci_app.ledger.modules.registry import RegisterParticipant
    pass_proposal(chain, add())
    chain.keys["dso-e"] = NEW_ACCOUNT
    result = chain.deliver("dso-e", RegisterParticipant(pubkey=seeded_key("frank").pubkey, role="consumer",
                                                         zone="zone-e"))
    assert result.code == 0, result.log


def test_invalid_not_operator(chain: Chain) -> None:
    rejected(chain, "alice", add(), errors.NotAuthorised, spends_nonce=True)


@pytest.mark.parametrize(("msg", "reason"), [
    (add(role="prosumer"), "participant role"),
    (add(role="lpd"), "LPD with zones"),
    (add(zones=()), "DSO without zones"),
    (add(zones=("z2", "z1")), "zones unsorted"),
    (add(account=b"short"), "account key length"),
    (add(consensus=b"short"), "consensus key length"),
    (change("remove", "dso-a", 3), "remove with power"),
    (change("grow", "dso-a", 3), "unknown action"),
])
def test_invalid_malformed(chain: Chain, msg: ProposeValidator, reason: str) -> None:
    rejected(chain, "dso", msg, errors.MalformedBody, spends_nonce=False)


def test_invalid_power_zero(chain: Chain) -> None:
    rejected(chain, "dso", change("power", "dso-a", 0), errors.ValueOutOfRange, spends_nonce=False)


@pytest.mark.parametrize("msg", [
    add(name="dso-b"),
    add(account=seeded_key("alice").pubkey),
    add(consensus=CONSENSUS["lpd-a"]),
])
def test_invalid_operator_exists(chain: Chain, msg: ProposeValidator) -> None:
    rejected(chain, "dso", msg, errors.OperatorExists, spends_nonce=True)


def test_invalid_zone_served_by_another_dso(chain: Chain) -> None:
    rejected(chain, "dso", add(zones=("zone-a",)), errors.WrongZone, spends_nonce=True)


def test_invalid_unknown_validator(chain: Chain) -> None:
    rejected(chain, "dso", change("remove", "dso-x"), errors.UnknownOperator, spends_nonce=True)


def test_invalid_guard_removes_more_than_a_third(chain: Chain) -> None:
    # 4 x 10: removing one validator is 1/4 and may be proposed.
    assert chain.deliver("dso", change("remove", "dso-b")).code == 0
    pass_proposal(chain, add(power=30))  # dso-e now holds 30 of 70: more than 1/3
    rejected(chain, "dso", change("remove", "dso-e"), errors.ValidatorSetGuard, spends_nonce=True)


def test_invalid_last_validator() -> None:
    state = validator_app_state()
    # dso-a is the only validator; an LPD (needed by settlement) runs no validator node.
    lpd = next(op for op in state["operators"] if op["name"] == "lpd-a")
    state["operators"] = [state["operators"][0], {**lpd, "consensus_pubkey": ""}]
    state["participants"] = [p for p in state["participants"] if p["dso"] == "dso-a"]
    chain = Chain(app_state=state)
    chain.block()
    rejected(chain, "dso", change("remove", "dso-a"), errors.ValidatorSetGuard, spends_nonce=True)


def test_invalid_duplicate_vote(chain: Chain) -> None:
    assert chain.deliver("dso", add()).code == 0
    assert chain.deliver("dso", CastVote(proposal_id=1, approve=True)).code == 0
    rejected(chain, "dso", CastVote(proposal_id=1, approve=True), errors.DuplicateVote, spends_nonce=True)


def test_invalid_expired_proposal(chain: Chain) -> None:
    assert chain.deliver("dso", add()).code == 0
    chain.block(dt=86_400)
    rejected(chain, "lpd", CastVote(proposal_id=1, approve=True), errors.ProposalClosed, spends_nonce=True)


def test_failed_when_no_longer_applicable(chain: Chain) -> None:
    # Two proposals for the same name; the second to pass finds the name taken.
    assert chain.deliver("dso", add()).code == 0
    assert chain.deliver("dso", add(account=seeded_key("other").pubkey, consensus=seeded_key("consensus-other").pubkey,
                                    zones=("zone-f",))).code == 0
    for voter in ("dso", "dso_b", "lpd"):
        assert chain.deliver(voter, CastVote(proposal_id=1, approve=True)).code == 0
    # dso-e now holds 10 of 50 power: the second proposal needs four yes votes.
    results = [chain.deliver(voter, CastVote(proposal_id=2, approve=True))
               for voter in ("dso", "dso_b", "lpd", "lpd_b")]
    assert all(r.code == 0 for r in results)
    assert events_of(results[-1], "proposal.failed")[0]["reason"] == "an operator named dso-e exists"
    assert chain.query("/proposal/2")["status"] == "failed"
    assert validators(chain)["dso-e"] == 10


@pytest.mark.parametrize("power", [MAX_POWER + 1, 1 << 62])
def test_invalid_power_above_the_maximum(chain: Chain, power: int) -> None:
    rejected(chain, "dso", add(power=power), errors.ValueOutOfRange, spends_nonce=False)
    rejected(chain, "dso", change("power", "dso-a", power), errors.ValueOutOfRange, spends_nonce=False)


def test_invalid_total_power_above_the_maximum() -> None:
    """Operators near the per-operator maximum: an addition that would pass the total is refused."""
    state = validator_app_state()
    for operator in state["operators"]:
        operator["power"] = MAX_POWER
    chain = Chain(app_state=state)
    chain.block()
    assert sum(op["power"] for op in chain.query("/operators")["operators"]) == 4 * MAX_POWER
    assert MAX_TOTAL_POWER // MAX_POWER >= 5  # one more fits ...
    assert chain.deliver("dso", add(power=MAX_POWER)).code == 0
    # ... but a genesis above the total is refused outright.
    crowded = validator_app_state()
    extra = [{"name": f"lpd-{i}", "role": "lpd", "pubkey": seeded_key(f"extra-{i}").pubkey.hex(), "zones": [],
              "power": MAX_POWER} for i in range(MAX_TOTAL_POWER // MAX_POWER)]
    crowded["operators"] += extra
    with pytest.raises(GenesisError, match="total operator power"):
        load_genesis(State(Overlay(MemoryBackend())), json.dumps(crowded).encode())
