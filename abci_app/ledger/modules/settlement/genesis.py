"""Genesis step of the settlement module: the first slot to settle."""

from __future__ import annotations

from abci_app.ledger.modules.settlement import keeper
from abci_app.ledger.params import get_params
from abci_app.ledger.state import State


def init_settlement(state: State, genesis_time: int) -> None:
    """Settlement starts with the slot that holds the genesis time (the reserve's account is made when the
    first slot settles)."""
    slot_length = get_params(state).slot_length_s
    keeper.put_cursor(state, genesis_time // slot_length * slot_length)
