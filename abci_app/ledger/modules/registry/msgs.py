"""Messages of the registry module and their stateless checks."""

from __future__ import annotations

from typing import ClassVar

from abci_app.ledger import errors
from abci_app.ledger.modules.auth.records import PARTICIPANT_ROLES
from abci_app.ledger.msg import Msg, require_account_id, require_amount, require_name, require_new_key
from abci_app.ledger.wire import I64

MAX_CAPACITY_W = 100_000_000  # 100 MW: far above any single grid connection


class RegisterParticipant(Msg, frozen=True):
    """A DSO admits a consumer, prosumer or producer of one of its zones."""

    TYPE: ClassVar[str] = "register_participant"
    pubkey: bytes
    """The participant's Ed25519 account key."""
    role: str
    """consumer | prosumer | producer."""
    zone: str
    """Grid zone the participant is connected in (served by the signing DSO)."""

    def validate_basic(self) -> None:
        require_new_key("pubkey", self.pubkey)
        if self.role not in PARTICIPANT_ROLES:
            raise errors.MalformedBody(f"role must be one of {', '.join(PARTICIPANT_ROLES)}")
        require_name("zone", self.zone)


class RegisterMeter(Msg, frozen=True):
    """A DSO registers a smart meter to one of its participants."""

    TYPE: ClassVar[str] = "register_meter"
    meter_id: str
    """Meter id, unique on the chain (e.g. the serial number)."""
    pubkey: bytes
    """The meter's own Ed25519 key for signed readings."""
    owner: str
    """Account id of the participant."""
    import_capacity_w: I64
    """Largest import power of the connection, W."""
    export_capacity_w: I64
    """Largest export power of the connection, W."""
    import_register_wh: I64
    """Import register (1.8.0) at installation, Wh."""
    export_register_wh: I64
    """Export register (2.8.0) at installation, Wh."""

    def validate_basic(self) -> None:
        require_name("meter_id", self.meter_id)
        require_new_key("pubkey", self.pubkey)
        require_account_id("owner", self.owner)
        require_amount("import_capacity_w", self.import_capacity_w, minimum=0)
        require_amount("export_capacity_w", self.export_capacity_w, minimum=0)
        if max(self.import_capacity_w, self.export_capacity_w) > MAX_CAPACITY_W:
            raise errors.ValueOutOfRange(f"meter capacity above {MAX_CAPACITY_W} W")
        if self.import_capacity_w == 0 and self.export_capacity_w == 0:
            raise errors.ValueOutOfRange("a meter needs import or export capacity")
        require_amount("import_register_wh", self.import_register_wh, minimum=0)
        require_amount("export_register_wh", self.export_register_wh, minimum=0)


class Deactivate(Msg, frozen=True):
    """A DSO deactivates one of its participants or meters."""

    TYPE: ClassVar[str] = "deactivate"
    kind: str
    """participant | meter."""
    target: str
    """Account id or meter id."""

    def validate_basic(self) -> None:
        if self.kind == "participant":
            require_account_id("target", self.target)
        elif self.kind == "meter":
            require_name("target", self.target)
        else:
            raise errors.MalformedBody("kind must be participant or meter")
