"""Offer and acceptance records, their sign bytes, and the inbox's bounded tables (no network)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from abci_app.ledger import codec
from abci_app.ledger.crypto import SigningKey
from node.p2p import messages, topics
from node.p2p.inbox import Inbox
from node.p2p.limits import Limits, PeerRateLimiter, SeenCache
from node.p2p.messages import Acceptance, AcceptOfferBody, OfferBody, SignedAcceptance, SignedOffer

CHAIN = "unit-chain"
NOW = 1_800_000_000
TOPIC = topics.topic(CHAIN, "offers", "zone-a")


def body(key: SigningKey, **changes: object) -> OfferBody:
    fields: dict[str, object] = dict(
        chain_id=CHAIN, maker=key.account, maker_pubkey=key.pubkey, side="ask", quantity_wh=2000, price=110_000,
        slot=7, valid_until=NOW + 900, zone="zone-a", origin="solar", salt=bytes(range(16)))
    fields.update(changes)
    return OfferBody(**fields)  # type: ignore[arg-type]


def test_sign_bytes_and_offer_id_follow_the_documented_layout() -> None:
    key = SigningKey.from_seed(bytes(32))
    offer = messages.sign_offer(body(key), key)
    expected_sign_bytes = codec.encode(["gridledger/offer", CHAIN, [
        CHAIN, key.account, key.pubkey, "ask", 2000, 110_000, 7, NOW + 900, "zone-a", "solar", bytes(range(16))]])
    assert messages.offer_sign_bytes(offer.body) == expected_sign_bytes
    assert offer.offer_id == hashlib.sha256(expected_sign_bytes).digest()
    assert offer.encode() == codec.encode([offer.body.to_wire(), offer.signature])
    assert messages.decode_as(SignedOffer, offer.encode()) == offer
    messages.check_offer(offer, CHAIN, NOW)


@pytest.mark.parametrize(("changes", "error"), [
    ({"chain_id": "other"}, messages.WrongChain),
    ({"side": "sell"}, messages.Malformed),
    ({"quantity_wh": 0}, messages.Malformed),
    ({"price": 0}, messages.Malformed),
    ({"price": 2**62, "quantity_wh": 4}, messages.Malformed),
    ({"origin": ""}, messages.Malformed),  # an ask names its origin
    ({"origin": "coal"}, messages.Malformed),
    ({"zone": "bad zone"}, messages.Malformed),
    ({"salt": b"short"}, messages.Malformed),
    ({"maker": "0" * 40}, messages.Malformed),
    ({"valid_until": NOW - 1}, messages.Expired),
])
def test_offer_checks(changes: dict[str, object], error: type[Exception]) -> None:
    key = SigningKey.generate()
    offer = SignedOffer(body=body(key, **changes), signature=key.sign(messages.offer_sign_bytes(body(key, **changes))))
    with pytest.raises(error):
        messages.check_offer(offer, CHAIN, NOW)


def test_a_bid_may_leave_the_origin_open_and_a_signature_binds_every_field() -> None:
    key = SigningKey.generate()
    bid = messages.sign_offer(body(key, side="bid", origin=""), key)
    messages.check_offer(bid, CHAIN, NOW)
    raised = SignedOffer(body=body(key, side="bid", origin="", price=999_999), signature=bid.signature)
    with pytest.raises(messages.BadSignature):
        messages.check_offer(raised, CHAIN, NOW)
    with pytest.raises(ValueError, match="maker's key"):
        messages.sign_offer(body(key), SigningKey.generate())


def test_acceptance_object_verifies_and_rejects_tampering() -> None:
    maker, taker = SigningKey.generate(), SigningKey.generate()
    offer = messages.sign_offer(body(maker), maker)
    accepted = messages.accept(offer, taker, 1500)
    assert accepted.body == Acceptance(chain_id=CHAIN, offer_id=offer.offer_id, taker=taker.account,
                                       taker_pubkey=taker.pubkey, quantity_wh=1500)
    assert messages.accept_sign_bytes(accepted.body) == codec.encode(
        ["gridledger/accept", CHAIN, [CHAIN, offer.offer_id, taker.account, taker.pubkey, 1500]])
    message = AcceptOfferBody(offer=offer, acceptance=accepted)
    messages.check_accept_offer(message, CHAIN, NOW)
    # The on-chain body is [[offer body, offer sig], [acceptance, acceptance sig]].
    assert codec.decode(message.encode()) == [offer.to_wire(), accepted.to_wire()]
    assert messages.decode_as(AcceptOfferBody, message.encode()) == message

    more = Acceptance(chain_id=CHAIN, offer_id=offer.offer_id, taker=taker.account, taker_pubkey=taker.pubkey,
                      quantity_wh=2000)
    with pytest.raises(messages.BadSignature):
        messages.check_accept_offer(AcceptOfferBody(offer, SignedAcceptance(more, accepted.signature)), CHAIN, NOW)
    with pytest.raises(messages.Malformed, match="between 1 and"):
        messages.accept(offer, taker, 2001)
    with pytest.raises(messages.Malformed, match="own offer"):
        messages.accept(offer, maker)
    other = messages.sign_offer(body(maker, quantity_wh=2001), maker)
    with pytest.raises(messages.Malformed, match="another offer"):
        messages.check_accept_offer(AcceptOfferBody(other, accepted), CHAIN, NOW)
    messages.check_accept_offer(message, CHAIN, NOW + 900)  # valid_until is the last valid second
    with pytest.raises(messages.Expired):
        messages.check_accept_offer(message, CHAIN, NOW + 901)


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = [0.0]
    limiter = PeerRateLimiter(rate=2.0, burst=3, max_peers=2, clock=lambda: clock[0])
    assert [limiter.allow("p") for _ in range(4)] == [True, True, True, False]
    clock[0] = 0.5
    assert [limiter.allow("p"), limiter.allow("p")] == [True, False]
    assert limiter.allow("q") and limiter.allow("r")
    assert len(limiter) == 2  # the least recently seen peer was forgotten


def test_seen_cache_is_bounded() -> None:
    seen = SeenCache(capacity=3)
    for key in range(5):
        seen.add(key)
    assert len(seen) == 3 and 0 not in seen and 4 in seen


def test_inbox_counts_each_reason_and_caches_only_live_verified_offers() -> None:
    clock = [float(NOW)]
    inbox = Inbox(CHAIN, Limits(max_cached_offers=3, max_offers_per_maker=2), wall_clock=lambda: clock[0])
    key = SigningKey.generate()
    good = messages.sign_offer(body(key, valid_until=NOW + 10), key)
    assert inbox.admit(b"peer", TOPIC, good.encode()) is not None
    assert inbox.admit(b"peer", TOPIC, good.encode()) is None
    assert inbox.admit(b"peer", topics.topic("other", "offers", "zone-a"), good.encode()) is None
    assert inbox.admit(b"peer", TOPIC, b"\x00" * 2000) is None
    assert inbox.counters["offers"].as_dict()["duplicate"] == 1
    assert inbox.counters["offers"].as_dict()["oversized"] == 1
    assert inbox.counters["offers"].as_dict()["wrong_topic"] == 1
    # Per-maker and total bounds: the oldest offer makes room.
    more = [messages.sign_offer(body(key, salt=os.urandom(16)), key) for _ in range(2)]
    for offer in more:
        assert inbox.admit(b"peer", TOPIC, offer.encode()) is not None
    assert {o.offer_id for o in inbox.offers.live(NOW)} == {o.offer_id for o in more}
    assert inbox.offers.evicted == 1
    assert len(inbox.offers.live(NOW + 900)) == 2
    clock[0] = NOW + 901
    assert inbox.offers.live(NOW + 901) == []  # all expired


DOC = (Path(__file__).resolve().parents[1] / "docs" / "p2p.md").read_text(encoding="utf-8")


def _field_table(heading: str) -> list[str]:
    """Field names of the first `| # | field |` table after ``heading`` in docs/p2p.md."""
    lines = DOC[DOC.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| # | field |"))
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names.append(line.split("|")[2].strip().strip("`"))
    return names


@pytest.mark.parametrize(("heading", "record"), [
    ("### Offer", OfferBody), ("### Acceptance", Acceptance), ("### Feed snapshot", messages.FeedBody)])
def test_docs_list_every_field_in_wire_order(heading: str, record: type[messages.Record]) -> None:
    assert _field_table(heading) == list(record.__struct_fields__)


def test_docs_worked_example_is_what_the_code_produces() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    example = OfferBody(chain_id="gridledger-demo", maker=key.account, maker_pubkey=key.pubkey, side="ask",
                        quantity_wh=2000, price=110_000, slot=7, valid_until=1767225600, zone="zone-a",
                        origin="solar", salt=bytes(16))
    block = DOC[DOC.index("The sign bytes"):]
    hex_text = "".join(block[block.index("```text") + 7:block.index("```", block.index("```text") + 7)].split())
    assert bytes.fromhex(hex_text) == messages.offer_sign_bytes(example)
    assert messages.offer_id(example).hex() in DOC
    assert key.account in DOC
