"""Keys of the bank module (balances live in the ``Account`` record of the auth module).

    supply                                     Supply (money issued by deposits minus withdrawals)
    jrnl/<account id>/<time:be64>/<seq:be64>   JournalEntry (statement lines)
    jrnl/next                                  be64: next journal sequence number
"""

from __future__ import annotations

from abci_app.ledger.state import be64

SUPPLY = b"supply"
JOURNAL_NEXT = b"jrnl/next"


def journal_prefix(account_id: str) -> bytes:
    return b"jrnl/" + account_id.encode() + b"/"


def journal_key(account_id: str, time: int, seq: int) -> bytes:
    return journal_prefix(account_id) + be64(time) + b"/" + be64(seq)
