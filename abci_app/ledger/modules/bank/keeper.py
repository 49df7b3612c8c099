"""Balances, locks, supply and the journal: every money movement goes through these functions."""

from __future__ import annotations

from msgspec.structs import replace

from abci_app.ledger import codec, errors
from abci_app.ledger.modules.auth.keeper import put_account, require_account
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.bank.keys import JOURNAL_NEXT, SUPPLY, journal_key, journal_prefix
from abci_app.ledger.modules.bank.records import JournalEntry, Supply
from abci_app.ledger.state import State, be64, unbe64


def credit(state: State, account_id: str, amount: int) -> Account:
    """Add ``amount`` to a balance."""
    account = require_account(state, account_id)
    # Rule: balances stay within the signed 64-bit range every client can represent.
    if account.balance > codec.MAX_INT - amount:
        raise errors.ValueOutOfRange(f"balance of {account_id} would exceed {codec.MAX_INT}")
    account = replace(account, balance=account.balance + amount)
    put_account(state, account)
    return account


def debit(state: State, account_id: str, amount: int) -> Account:
    """Take ``amount`` from the free balance."""
    account = require_account(state, account_id)
    # Rule: only free money (balance minus locks) can leave an account.
    if account.free < amount:
        raise errors.InsufficientFunds(f"account {account_id} has {account.free} free, {amount} needed")
    account = replace(account, balance=account.balance - amount)
    put_account(state, account)
    return account


def lock(state: State, account_id: str, amount: int) -> Account:
    """Hold ``amount`` of the free balance for an obligation."""
    account = require_account(state, account_id)
    # Rule: nothing is locked that is not free.
    if account.free < amount:
        raise errors.InsufficientFunds(f"account {account_id} has {account.free} free, {amount} needed")
    account = replace(account, locked=account.locked + amount)
    put_account(state, account)
    return account


def unlock(state: State, account_id: str, amount: int) -> Account:
    """Release ``amount`` of locked money back to the free balance."""
    account = require_account(state, account_id)
    if not 0 <= amount <= account.locked:
        raise errors.InvariantViolated(f"unlock {amount} of {account.locked} locked for {account_id}")
    account = replace(account, locked=account.locked - amount)
    put_account(state, account)
    return account


def get_supply(state: State) -> int:
    supply = state.get(SUPPLY, Supply)
    return supply.total if supply is not None else 0


def change_supply(state: State, delta: int) -> None:
    total = get_supply(state) + delta
    # Rule: the money supply stays within the signed 64-bit range.
    if total > codec.MAX_INT:
        raise errors.ValueOutOfRange(f"money supply would exceed {codec.MAX_INT}")
    state.put(SUPPLY, Supply(total))


def journal(state: State, account_id: str, time: int, height: int, kind: str, amount: int, reference: str) -> None:
    """Append a statement line (``amount`` signed: + credit, - debit) for ``account_id``."""
    seq_raw = state.kv.get(JOURNAL_NEXT)
    seq = unbe64(seq_raw) if seq_raw is not None else 1
    state.kv.set(JOURNAL_NEXT, be64(seq + 1))
    entry = JournalEntry(seq=seq, time=time, height=height, kind=kind, amount=amount, reference=reference)
    state.put(journal_key(account_id, time, seq), entry)


def journal_between(state: State, account_id: str, start: int, end: int, limit: int) -> list[JournalEntry]:
    """Statement lines with ``start <= time < end``, oldest first, at most ``limit``."""
    prefix = journal_prefix(account_id)
    out: list[JournalEntry] = []
    for key, _ in state.kv.iterate(prefix + be64(start), prefix + be64(end)):
        entry = state.get(key, JournalEntry)
        if entry is not None:
            out.append(entry)
        if len(out) == limit:
            break
    return out
