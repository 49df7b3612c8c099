"""Each module's invariants hold on a busy chain and name the damage when the state is broken by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from msgspec.structs import replace

from abci_app.ledger.invariants import ALL_INVARIANTS, violations
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.keys import zone_member_key
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.gov.keys import VALIDATOR_UPDATES
from abci_app.ledger.modules.market.keeper import Market
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.modules.registry.keys import meter_pubkey_key
from abci_app.ledger.state import State
from abci_app.ledger.store import Overlay
from tests.harness import Chain
from tests.market_harness import market_chain, order, place


def busy_chain() -> Chain:
    chain = market_chain()
    place(chain, "alice", order("ask", 2_000, 240_000))
    place(chain, "bob", order("bid", 1_000, 260_000))
    place(chain, "dave", order("bid", 500, 200_000))
    return chain


def damaged(chain: Chain, damage: Callable[[State], None]) -> list[str]:
    state = State(Overlay(chain.app.committed))
    damage(state)
    return violations(state)


def test_basic() -> None:
    chain = busy_chain()
    assert violations(State(Overlay(chain.app.committed))) == []
    assert len(ALL_INVARIANTS) >= 12


def _balance_plus_one(state: State) -> None:
    alice = auth.require_account(state, Chain().id("alice"))
    auth.put_account(state, replace(alice, balance=alice.balance + 1))


def _lock_released_by_hand(state: State) -> None:
    bob = auth.require_account(state, Chain().id("bob"))
    auth.put_account(state, replace(bob, locked=bob.locked - 1))


def _stale_zone_entry(state: State) -> None:
    state.kv.set(zone_member_key("zone-a", "f" * 40), b"")


def _meter_key_unindexed(state: State) -> None:
    meter = registry.get_meter(state, "m-alice")
    assert meter is not None
    state.kv.delete(meter_pubkey_key(meter.pubkey))


def _order_lock_changed(state: State) -> None:
    market = Market(state)
    first = next(market.iter_orders())
    market.put_order(replace(first, locked=first.locked + 1))


def _count_off(state: State) -> None:
    Market(state).change_open_order_count(Chain().id("dave"), 1)


def _update_left_queued(state: State) -> None:
    gov.queue_validator_update(state, bytes(32), 1)
    assert next(iter(state.scan(VALIDATOR_UPDATES)))


@pytest.mark.parametrize(("damage", "named"), [
    (_balance_plus_one, "balances_hold_the_supply"),
    (_lock_released_by_hand, "locks_are_orders_and_positions"),
    (_stale_zone_entry, "zone_index_lists_exactly_the_participants"),
    (_meter_key_unindexed, "meter_indexes_match_the_meters"),
    (_order_lock_changed, "orders_lock_what_they_require"),
    (_count_off, "open_order_counts_match"),
    (_update_left_queued, "no_validator_update_outlives_its_block"),
])
def test_invalid_damage_is_named(damage: Callable[[State], None], named: str) -> None:
    found = damaged(busy_chain(), damage)
    assert found and any(problem.startswith(named + ":") for problem in found), found
