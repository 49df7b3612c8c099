"""The clock-driven block steps (governance expiry, market clock, settlement): a step that raises is dropped
with an event, never stops the block."""

from __future__ import annotations

import pytest

from abci_app.ledger import errors, execute
from abci_app.ledger.events import Event
from abci_app.ledger.modules.bank.msgs import Transfer
from abci_app.ledger.state import State
from tests.harness import Chain, events_of

MARK = b"test/step-ran"


def _writes_then_raises(exc: Exception) -> execute.BlockStep:
    def step(state: State, height: int, time: int) -> list[Event]:
        state.kv.set(MARK, b"half done")
        raise exc
    return step


def _writes(state: State, height: int, time: int) -> list[Event]:
    state.kv.set(MARK + b"/ok", height.to_bytes(8, "big"))
    return []


def test_basic() -> None:
    assert [name for name, _ in execute.BLOCK_STEPS] == ["governance", "market", "settlement"]
    chain = Chain()
    response = chain.block()
    assert not events_of(response, "block_step.failed")
    assert chain.query("/chain")["height"] == 1


@pytest.mark.parametrize(("exc", "code", "error"), [
    (OverflowError("int too big to convert"), 1, "OverflowError"),
    (errors.InvariantViolated("the open-meter index names a missing meter m-1"), 1,
     "the open-meter index names a missing meter m-1"),
])
def test_invalid_step_raises_drops_its_writes_and_the_block_goes_on(
        monkeypatch: pytest.MonkeyPatch, exc: Exception, code: int, error: str) -> None:
    chain = Chain()
    chain.block()
    steps = (("first", _writes), ("broken", _writes_then_raises(exc)), *execute.BLOCK_STEPS)
    monkeypatch.setattr(execute, "BLOCK_STEPS", steps)
    before = chain.account("alice")["balance"]
    response = chain.block([chain.sign("alice", _transfer(chain))])
    assert events_of(response, "block_step.failed") == [{"step": "broken", "code": str(code), "error": error}]
    # The transaction of the block still ran, the steps before and after kept their writes, the broken one none.
    assert response.tx_results[0].code == 0
    assert chain.account("alice")["balance"] == before - 1_000
    committed = chain.app.committed
    assert committed.get(MARK) is None
    assert committed.get(MARK + b"/ok") == (2).to_bytes(8, "big")
    assert chain.query("/chain")["height"] == 2


def test_invalid_step_fails_the_same_on_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = (("broken", _writes_then_raises(KeyError("x"))), *execute.BLOCK_STEPS)
    monkeypatch.setattr(execute, "BLOCK_STEPS", steps)
    one, two = Chain(), Chain()
    hashes = [chain.block().app_hash for chain in (one, two)]
    assert hashes[0] == hashes[1]


def _transfer(chain: Chain) -> Transfer:
    return Transfer(recipient=chain.id("bob"), amount=1_000, memo="")


@pytest.mark.parametrize("exc", [MemoryError(), OSError(5, "Input/output error")])
def test_invalid_node_fault_stops_the_node_instead_of_diverging(monkeypatch: pytest.MonkeyPatch,
                                                                exc: Exception) -> None:
    """Memory or disk faults are this node's alone: dropping a step or rejecting a transaction for them would
    leave it with a state the others do not have, so FinalizeBlock raises (CometBFT stops, and replays the
    block at restart)."""
    in_a_step, in_a_transaction = Chain(), Chain()
    with monkeypatch.context() as patched:
        patched.setattr(execute, "BLOCK_STEPS", (("broken", _writes_then_raises(exc)), *execute.BLOCK_STEPS))
        with pytest.raises(type(exc)):
            in_a_step.block()

    def run_tx(*args: object, **kwargs: object) -> None:
        raise exc
    monkeypatch.setattr("abci_app.app.run_tx", run_tx)
    with pytest.raises(type(exc)):
        in_a_transaction.block([in_a_transaction.sign("alice", _transfer(in_a_transaction))])
