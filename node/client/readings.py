"""Meter readings as a smart meter signs them, and the readings CSV a relayer submits (docs/settlement.md)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.settlement.msgs import Reading, reading_sign_bytes
from node.client.units import UnitError, parse_energy, parse_time

READINGS_COLUMNS = ("meter", "timestamp", "import_wh", "export_wh")
"""Required columns of a readings CSV; an optional ``meter_key`` names the meter's key (default: the meter id)."""


@dataclass(frozen=True)
class UnsignedReading:
    """A meter's register values at a slot end, before the meter signs them."""

    meter_id: str
    timestamp: int
    import_register_wh: int
    export_register_wh: int
    meter_key: str
    """Keyring name of the meter's key."""


def sign_reading(chain_id: str, reading: UnsignedReading, key: SigningKey) -> Reading:
    """The meter's signature over ``settlement.reading_sign_bytes``: what a smart meter itself would produce."""
    signed = reading_sign_bytes(chain_id, reading.meter_id, reading.timestamp, reading.import_register_wh,
                                reading.export_register_wh)
    return Reading(meter_id=reading.meter_id, timestamp=reading.timestamp,
                   import_register_wh=reading.import_register_wh, export_register_wh=reading.export_register_wh,
                   signature=key.sign(signed))


def parse_wh(text: str) -> int:
    """A register value in a column named ``*_wh``: plain Wh (``1234``) or with a unit (``1.234kWh``)."""
    stripped = text.strip()
    return int(stripped) if stripped.isascii() and stripped.isdigit() else parse_energy(stripped)


def read_readings_csv(path: Path) -> list[UnsignedReading]:
    """Rows ``meter,timestamp,import_wh,export_wh[,meter_key]`` in the order they are to be applied."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames or []
    except OSError as exc:
        raise UnitError(f"{path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnitError(f"{path} is not a UTF-8 CSV file: {exc}") from None
    missing = [column for column in READINGS_COLUMNS if column not in header]
    if missing:
        raise UnitError(f"{path}: the header lacks {', '.join(missing)} "
                        f"(columns: {','.join(READINGS_COLUMNS)}[,meter_key])")
    if not rows:
        raise UnitError(f"{path} has no readings")
    readings = []
    for line, row in enumerate(rows, start=2):
        try:
            readings.append(_unsigned_reading(row))
        except UnitError as exc:
            raise UnitError(f"{path} line {line}: {exc}") from None
    return readings


def _unsigned_reading(row: dict[str, str | None]) -> UnsignedReading:
    meter_id = (row["meter"] or "").strip()
    if not meter_id:
        raise UnitError("empty meter id")
    return UnsignedReading(
        meter_id=meter_id, timestamp=parse_time(row["timestamp"] or ""),
        import_register_wh=parse_wh(row["import_wh"] or ""), export_register_wh=parse_wh(row["export_wh"] or ""),
        meter_key=(row.get("meter_key") or "").strip() or meter_id,
    )
