"""Records of the registry module."""

from __future__ import annotations

from abci_app.ledger.wire import I64, Record


class Meter(Record, frozen=True):
    """A smart meter with its own signing key, registered by a DSO to a participant."""

    id: str
    """Meter id chosen by the DSO (e.g. its serial number)."""
    pubkey: bytes
    """Ed25519 key the meter signs its readings with."""
    owner: str
    """Account id of the participant the meter belongs to."""
    dso: str
    """Account id of the registering DSO."""
    import_capacity_w: I64
    """Largest power the connection can draw from the grid, in W."""
    export_capacity_w: I64
    """Largest power the connection can feed into the grid, in W."""
    import_register_wh: I64
    """Cumulative import register (OBIS 1.8.0) at registration, in Wh."""
    export_register_wh: I64
    """Cumulative export register (OBIS 2.8.0) at registration, in Wh."""
    active: bool
    """Deactivated meters are ignored."""
    registered_at: I64
    """Block time (unix seconds) of registration."""
