"""Genesis step of the registry module: participants and meters, with the rules of their messages."""

from __future__ import annotations

from typing import Any

from abci_app.ledger import crypto, errors
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.gov.genesis import pubkey_from_hex
from abci_app.ledger.modules.gov.records import Operator
from abci_app.ledger.modules.registry import keeper as registry
from abci_app.ledger.modules.registry.handlers import check_new_meter, check_new_participant, new_meter, new_participant
from abci_app.ledger.modules.registry.msgs import RegisterMeter, RegisterParticipant
from abci_app.ledger.msg import require_amount
from abci_app.ledger.state import State

METER_FIELDS = ("import_capacity_w", "export_capacity_w", "import_register_wh", "export_register_wh")


def init_participants(state: State, entries: list[dict[str, Any]], operators: dict[str, Operator]) -> None:
    """Register each genesis participant as its DSO's ``register_participant`` would, with its balance."""
    for entry in entries:
        dso = operators.get(entry["dso"])
        # Rule: a genesis participant names a genesis DSO.
        if dso is None or dso.role != "dso":
            raise errors.UnknownOperator(f"participant's DSO {entry['dso']!r} is not a genesis DSO")
        msg = RegisterParticipant(pubkey=pubkey_from_hex(entry["pubkey"]), role=entry["role"], zone=entry["zone"])
        msg.validate_basic()
        balance = entry.get("balance", 0)
        require_amount("balance", balance, minimum=0)
        account_id = check_new_participant(state, dso, msg)
        auth.add_account(state, new_participant(account_id, dso, msg, balance, time=0))


def init_meters(state: State, entries: list[dict[str, Any]], time: int) -> None:
    """Register each genesis meter as its owner's DSO's ``register_meter`` would, at genesis time."""
    for entry in entries:
        owner = auth.require_account(state, crypto.account_id(pubkey_from_hex(entry["owner_pubkey"])))
        # Rule: meters belong to participants, not operators.
        if owner.is_operator:
            raise errors.NotAuthorised(f"meter {entry['id']}: meters belong to participants, not operators")
        msg = RegisterMeter(meter_id=entry["id"], pubkey=pubkey_from_hex(entry["pubkey"]), owner=owner.id,
                            **{name: entry.get(name, 0) for name in METER_FIELDS})
        msg.validate_basic()
        check_new_meter(state, owner.dso, msg)
        # A genesis meter's registers are its values at genesis time: its first reading's flow starts there.
        registry.add_meter(state, new_meter(owner.dso, msg, time))
