"""Names for account ids, both ways: the keyring's key names and the chain's operator names.

People know accounts by name (``alice``, ``dso-a``); the chain knows 40-hex ids.
Input takes an id, a key name of the keyring, or an operator name the chain
lists (``query operators``), in that order. Tables show the name next to an id
wherever one of the two knows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abci_app.ledger.crypto import account_id
from node.client.chain import NodeClient
from node.client.keystore import Keystore, KeystoreError, UnknownAccount, resolve_account
from node.rpc import NodeUnreachable, RpcError


def resolve(text: str, keyring_dir: Path, client: NodeClient | None = None) -> str:
    """An account id from an id, a key name, or (asking ``client``'s chain) an operator name."""
    try:
        return resolve_account(text, keyring_dir)
    except UnknownAccount:
        if client is None:
            raise
        for operator in client.query("/operators")["operators"]:
            if operator.get("name") == text:
                found: str = operator["account"]
                return found
        raise UnknownAccount(f"{text!r} is neither a 40-hex account id, a key in {keyring_dir}, nor an operator "
                             f"of the chain (gridledger keys list; gridledger query operators)") from None


def account_names(keyring_dir: Path, client: NodeClient | None = None) -> dict[str, str]:
    """Account id -> name: the keyring's account keys, and the chain's operators (their names win)."""
    names: dict[str, str] = {}
    try:
        keys, _problems = Keystore(keyring_dir.expanduser()).scan()
    except (KeystoreError, OSError):
        keys = []
    for key in keys:
        if key.kind == "account":
            names[key.account or account_id(bytes.fromhex(key.pubkey))] = key.name
    if client is not None:
        try:
            operators = client.query("/operators")["operators"]
        except (NodeUnreachable, RpcError):
            operators = []
        names.update({op["account"]: op["name"] for op in operators if op.get("account")})
    return names


def with_names(records: list[dict[str, Any]], fields: tuple[str, ...], names: dict[str, str]) -> list[dict[str, Any]]:
    """Add ``<field>_name`` next to every id field: the name, or the id where no name is known (ids stay)."""
    for record in records:
        for field in fields:
            value = record.get(field)
            if isinstance(value, str):
                record[f"{field}_name"] = names.get(value, value)
    return records
