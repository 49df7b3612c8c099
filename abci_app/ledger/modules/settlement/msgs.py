"""The submit_readings message: signed meter readings, relayed by any account."""

from __future__ import annotations

from typing import ClassVar

from abci_app.ledger import codec, crypto, errors
from abci_app.ledger.msg import Msg, require_amount, require_name
from abci_app.ledger.wire import I64, Record

MAX_READINGS = 256
READING_DOMAIN = "gridledger/reading"


class Reading(Record, frozen=True):
    """One signed meter reading."""

    meter_id: str
    timestamp: I64
    """A slot end (unix seconds, a multiple of slot_length_s)."""
    import_register_wh: I64
    """Cumulative import register (OBIS 1.8.0), Wh."""
    export_register_wh: I64
    """Cumulative export register (OBIS 2.8.0), Wh."""
    signature: bytes
    """Ed25519 signature of the meter's key over ``reading_sign_bytes``."""


def reading_sign_bytes(chain_id: str, meter_id: str, timestamp: int, import_wh: int, export_wh: int) -> bytes:
    """What a meter signs: canonical msgpack of a domain tag, the chain and the values."""
    return codec.encode([READING_DOMAIN, chain_id, meter_id, timestamp, import_wh, export_wh])


class SubmitReadings(Msg, frozen=True):
    """Relay signed meter readings (any registered account may relay; the meter's signature counts)."""

    TYPE: ClassVar[str] = "submit_readings"
    readings: tuple[Reading, ...]
    """1-256 readings, applied in order."""

    def validate_basic(self) -> None:
        if not 1 <= len(self.readings) <= MAX_READINGS:
            raise errors.MalformedBody(f"between 1 and {MAX_READINGS} readings")
        for reading in self.readings:
            require_name("meter_id", reading.meter_id)
            require_amount("timestamp", reading.timestamp, minimum=0)
            require_amount("import_register_wh", reading.import_register_wh, minimum=0)
            require_amount("export_register_wh", reading.export_register_wh, minimum=0)
            if len(reading.signature) != crypto.SIGNATURE_BYTES:
                raise errors.MalformedBody("a reading signature is 64 bytes")
