"""Keys of the auth module.

    acct/<account id>            Account
    zone/<zone>/<account id>     b""  (participants of a zone)
"""

from __future__ import annotations

ACCOUNTS = b"acct/"
ZONES = b"zone/"


def account_key(account_id: str) -> bytes:
    return ACCOUNTS + account_id.encode()


def zone_prefix(zone: str) -> bytes:
    return ZONES + zone.encode() + b"/"


def zone_member_key(zone: str, account_id: str) -> bytes:
    return zone_prefix(zone) + account_id.encode()
