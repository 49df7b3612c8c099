"""Names for pseudonymous account ids, from an operator's roster file.

On chain a participant is only an account id (hex of the first 20 bytes of
SHA-256 of its public key). Operators carry their names on chain
(``/operators``); participants' names live with their DSO. The dashboard takes
them from a roster in the format of ``config/testnet-4.toml``
(docs/operators.md, "Roster"):

* a participant entry with ``account = "<40 hex>"`` or ``pubkey = "<64 hex>"``
  names that account directly;
* otherwise entries are matched, in file order, to the participants of the
  chain's genesis (the ``genesis`` RPC), which ``gridledger testnet init``
  writes in roster order; an entry whose role or zone differs from its genesis
  counterpart names nothing and is reported.

Names are for display only; nothing on chain depends on them.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abci_app.ledger.crypto import account_id, is_account_id

log = logging.getLogger("gridledger.dashboard.names")


class RosterError(Exception):
    """The roster file cannot be read or is not a roster."""


@dataclass(frozen=True)
class RosterParticipant:
    name: str
    role: str
    zone: str
    account: str | None
    """Given in the file (``account`` or derived from ``pubkey``); None: matched against genesis."""


@dataclass(frozen=True)
class Roster:
    participants: tuple[RosterParticipant, ...]


@dataclass
class Names:
    by_account: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def name(self, account: str) -> str | None:
        return self.by_account.get(account)

    def label(self, account: str) -> str:
        """A participant's name, else its id shortened for tables (the full id is in the title)."""
        return self.by_account.get(account) or f"{account[:8]}…"

    def account_of(self, name_or_id: str) -> str | None:
        """The account id a name (or an id) stands for."""
        if is_account_id(name_or_id):
            return name_or_id
        return next((account for account, name in self.by_account.items() if name == name_or_id), None)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise RosterError(f"roster: {where} needs a text {key!r}")
    return value


def _participant(entry: Any, index: int) -> RosterParticipant:
    where = f"participant {index + 1}"
    if not isinstance(entry, dict):
        raise RosterError(f"roster: {where} is not a table")
    name = _text(entry, "name", where)
    account: str | None = None
    if "account" in entry:
        account = _text(entry, "account", where)
        if not is_account_id(account):
            raise RosterError(f"roster: {where} ({name}): account must be 40 lowercase hex digits")
    elif "pubkey" in entry:
        text = _text(entry, "pubkey", where)
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise RosterError(f"roster: {where} ({name}): pubkey must be 64 hex digits")
        account = account_id(raw)
    return RosterParticipant(name=name, role=str(entry.get("role", "")), zone=str(entry.get("zone", "")),
                             account=account)


def load_roster(path: Path) -> Roster:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RosterError(f"cannot read roster {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RosterError(f"roster {path} is not valid TOML: {exc}") from exc
    entries = doc.get("participants", [])
    if not isinstance(entries, list):
        raise RosterError(f"roster {path}: participants must be an array of tables ([[participants]])")
    return Roster(participants=tuple(_participant(entry, i) for i, entry in enumerate(entries)))


def resolve(roster: Roster, genesis_participants: Sequence[Mapping[str, Any]] | None) -> Names:
    """Map the roster's names onto account ids (see the module docstring)."""
    names = Names()
    genesis = list(genesis_participants or [])
    for index, entry in enumerate(roster.participants):
        account = entry.account
        if account is None:
            account = _match_genesis(entry, index, genesis, names.warnings)
        if account is not None:
            names.by_account[account] = entry.name
    return names


def _match_genesis(entry: RosterParticipant, index: int, genesis: list[Mapping[str, Any]],
                   warnings: list[str]) -> str | None:
    if index >= len(genesis):
        warnings.append(f"roster participant {entry.name!r} has no genesis participant at position {index + 1} "
                        "and no account or pubkey: it stays unnamed")
        return None
    counterpart = genesis[index]
    for key in ("role", "zone"):
        if getattr(entry, key) and counterpart.get(key) != getattr(entry, key):
            warnings.append(f"roster participant {entry.name!r} ({key} {getattr(entry, key)!r}) does not match "
                            f"genesis participant {index + 1} ({key} {counterpart.get(key)!r}): it stays unnamed")
            return None
    try:
        return account_id(bytes.fromhex(str(counterpart["pubkey"])))
    except (KeyError, ValueError):
        warnings.append(f"genesis participant {index + 1} has no valid pubkey: {entry.name!r} stays unnamed")
        return None
