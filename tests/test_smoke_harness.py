from abci_app.ledger.modules.bank import Transfer
from tests.harness import Chain, events_of


def test_basic() -> None:
    chain = Chain()
    result = chain.deliver("alice", Transfer(recipient=chain.id("bob"), amount=1_000, memo="hi"))
    assert result.code == 0, result.log
    assert chain.account("alice")["balance"] == 10_000_000 - 1_000
    assert chain.account("bob")["balance"] == 10_000_000 + 1_000
    assert events_of(result, "transfer") == [
        {"sender": chain.id("alice"), "recipient": chain.id("bob"), "amount": "1000"}
    ]
