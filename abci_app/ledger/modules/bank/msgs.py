"""Messages of the bank module and their stateless checks."""

from __future__ import annotations

from typing import ClassVar

from abci_app.ledger.msg import Msg, require_account_id, require_amount, require_text
from abci_app.ledger.wire import I64


class Deposit(Msg, frozen=True):
    """An LPD credits an account against an off-chain payment it received."""

    TYPE: ClassVar[str] = "deposit"
    account: str
    """Account credited."""
    amount: I64
    """Money credited, in the smallest currency unit."""
    reference: str
    """The off-chain payment reference (for reconciliation)."""

    def validate_basic(self) -> None:
        require_account_id("account", self.account)
        require_amount("amount", self.amount)
        require_text("reference", self.reference)


class Withdraw(Msg, frozen=True):
    """An account asks an LPD to pay out part of its free balance off-chain."""

    TYPE: ClassVar[str] = "withdraw"
    amount: I64
    """Money taken from the free balance and removed from supply."""
    agent: str
    """The LPD that pays the amount out."""
    reference: str
    """Payout instruction reference (e.g. an IBAN alias); never the IBAN itself."""

    def validate_basic(self) -> None:
        require_amount("amount", self.amount)
        require_account_id("agent", self.agent)
        require_text("reference", self.reference)


class Transfer(Msg, frozen=True):
    """Move free money from the signer to another registered account."""

    TYPE: ClassVar[str] = "transfer"
    recipient: str
    """Account credited."""
    amount: I64
    """Money moved, in the smallest currency unit."""
    memo: str
    """Free text for the recipient."""

    def validate_basic(self) -> None:
        require_account_id("recipient", self.recipient)
        require_amount("amount", self.amount)
        require_text("memo", self.memo)
