"""Admission and execution of deposit, withdraw and transfer."""

from __future__ import annotations

from abci_app.ledger import codec, errors
from abci_app.ledger.events import event
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.bank import keeper as bank
from abci_app.ledger.modules.bank.msgs import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.settlement.settle import repay_debt
from abci_app.ledger.msg import AdmitContext, TxContext


def authorise_deposit(signer: Account) -> None:
    # Rule: only an LPD, as settlement agent, issues money against payment.
    if signer.role != "lpd":
        raise errors.NotAuthorised("only an LPD may deposit")


# -- admission (CheckTx): the signer may send it, and the most it can take from the signer -------------
def admit_deposit(ctx: AdmitContext, msg: Deposit) -> int:
    authorise_deposit(ctx.signer)
    target = auth.get_account(ctx.state, msg.account)
    # Rule: a deposit that would overflow the committed balance or supply can never apply.
    if target is not None and target.balance > codec.MAX_INT - msg.amount:
        raise errors.ValueOutOfRange(f"balance of {msg.account} would exceed {codec.MAX_INT}")
    if bank.get_supply(ctx.state) > codec.MAX_INT - msg.amount:
        raise errors.ValueOutOfRange(f"money supply would exceed {codec.MAX_INT}")
    return 0


def admit_withdraw(ctx: AdmitContext, msg: Withdraw) -> int:
    return msg.amount


def admit_transfer(ctx: AdmitContext, msg: Transfer) -> int:
    return msg.amount


# -- execution (FinalizeBlock) ---------------------------------------------------------------------
def handle_deposit(ctx: TxContext, msg: Deposit) -> None:
    authorise_deposit(ctx.signer)
    target = auth.require_account(ctx.state, msg.account)
    # Rule: money goes only to active accounts.
    if not target.active:
        raise errors.InactiveAccount(f"account {msg.account} is deactivated")
    credited = bank.credit(ctx.state, msg.account, msg.amount)
    bank.change_supply(ctx.state, msg.amount)
    bank.journal(ctx.state, msg.account, ctx.time, ctx.height, "deposit", msg.amount, msg.reference)
    ctx.events.append(
        event("deposit", account=msg.account, agent=ctx.signer.id, amount=msg.amount, reference=msg.reference)
    )
    # A deposit repays settlement debt first (docs/settlement.md).
    repaid = repay_debt(ctx.state, credited, ctx.time, ctx.height)
    if repaid:
        ctx.events.append(event("debt.repaid", account=msg.account, amount=repaid))


def handle_withdraw(ctx: TxContext, msg: Withdraw) -> None:
    agent = auth.require_account(ctx.state, msg.agent)
    # Rule: only an LPD pays out.
    if agent.role != "lpd" or not agent.active:
        raise errors.NotAuthorised(f"agent {msg.agent} is not an active LPD")
    # Rule: only free money leaves (checked by debit).
    bank.debit(ctx.state, ctx.signer.id, msg.amount)
    bank.change_supply(ctx.state, -msg.amount)
    bank.journal(ctx.state, ctx.signer.id, ctx.time, ctx.height, "withdraw", -msg.amount, msg.reference)
    ctx.events.append(
        event("withdraw", account=ctx.signer.id, agent=msg.agent, amount=msg.amount, reference=msg.reference)
    )


def handle_transfer(ctx: TxContext, msg: Transfer) -> None:
    # Rule: a transfer moves money between two different accounts.
    if msg.recipient == ctx.signer.id:
        raise errors.SelfTransfer("sender and recipient are the same account")
    recipient = auth.require_account(ctx.state, msg.recipient)
    # Rule: the recipient is active.
    if not recipient.active:
        raise errors.InactiveAccount(f"recipient {msg.recipient} is deactivated")
    bank.debit(ctx.state, ctx.signer.id, msg.amount)
    bank.credit(ctx.state, msg.recipient, msg.amount)
    bank.journal(ctx.state, ctx.signer.id, ctx.time, ctx.height, "transfer_out", -msg.amount, msg.recipient)
    bank.journal(ctx.state, msg.recipient, ctx.time, ctx.height, "transfer_in", msg.amount, ctx.signer.id)
    ctx.events.append(event("transfer", sender=ctx.signer.id, recipient=msg.recipient, amount=msg.amount))
