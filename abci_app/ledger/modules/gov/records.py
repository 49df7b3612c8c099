"""Records of the gov module: operators (the validator set), proposals and votes."""

from __future__ import annotations

from abci_app.ledger.wire import I64, Record


class Operator(Record, frozen=True):
    """A grid operator that runs a validator and votes in governance."""

    account: str
    """The operator's account id."""
    name: str
    """Human-readable operator name, unique."""
    role: str
    """dso | lpd."""
    zones: tuple[str, ...]
    """Grid zones a DSO serves (sorted); empty for an LPD."""
    power: I64
    """Governance voting power; for a validator also its consensus voting power."""
    consensus_pubkey: bytes
    """Ed25519 consensus key of the operator's validator node; empty if it runs none."""

    @property
    def is_validator(self) -> bool:
        return bool(self.consensus_pubkey) and self.power > 0


class ParamChange(Record, frozen=True):
    name: str
    """Parameter name, as in ``Params``."""
    value: I64
    """New value (all changeable parameters are integers)."""


class ValidatorChange(Record, frozen=True):
    """A change to the validator set, as proposed by an operator."""

    action: str
    """add | remove | power."""
    name: str
    """Operator name: the new operator (add) or an existing validator (remove, power)."""
    role: str
    """add: dso | lpd; otherwise empty."""
    account_pubkey: bytes
    """add: the new operator's Ed25519 account key; otherwise empty."""
    consensus_pubkey: bytes
    """add: the validator node's Ed25519 consensus key; otherwise empty."""
    zones: tuple[str, ...]
    """add: the zones a new DSO serves (sorted); otherwise empty."""
    power: I64
    """add, power: the voting power; remove: 0."""


class Proposal(Record, frozen=True):
    """A governance proposal and its running tally."""

    id: I64
    proposer: str
    kind: str
    """``params`` or ``validator``."""
    changes: tuple[ParamChange, ...]
    """kind params: the parameter changes."""
    validator_change: tuple[ValidatorChange, ...]
    """kind validator: exactly one change."""
    description: str
    submitted_at: I64
    expires_at: I64
    yes_power: I64
    no_power: I64
    status: str
    """open | passed | rejected | expired | failed (passed, but no longer applicable)."""


class Vote(Record, frozen=True):
    approve: bool
    power: I64
