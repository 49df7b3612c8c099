"""Messages of the gov module and their stateless checks."""

from __future__ import annotations

from typing import ClassVar

from abci_app.ledger import codec, errors
from abci_app.ledger.modules.auth.records import OPERATOR_ROLES
from abci_app.ledger.modules.gov.records import ParamChange, ValidatorChange
from abci_app.ledger.msg import Msg, require_amount, require_name, require_new_key, require_text
from abci_app.ledger.params import check_param_change
from abci_app.ledger.wire import I64

MAX_CHANGES = 32


class ProposeParams(Msg, frozen=True):
    """An operator proposes new values for chain parameters."""

    TYPE: ClassVar[str] = "propose_params"
    changes: tuple[ParamChange, ...]
    """Parameter names and new values; each name at most once."""
    description: str
    """Why: shown to the voters."""

    def validate_basic(self) -> None:
        if not 1 <= len(self.changes) <= MAX_CHANGES:
            raise errors.MalformedBody(f"a proposal changes between 1 and {MAX_CHANGES} parameters")
        names = [change.name for change in self.changes]
        if len(set(names)) != len(names):
            raise errors.MalformedBody("a parameter appears twice in one proposal")
        for change in self.changes:
            check_param_change(change.name, change.value)
        require_text("description", self.description, limit=1024)


class CastVote(Msg, frozen=True):
    """An operator approves or opposes an open proposal."""

    TYPE: ClassVar[str] = "vote"
    proposal_id: I64
    """The proposal voted on."""
    approve: bool
    """True for yes, False for no."""

    def validate_basic(self) -> None:
        if not 1 <= self.proposal_id <= codec.MAX_INT:
            raise errors.ValueOutOfRange("proposal_id must be positive")


VALIDATOR_ACTIONS = ("add", "remove", "power")
MAX_POWER = 1_000_000
"""Largest voting power of one operator."""
MAX_TOTAL_POWER = 1_000_000_000
"""Largest total operator power: far inside CometBFT's limit of (2^63 - 1) / 8 on the validator set, and small
enough that no tally (3 x yes power) comes near the signed 64-bit range."""


def require_power(power: int) -> None:
    # Rule: an operator's power is 1 to MAX_POWER (0 only by removal).
    require_amount("power", power)
    if power > MAX_POWER:
        raise errors.ValueOutOfRange(f"power must be at most {MAX_POWER}, got {power}")


class ProposeValidator(Msg, frozen=True):
    """An operator proposes a change to the validator set."""

    TYPE: ClassVar[str] = "propose_validator"
    change: ValidatorChange
    """What changes (see ``ValidatorChange``)."""
    description: str
    """Why: shown to the voters."""

    def validate_basic(self) -> None:
        change = self.change
        if change.action not in VALIDATOR_ACTIONS:
            raise errors.MalformedBody(f"action must be one of {', '.join(VALIDATOR_ACTIONS)}")
        require_name("name", change.name)
        require_text("description", self.description, limit=1024)
        if change.action == "add":
            _check_new_operator(change)
        elif change.role or change.account_pubkey or change.consensus_pubkey or change.zones:
            raise errors.MalformedBody(f"{change.action} names an existing validator: only name and power")
        if change.action == "remove" and change.power != 0:
            raise errors.MalformedBody("remove has power 0")
        if change.action == "power":
            require_power(change.power)


def _check_new_operator(change: ValidatorChange) -> None:
    check_operator_fields(change.role, change.name, change.account_pubkey, change.zones, change.power)
    require_new_key("consensus_pubkey", change.consensus_pubkey)


def check_operator_fields(role: str, name: str, account_pubkey: bytes, zones: tuple[str, ...], power: int) -> None:
    """Stateless rules of a new operator (a validator proposal's, or a genesis operator's)."""
    # Rule: only DSOs and LPDs are operators.
    if role not in OPERATOR_ROLES:
        raise errors.MalformedBody("only DSO and LPD operators run validators: role must be dso or lpd")
    require_name("name", name)
    require_new_key("account_pubkey", account_pubkey)
    require_power(power)
    for zone in zones:
        require_name("zone", zone)
    # Rule: one encoding per set of zones.
    if list(zones) != sorted(set(zones)):
        raise errors.MalformedBody("zones must be sorted and distinct")
    # Rule: a DSO serves zones, an LPD none.
    if (role == "dso") != bool(zones):
        raise errors.MalformedBody("a DSO serves at least one zone, an LPD none")
