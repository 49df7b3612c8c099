"""Money: deposits and withdrawals against off-chain payment, and transfers.

Only ``deposit`` and ``withdraw`` change the money supply; the LPDs act as the
settlement agents that take and make the off-chain payments.
"""

from __future__ import annotations

from typing import ClassVar

from abci_app.ledger import errors
from abci_app.ledger.events import event
from abci_app.ledger.modules.settlement import repay_debt
from abci_app.ledger.msg import Msg, TxContext, require_account_id, require_amount, require_text
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


def handle_deposit(ctx: TxContext, msg: Deposit) -> None:
    # Rule: only an LPD, as settlement agent, issues money against payment.
    if ctx.signer.role != "lpd":
        raise errors.NotAuthorised("only an LPD may deposit")
    target = ctx.state.require_account(msg.account)
    # Rule: money goes only to active accounts.
    if not target.active:
        raise errors.InactiveAccount(f"account {msg.account} is deactivated")
    credited = ctx.state.credit(msg.account, msg.amount)
    ctx.state.change_supply(msg.amount)
    ctx.state.journal(msg.account, ctx.time, ctx.height, "deposit", msg.amount, msg.reference)
    ctx.events.append(
        event("deposit", account=msg.account, agent=ctx.signer.id, amount=msg.amount, reference=msg.reference)
    )
    # A deposit repays settlement debt first (docs/settlement.md).
    repaid = repay_debt(ctx.state, credited, ctx.time, ctx.height)
    if repaid:
        ctx.events.append(event("debt.repaid", account=msg.account, amount=repaid))


def handle_withdraw(ctx: TxContext, msg: Withdraw) -> None:
    agent = ctx.state.require_account(msg.agent)
    # Rule: only an LPD pays out.
    if agent.role != "lpd" or not agent.active:
        raise errors.NotAuthorised(f"agent {msg.agent} is not an active LPD")
    # Rule: only free money leaves (checked by debit).
    ctx.state.debit(ctx.signer.id, msg.amount)
    ctx.state.change_supply(-msg.amount)
    ctx.state.journal(ctx.signer.id, ctx.time, ctx.height, "withdraw", -msg.amount, msg.reference)
    ctx.events.append(
        event("withdraw", account=ctx.signer.id, agent=msg.agent, amount=msg.amount, reference=msg.reference)
    )


def handle_transfer(ctx: TxContext, msg: Transfer) -> None:
    # Rule: a transfer moves money between two different accounts.
    if msg.recipient == ctx.signer.id:
        raise errors.SelfTransfer("sender and recipient are the same account")
    recipient = ctx.state.require_account(msg.recipient)
    # Rule: the recipient is active.
    if not recipient.active:
        raise errors.InactiveAccount(f"recipient {msg.recipient} is deactivated")
    ctx.state.debit(ctx.signer.id, msg.amount)
    ctx.state.credit(msg.recipient, msg.amount)
    ctx.state.journal(ctx.signer.id, ctx.time, ctx.height, "transfer_out", -msg.amount, msg.recipient)
    ctx.state.journal(msg.recipient, ctx.time, ctx.height, "transfer_in", msg.amount, ctx.signer.id)
    ctx.events.append(event("transfer", sender=ctx.signer.id, recipient=msg.recipient, amount=msg.amount))
