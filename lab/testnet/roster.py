"""The roster TOML of a testnet: operators, participants, meters, parameters; and its genesis app_state."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from abci_app.ledger.modules.auth.records import OPERATOR_ROLES, PARTICIPANT_ROLES
from abci_app.ledger.msg import NAME_PATTERN
from lab.testnet.model import TestnetError
from node.client.keystore import NAME_PATTERN as KEY_NAME_PATTERN

# --- roster ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorSpec:
    name: str
    role: str
    zones: tuple[str, ...]
    power: int
    balance: int
    validator: bool
    """False: an operator without a node at genesis (it may join later by governance)."""


@dataclass(frozen=True)
class ParticipantSpec:
    name: str
    role: str
    zone: str
    balance: int


@dataclass(frozen=True)
class MeterSpec:
    id: str
    owner: str
    import_capacity_w: int
    export_capacity_w: int
    import_register_wh: int = 0
    export_register_wh: int = 0


@dataclass(frozen=True)
class Roster:
    chain_id: str
    params: dict[str, Any]
    operators: tuple[OperatorSpec, ...]
    participants: tuple[ParticipantSpec, ...]
    meters: tuple[MeterSpec, ...]
    grid_fees: tuple[dict[str, Any], ...]

    @property
    def validators(self) -> tuple[OperatorSpec, ...]:
        return tuple(op for op in self.operators if op.validator)

    def dso_of_zone(self, zone: str) -> str | None:
        return next((op.name for op in self.operators if op.role == "dso" and zone in op.zones), None)


def _require(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in entry:
        raise TestnetError(f"roster: {where} needs {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TestnetError(f"roster: {where}: {key} must be {kind.__name__}, not {value!r}")
    return value


def _optional(entry: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    return _require(entry, key, kind, where) if key in entry else default


def _key_name(name: str, where: str) -> str:
    """Roster names double as keyring names, so they follow the stricter key-name rule."""
    if KEY_NAME_PATTERN.fullmatch(name) is None:
        raise TestnetError(f"roster: {where}: name {name!r} must be 1-64 of a-z 0-9 . _ - (it names a key)")
    return name


def _operator(entry: dict[str, Any], index: int) -> OperatorSpec:
    where = f"operators[{index}]"
    name = _key_name(_require(entry, "name", str, where), where)
    role = _require(entry, "role", str, where)
    if role not in OPERATOR_ROLES:
        raise TestnetError(f"roster: operator {name}: role must be dso or lpd, not {role!r}")
    zones = tuple(_optional(entry, "zones", list, [], where))
    if role == "dso" and not zones:
        raise TestnetError(f"roster: DSO {name} serves no zones")
    if role == "lpd" and zones:
        raise TestnetError(f"roster: LPD {name} cannot serve zones")
    for zone in zones:
        if not isinstance(zone, str) or NAME_PATTERN.fullmatch(zone) is None:
            raise TestnetError(f"roster: operator {name}: bad zone {zone!r}")
    power = _optional(entry, "power", int, 10, where)
    if power < 1:
        raise TestnetError(f"roster: operator {name}: power must be at least 1")
    return OperatorSpec(name=name, role=role, zones=zones, power=power,
                        balance=_optional(entry, "balance", int, 0, where),
                        validator=_optional(entry, "validator", bool, True, where))


def _participant(entry: dict[str, Any], index: int) -> ParticipantSpec:
    where = f"participants[{index}]"
    name = _key_name(_require(entry, "name", str, where), where)
    role = _require(entry, "role", str, where)
    if role not in PARTICIPANT_ROLES:
        raise TestnetError(f"roster: participant {name}: role must be one of {', '.join(PARTICIPANT_ROLES)}")
    return ParticipantSpec(name=name, role=role, zone=_require(entry, "zone", str, where),
                           balance=_optional(entry, "balance", int, 0, where))


def _meter(entry: dict[str, Any], index: int) -> MeterSpec:
    where = f"meters[{index}]"
    return MeterSpec(
        id=_key_name(_require(entry, "id", str, where), where), owner=_require(entry, "owner", str, where),
        import_capacity_w=_optional(entry, "import_capacity_w", int, 0, where),
        export_capacity_w=_optional(entry, "export_capacity_w", int, 0, where),
        import_register_wh=_optional(entry, "import_register_wh", int, 0, where),
        export_register_wh=_optional(entry, "export_register_wh", int, 0, where),
    )


def parse_roster(doc: dict[str, Any]) -> Roster:
    """Check a roster's structure and cross-references; every problem names its entry."""
    known = {"chain_id", "params", "operators", "participants", "meters", "grid_fees"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise TestnetError(f"roster: unknown keys {unknown} (known: {', '.join(sorted(known))})")
    chain_id = _require(doc, "chain_id", str, "the roster")
    operators = tuple(_operator(e, i) for i, e in enumerate(doc.get("operators", [])))
    participants = tuple(_participant(e, i) for i, e in enumerate(doc.get("participants", [])))
    meters = tuple(_meter(e, i) for i, e in enumerate(doc.get("meters", [])))
    roster = Roster(chain_id=chain_id, params=dict(doc.get("params", {})), operators=operators,
                    participants=participants, meters=meters, grid_fees=tuple(doc.get("grid_fees", [])))
    _check_references(roster)
    return roster


def _check_references(roster: Roster) -> None:
    if not roster.validators:
        raise TestnetError("roster: no operator runs a validator (validator = true)")
    names = [op.name for op in roster.operators] + [p.name for p in roster.participants] + \
        [m.id for m in roster.meters]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TestnetError(f"roster: names used twice (they name keys): {duplicates}")
    for participant in roster.participants:
        if roster.dso_of_zone(participant.zone) is None:
            raise TestnetError(f"roster: participant {participant.name}: no DSO serves zone {participant.zone!r}")
    participant_names = {p.name for p in roster.participants}
    for meter in roster.meters:
        if meter.owner not in participant_names:
            raise TestnetError(f"roster: meter {meter.id}: owner {meter.owner!r} is not a participant")
    operator_names = {op.name for op in roster.operators}
    for fee in roster.grid_fees:
        if fee.get("dso") not in operator_names:
            raise TestnetError(f"roster: grid fee {fee}: dso must name an operator")


def with_validators(roster: Roster, names: tuple[str, ...]) -> Roster:
    """The roster with exactly the operators ``names`` running nodes (e.g. one, for a single-node chain).

    The others keep their role, zones and governance power; they run no node at genesis, as if the roster
    said ``validator = false`` for them.
    """
    if not names:
        return roster
    known = {op.name for op in roster.operators}
    unknown = sorted(set(names) - known)
    if unknown:
        raise TestnetError(f"--validator {', '.join(unknown)}: not an operator of the roster "
                           f"(operators: {', '.join(sorted(known))})")
    chosen = set(names)
    return replace(roster, operators=tuple(replace(op, validator=op.name in chosen) for op in roster.operators))


def load_roster(path: Path) -> Roster:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TestnetError(f"roster {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise TestnetError(f"roster {path} is not valid TOML: {exc}") from None
    return parse_roster(doc)

def app_state(roster: Roster, pubkeys: dict[str, str], consensus_keys: dict[str, str]) -> dict[str, Any]:
    """The genesis app_state (docs/genesis.md) of a roster with generated keys."""
    operators = []
    for op in roster.operators:
        entry: dict[str, Any] = {"name": op.name, "role": op.role, "pubkey": pubkeys[op.name],
                                 "zones": list(op.zones), "power": op.power, "balance": op.balance}
        if op.name in consensus_keys:
            entry["consensus_pubkey"] = consensus_keys[op.name]
        operators.append(entry)
    state: dict[str, Any] = {
        "params": dict(roster.params),
        "operators": operators,
        "participants": [{"pubkey": pubkeys[p.name], "role": p.role, "zone": p.zone,
                          "dso": roster.dso_of_zone(p.zone), "balance": p.balance} for p in roster.participants],
        "meters": [{"id": m.id, "pubkey": pubkeys[m.id], "owner_pubkey": pubkeys[m.owner],
                    "import_capacity_w": m.import_capacity_w, "export_capacity_w": m.export_capacity_w,
                    "import_register_wh": m.import_register_wh, "export_register_wh": m.export_register_wh}
                   for m in roster.meters],
    }
    if roster.grid_fees:
        state["grid_fees"] = [dict(fee) for fee in roster.grid_fees]
    return state
