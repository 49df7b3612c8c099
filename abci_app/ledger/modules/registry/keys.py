"""Keys of the registry module (participant accounts themselves live in the auth module).

    meter/<meter id>                 Meter
    meterkey/<meter pubkey hex>      meter id  (meter keys are unique)
    owns/<account id>/<meter id>     b""  (meters of a participant)
"""

from __future__ import annotations

METERS = b"meter/"
METER_KEYS = b"meterkey/"
OWNS = b"owns/"


def meter_key(meter_id: str) -> bytes:
    return METERS + meter_id.encode()


def meter_pubkey_key(pubkey: bytes) -> bytes:
    return METER_KEYS + pubkey.hex().encode()


def owner_prefix(account_id: str) -> bytes:
    return OWNS + account_id.encode() + b"/"


def owns_key(account_id: str, meter_id: str) -> bytes:
    return owner_prefix(account_id) + meter_id.encode()
