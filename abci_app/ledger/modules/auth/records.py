"""The account record and the roles an account can have."""

from __future__ import annotations

from abci_app.ledger.wire import I64, Record

PARTICIPANT_ROLES = ("consumer", "prosumer", "producer")
OPERATOR_ROLES = ("dso", "lpd")


class Account(Record, frozen=True):
    """A registered identity that can sign transactions and hold money."""

    id: str
    """Pseudonymous account id (hex of SHA-256(pubkey)[:20])."""
    pubkey: bytes
    """Ed25519 public key that signs this account's transactions."""
    role: str
    """consumer | prosumer | producer | dso | lpd."""
    zone: str
    """Grid zone of a participant; empty for operators."""
    dso: str
    """Account id of the DSO that registered this participant; empty for operators."""
    active: bool
    """Deactivated accounts may only withdraw their free balance."""
    balance: I64
    """Money held, in the currency's smallest unit (includes locked money)."""
    locked: I64
    """Part of ``balance`` held for open obligations; never above ``balance``."""
    debt: I64
    """Unpaid settlement charges (always 0 until settlement lands)."""
    nonce: I64
    """Nonce of the last authenticated transaction (0 before the first)."""
    registered_at: I64
    """Block time (unix seconds) of registration; 0 for genesis accounts."""

    @property
    def free(self) -> int:
        return self.balance - self.locked

    @property
    def is_operator(self) -> bool:
        return self.role in OPERATOR_ROLES
