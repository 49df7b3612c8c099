"""Base of every transaction message and the context its handler runs in."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.events import Event
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.params import Params
from abci_app.ledger.state import State
from abci_app.ledger.wire import Record

# Zone names, meter ids and references: short printable identifiers, so they
# can sit in state keys and event attributes unescaped.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_TEXT = 256


class Msg(Record, frozen=True):
    """A transaction message: a typed body with its stateless checks."""

    TYPE: ClassVar[str] = ""

    def validate_basic(self) -> None:
        """Checks that need no state; raise ``MalformedBody``/``ValueOutOfRange``."""


@dataclass
class TxContext:
    """What a handler may see besides the message: state, signer and block."""

    state: State
    signer: Account
    height: int
    time: int
    """Block header time, unix seconds: the only clock."""
    chain_id: str
    verifier: crypto.Verifier = field(default_factory=crypto.Verifier)
    """Strict signature checks with the application's memory of valid signatures."""
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class AdmitContext:
    """What a mempool admission check may see (docs/architecture.md, CheckTx).

    Only the committed state and the signer: no other pending transaction, so
    admission never depends on the order transactions reach the mempool.
    """

    state: State
    """The last committed state (read only)."""
    signer: Account
    params: Params
    time: int
    """Header time of the last committed block: expiry is judged against it."""
    chain_id: str
    verifier: crypto.Verifier
    """Strict signature checks with the application's memory of valid signatures."""


Admit = Callable[[AdmitContext, Any], int]
"""A message's admission rules: raise a typed error, or return the money it may debit or lock at most."""


def admit_freely(ctx: AdmitContext, msg: Msg) -> int:
    """Admission of a message that any authenticated signer may send and that moves none of its money."""
    return 0


def require_operator(signer: Account, action: str) -> None:
    # Rule: only operators (DSOs and LPDs) take part in governance.
    if not signer.is_operator:
        raise errors.NotAuthorised(f"only an operator may {action}")


def require_dso(signer: Account) -> None:
    # Rule: only a DSO registers and deactivates grid users and publishes grid fees.
    if signer.role != "dso":
        raise errors.NotAuthorised("only a DSO may do this")


# -- stateless check helpers (each raises a typed error with a clear log) ------
def require_amount(name: str, value: int, minimum: int = 1) -> None:
    # Exact type: bool is an int subclass in Python but not on the wire.
    if type(value) is not int:
        raise errors.MalformedBody(f"{name} must be an integer")
    if not minimum <= value <= codec.MAX_INT:
        raise errors.ValueOutOfRange(f"{name} must be between {minimum} and {codec.MAX_INT}, got {value}")


def require_name(name: str, value: str) -> None:
    if not NAME_PATTERN.fullmatch(value):
        raise errors.MalformedBody(
            f"{name} {value!r} must be 1-64 characters of letters, digits and . _ : - "
            "starting with a letter or digit"
        )


def require_account_id(name: str, value: str) -> None:
    if not crypto.is_account_id(value):
        raise errors.MalformedBody(f"{name} must be a 40-character lowercase hex account id")


def require_pubkey(name: str, value: bytes) -> None:
    """A key that signs something here (cheap: length, canonical encoding, not of small order)."""
    if len(value) != crypto.PUBKEY_BYTES:
        raise errors.MalformedBody(f"{name} must be a 32-byte Ed25519 public key")
    if not crypto.is_strong_point(value):
        raise errors.MalformedBody(f"{name} is a weak Ed25519 key (small order or non-canonical encoding)")


def require_new_key(name: str, value: bytes) -> None:
    """A key that enters the state (an account's, a meter's, a validator's): also a point on the curve."""
    require_pubkey(name, value)
    # Rule: no key enters the state that anyone could sign for, or that nobody can sign with.
    if not crypto.is_strong_pubkey(value):
        raise errors.MalformedBody(f"{name} is not an Ed25519 public key (not a point on the curve)")


def require_text(name: str, value: str, limit: int = MAX_TEXT) -> None:
    if len(value) > limit:
        raise errors.ValueOutOfRange(f"{name} is longer than {limit} characters")
