"""`gridledger tx ...`: build, sign, broadcast (or sign offline) ledger transactions.

Every command shares the signing options (added by ``tx_command``): ``--from``,
``--keyring-dir``, ``--passphrase-file``, ``--node``, ``--chain-id``, ``--nonce``,
``--wait``, ``--sign-only --out FILE``, ``--dry-run``, ``--output``.
Exit codes: 0 accepted (and committed with --wait), 1 rejected, 2 usage or
input error, 3 node unreachable or timed out.
"""

from __future__ import annotations

import base64
import csv
import functools
import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from abci_app.ledger import codec
from abci_app.ledger.crypto import SigningKey, account_id
from abci_app.ledger.modules.bank import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.gov import CastVote, ProposeParams, ProposeValidator
from abci_app.ledger.modules.gov.records import ParamChange, ValidatorChange
from abci_app.ledger.modules.market.msgs import CancelOrder, FeeEntry, PlaceOrder, SetGridFees
from abci_app.ledger.modules.registry import Deactivate, RegisterMeter, RegisterParticipant
from abci_app.ledger.modules.settlement.msgs import MAX_READINGS, Reading, SubmitReadings, reading_sign_bytes
from abci_app.ledger.msg import Msg
from abci_app.ledger.tx import encode_tx
from abci_app.ledger.wire import plain
from cli.client import DEFAULT_NODE, ChainInfo, NodeClient
from cli.keys import DEFAULT_KEYRING, KEYRING_ENV, Format, load_key, user_errors
from cli.output import TX_REJECTED, Output, fail, note
from node.client.keystore import Keystore, KeystoreError
from node.client.units import UnitError, parse_energy, parse_money, parse_power, parse_price, parse_time
from node.rpc import tx_hash

tx_app = typer.Typer(help="Sign and send transactions (or sign offline).", no_args_is_help=True)
participant_app = typer.Typer(help="DSO: register or deactivate participants.", no_args_is_help=True)
meter_app = typer.Typer(help="DSO: register or deactivate smart meters.", no_args_is_help=True)
gov_app = typer.Typer(help="Operators: propose parameter changes and vote.", no_args_is_help=True)
order_app = typer.Typer(help="Participants: place and cancel energy orders.", no_args_is_help=True)
fees_app = typer.Typer(help="DSO: publish grid fee components.", no_args_is_help=True)
tx_app.add_typer(participant_app, name="participant")
tx_app.add_typer(meter_app, name="meter")
tx_app.add_typer(gov_app, name="gov")
tx_app.add_typer(order_app, name="order")
tx_app.add_typer(fees_app, name="grid-fees")

OFFLINE_DEFAULT = ChainInfo(chain_id="", currency="EUR", currency_exponent=6)


@dataclass(frozen=True)
class BuildContext:
    """What a message builder may use: chain facts and the keyring for name lookups."""

    chain: ChainInfo
    keyring_dir: Path

    def money(self, text: str) -> int:
        return parse_money(text, self.chain.currency, self.chain.currency_exponent)

    def account(self, text: str) -> str:
        return resolve_account(text, self.keyring_dir)

    def pubkey(self, text: str) -> bytes:
        return resolve_pubkey(text, self.keyring_dir)

    def price(self, text: str) -> int:
        return parse_price(text, self.chain.currency, self.chain.currency_exponent)


@dataclass(frozen=True)
class TxOptions:
    from_key: str
    keyring_dir: Path
    passphrase_file: Path | None
    node: str
    chain_id: str | None
    nonce: int | None
    wait: bool
    timeout: float
    sign_only: bool
    out: Path | None
    dry_run: bool
    output: Format


_COMMON: list[inspect.Parameter] = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in (
        ("from_key", Annotated[str, typer.Option("--from", help="Name of the signing key in the keyring.")], ...),
        ("keyring_dir", Annotated[Path, typer.Option("--keyring-dir", envvar=KEYRING_ENV,
                                                     help="Directory of the encrypted keys.")], DEFAULT_KEYRING),
        ("passphrase_file", Annotated[Path | None, typer.Option(
            "--passphrase-file", metavar="FILE", help="Passphrase file (else $GRIDLEDGER_PASSPHRASE, else ask).")],
         None),
        ("node", Annotated[str, typer.Option("--node", envvar="GRIDLEDGER_NODE", help="CometBFT RPC URL.")],
         DEFAULT_NODE),
        ("chain_id", Annotated[str | None, typer.Option("--chain-id", help="Chain id (default: from the node).")],
         None),
        ("nonce", Annotated[int | None, typer.Option("--nonce", min=1, help="Nonce (default: from the node).")],
         None),
        ("wait", Annotated[bool, typer.Option("--wait", help="Wait for the commit; print the block result.")], False),
        ("timeout", Annotated[float, typer.Option("--timeout", help="Seconds --wait waits for the commit.")], 30.0),
        ("sign_only", Annotated[bool, typer.Option("--sign-only", help="Sign offline; write the tx to --out.")],
         False),
        ("out", Annotated[Path | None, typer.Option("--out", help="File for --sign-only.")], None),
        ("dry_run", Annotated[bool, typer.Option("--dry-run", help="Print the decoded tx; send nothing.")], False),
        ("output", Annotated[Format, typer.Option("--output", "-o", help="Result format on stdout.")], Format.table),
    )
]
_COMMON_NAMES = [p.name for p in _COMMON]


def tx_command(app: typer.Typer, name: str) -> Callable[[Callable[..., Msg]], Callable[..., Msg]]:
    """Register ``build(ctx, **args) -> Msg`` as a command with the shared signing options."""

    def register(build: Callable[..., Msg]) -> Callable[..., Msg]:
        # Annotations are strings here (postponed evaluation); typer needs the objects.
        hints = typing.get_type_hints(build, include_extras=True)
        own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(build).parameters.values()
               if p.name != "ctx"]

        @functools.wraps(build)
        def command(**kwargs: Any) -> None:
            opts = TxOptions(**{key: kwargs.pop(key) for key in _COMMON_NAMES})
            send(opts, lambda ctx: build(ctx, **kwargs))

        command.__signature__ = inspect.Signature(own + _COMMON)  # type: ignore[attr-defined]
        app.command(name)(command)
        return build

    return register


def send(opts: TxOptions, build: Callable[[BuildContext], Msg]) -> None:
    """Sign the message and do what the options ask: dry-run, sign-only, broadcast, wait."""
    out = Output(opts.output.value)
    if opts.sign_only and opts.out is None:
        fail("--sign-only needs --out FILE")
    offline = opts.sign_only or opts.dry_run
    if offline and (opts.chain_id is None or opts.nonce is None):
        fail("offline signing needs --chain-id and --nonce (the node is not asked)")
    client = NodeClient(opts.node)
    chain = OFFLINE_DEFAULT if offline else client.chain_info()
    if offline:
        note("offline: amounts are read in EUR with 6 decimals (the default chain currency)")
    try:
        msg = build(BuildContext(chain, opts.keyring_dir))
    except UnitError as exc:
        fail(str(exc))
    with user_errors():
        key = load_key(opts.from_key, opts.keyring_dir, opts.passphrase_file)
    chain_id = opts.chain_id or chain.chain_id
    nonce = opts.nonce if opts.nonce is not None else client.next_nonce(key.account)
    raw = encode_tx(chain_id, msg, key, nonce)
    summary = describe(raw, msg, key, chain_id, nonce)
    if opts.dry_run:
        out.record(summary, title="transaction (not sent)")
        return
    if opts.sign_only:
        assert opts.out is not None
        opts.out.write_text(json.dumps({**summary, "tx_base64": base64.b64encode(raw).decode()}, indent=2) + "\n")
        note(f"signed transaction written to {opts.out}; send it with `gridledger tx broadcast {opts.out}`")
        out.record({"hash": summary["hash"], "file": str(opts.out)})
        return
    broadcast(client, raw, out, opts.wait, opts.timeout)


def describe(raw: bytes, msg: Msg, key: SigningKey, chain_id: str, nonce: int) -> dict[str, Any]:
    body = plain(msg)
    return {"hash": tx_hash(raw), "type": msg.TYPE, "chain_id": chain_id, "signer": key.account,
            "nonce": nonce, "body": body, "bytes": len(raw)}


def broadcast(client: NodeClient, raw: bytes, out: Output, wait: bool, timeout: float) -> None:
    digest = tx_hash(raw)
    checked = client.broadcast(raw)
    code = int(checked.get("code", 0))
    result: dict[str, Any] = {"hash": digest, "check_code": code, "check_log": checked.get("log", "")}
    if code != 0 or not wait:
        out.record(result)
        if code != 0:
            raise typer.Exit(TX_REJECTED)
        return
    committed = client.wait(digest, timeout)
    tx_result = committed["tx_result"]
    result.update(height=int(committed["height"]), code=int(tx_result.get("code", 0)), log=tx_result.get("log", ""),
                  events=[{"type": e["type"], **{a["key"]: a["value"] for a in e.get("attributes", [])}}
                          for e in tx_result.get("events", [])])
    out.record(result)
    if result["code"] != 0:
        raise typer.Exit(TX_REJECTED)


def resolve_account(text: str, keyring_dir: Path) -> str:
    """An account id, or the account of a key in the keyring (no passphrase needed)."""
    if len(text) == 40 and all(c in "0123456789abcdef" for c in text):
        return text
    try:
        info = Keystore(keyring_dir.expanduser()).show(text)
    except KeystoreError:
        raise UnitError(f"{text!r} is neither a 40-hex account id nor a key in {keyring_dir}") from None
    return account_id(bytes.fromhex(info.pubkey))


def resolve_pubkey(text: str, keyring_dir: Path) -> bytes:
    """A 64-hex public key, or the public key of a key in the keyring."""
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return bytes.fromhex(text)
    try:
        return bytes.fromhex(Keystore(keyring_dir.expanduser()).show(text).pubkey)
    except KeystoreError:
        raise UnitError(f"{text!r} is neither a 64-hex public key nor a key in {keyring_dir}") from None




# -- commands -------------------------------------------------------------------------
@tx_command(tx_app, "transfer")
def transfer(ctx: BuildContext, recipient: Annotated[str, typer.Argument(help="Account id or key name.")],
             amount: Annotated[str, typer.Argument(help="Amount, e.g. 12.50EUR.")],
             memo: Annotated[str, typer.Option(help="Note for the recipient.")] = "") -> Msg:
    """Send money to another account.

    Example: gridledger tx transfer bob 12.50EUR --from alice --wait
    """
    return Transfer(recipient=ctx.account(recipient),
                    amount=ctx.money(amount), memo=memo)


@tx_command(tx_app, "deposit")
def deposit(ctx: BuildContext, account: Annotated[str, typer.Argument(help="Account id or key name credited.")],
            amount: Annotated[str, typer.Argument(help="Amount, e.g. 100EUR.")],
            reference: Annotated[str, typer.Option(help="Off-chain payment reference.")] = "") -> Msg:
    """LPD: credit an account against an off-chain payment received.

    Example: gridledger tx deposit alice 100EUR --reference SEPA-4711 --from lpd
    """
    return Deposit(account=ctx.account(account),
                   amount=ctx.money(amount), reference=reference)


@tx_command(tx_app, "withdraw")
def withdraw(ctx: BuildContext, amount: Annotated[str, typer.Argument(help="Amount, e.g. 20EUR.")],
             agent: Annotated[str, typer.Option(help="LPD (account id or key name) that pays out.")],
             reference: Annotated[str, typer.Option(help="Payout instruction reference.")] = "") -> Msg:
    """Ask an LPD to pay part of the free balance out off-chain.

    Example: gridledger tx withdraw 20EUR --agent lpd --from alice
    """
    return Withdraw(amount=ctx.money(amount),
                    agent=ctx.account(agent), reference=reference)


@tx_command(participant_app, "register")
def participant_register(
    ctx: BuildContext,
    pubkey: Annotated[str, typer.Argument(help="Participant's public key (64 hex) or key name.")],
    role: Annotated[str, typer.Option(help="consumer | prosumer | producer.")],
    zone: Annotated[str, typer.Option(help="Grid zone served by the signing DSO.")],
) -> Msg:
    """DSO: register a participant in one of its zones.

    Example: gridledger tx participant register carol --role consumer --zone zone-a --from dso
    """
    return RegisterParticipant(pubkey=ctx.pubkey(pubkey), role=role, zone=zone)


@tx_command(participant_app, "deactivate")
def participant_deactivate(ctx: BuildContext,
                           account: Annotated[str, typer.Argument(help="Account id or key name.")]) -> Msg:
    """DSO: deactivate one of its participants (it can still withdraw).

    Example: gridledger tx participant deactivate carol --from dso
    """
    return Deactivate(kind="participant", target=ctx.account(account))


@tx_command(meter_app, "register")
def meter_register(
    ctx: BuildContext,
    meter_id: Annotated[str, typer.Argument(help="Meter id, e.g. its serial number.")],
    pubkey: Annotated[str, typer.Option(help="Meter public key (64 hex) or meter key name.")],
    owner: Annotated[str, typer.Option(help="Participant (account id or key name).")],
    import_capacity: Annotated[str, typer.Option(help="Import capacity, e.g. 11kW.")] = "0W",
    export_capacity: Annotated[str, typer.Option(help="Export capacity, e.g. 8kW.")] = "0W",
    import_register: Annotated[str, typer.Option(help="Import register at installation, e.g. 0Wh.")] = "0Wh",
    export_register: Annotated[str, typer.Option(help="Export register at installation.")] = "0Wh",
) -> Msg:
    """DSO: register a smart meter to one of its participants.

    Example: gridledger tx meter register m-001 --pubkey m-001 --owner alice --export-capacity 8kW --from dso
    """
    return RegisterMeter(
        meter_id=meter_id, pubkey=ctx.pubkey(pubkey), owner=ctx.account(owner),
        import_capacity_w=parse_power(import_capacity), export_capacity_w=parse_power(export_capacity),
        import_register_wh=parse_energy(import_register), export_register_wh=parse_energy(export_register),
    )


@tx_command(meter_app, "deactivate")
def meter_deactivate(ctx: BuildContext, meter_id: Annotated[str, typer.Argument(help="Meter id.")]) -> Msg:
    """DSO: deactivate one of its meters.

    Example: gridledger tx meter deactivate m-001 --from dso
    """
    return Deactivate(kind="meter", target=meter_id)


@tx_command(gov_app, "propose-params")
def propose_params(
    ctx: BuildContext,
    changes: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs (integers).")],
    description: Annotated[str, typer.Option(help="Why; shown to voters.")] = "",
) -> Msg:
    """Operator: propose new parameter values (pass with > 2/3 of operator power).

    Example: gridledger tx gov propose-params voting_period_s=3600 --description "faster votes" --from dso
    """
    parsed = []
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise UnitError(f"{change!r}: write NAME=INTEGER")
        parsed.append(ParamChange(name=name, value=int(value)))
    return ProposeParams(changes=tuple(parsed), description=description)


@tx_command(gov_app, "propose-validator")
def propose_validator(
    ctx: BuildContext,
    action: Annotated[str, typer.Argument(help="add | remove | power.")],
    name: Annotated[str, typer.Argument(help="Operator name (new for add, a current validator otherwise).")],
    role: Annotated[str, typer.Option(help="add: dso | lpd.")] = "",
    account_pubkey: Annotated[str, typer.Option(help="add: operator account key (64 hex) or key name.")] = "",
    consensus_pubkey: Annotated[str, typer.Option(
        help="add: validator consensus key, base64 as in priv_validator_key.json (see `gridledger node init`).")] = "",
    zones: Annotated[str, typer.Option(help="add, DSO: zones served, comma-separated.")] = "",
    power: Annotated[int, typer.Option(help="add, power: voting power.", min=0)] = 0,
    description: Annotated[str, typer.Option(help="Why; shown to voters.")] = "",
) -> Msg:
    """Operator: propose adding a DSO/LPD validator, removing one, or changing its power.

    Example: gridledger tx gov propose-validator add dso-east --role dso --account-pubkey dso-east
    --consensus-pubkey BASE64 --zones zone-e --power 10 --from dso
    """
    consensus = b""
    if consensus_pubkey:
        try:
            consensus = base64.b64decode(consensus_pubkey, validate=True)
        except ValueError as exc:
            raise UnitError(f"--consensus-pubkey {consensus_pubkey!r} is not base64") from exc
    return ProposeValidator(
        change=ValidatorChange(
            action=action, name=name, role=role,
            account_pubkey=ctx.pubkey(account_pubkey) if account_pubkey else b"", consensus_pubkey=consensus,
            zones=tuple(sorted({z.strip() for z in zones.split(",") if z.strip()})), power=power,
        ),
        description=description,
    )


@tx_command(gov_app, "vote")
def vote(ctx: BuildContext, proposal_id: Annotated[int, typer.Argument(help="Proposal id.", min=1)],
         choice: Annotated[str, typer.Argument(help="yes | no.")]) -> Msg:
    """Operator: vote on an open proposal.

    Example: gridledger tx gov vote 1 yes --from lpd
    """
    if choice not in ("yes", "no"):
        raise UnitError("vote yes or no")
    return CastVote(proposal_id=proposal_id, approve=choice == "yes")


@tx_command(order_app, "place")
def order_place(
    ctx: BuildContext,
    side: Annotated[str, typer.Option(help="bid (buy) | ask (sell).")],
    qty: Annotated[str, typer.Option(help="Energy, e.g. 2kWh or 500Wh.")],
    price: Annotated[str, typer.Option(help="Limit per kWh, e.g. 0.26EUR/kWh (bids: all-in, grid fee included).")],
    slot: Annotated[str, typer.Option(help="Slot start: unix seconds or ISO 8601 with zone, e.g. 2026-01-01T10:15Z.")],
    valid_until: Annotated[str | None, typer.Option(help="Last time the order may trade (default: the slot start).")]
    = None,
    tif: Annotated[str, typer.Option(help="limit | ioc | fok | post_only.")] = "limit",
    client_order_id: Annotated[str, typer.Option(help="Your own reference.")] = "",
    origin: Annotated[str, typer.Option(help="Asks: solar | wind | hydro | biomass | storage | grid-mix.")] = "",
    accept: Annotated[str, typer.Option(help="Bids: accepted origins, comma-separated (default: any).")] = "",
) -> Msg:
    """Place a bid or an ask for one delivery slot (docs/market.md).

    Example: gridledger tx order place --side ask --qty 2kWh --price 0.24EUR/kWh --slot 2026-01-01T10:00Z
    --origin solar --from alice --wait
    """
    slot_start = parse_time(slot)
    return PlaceOrder(
        side=side, quantity_wh=parse_energy(qty), price=ctx.price(price), slot=slot_start,
        valid_until=parse_time(valid_until) if valid_until is not None else slot_start, tif=tif,
        client_order_id=client_order_id, origin=origin,
        accept_origins=tuple(sorted({o.strip() for o in accept.split(",") if o.strip()})),
    )


@tx_command(order_app, "cancel")
def order_cancel(ctx: BuildContext, order_id: Annotated[int, typer.Argument(help="Order id.", min=1)]) -> Msg:
    """Cancel one of your open orders; its locked money is released.

    Example: gridledger tx order cancel 17 --from alice
    """
    return CancelOrder(order_id=order_id)


@tx_command(fees_app, "set")
def grid_fees_set(
    ctx: BuildContext,
    entries: Annotated[list[str], typer.Argument(help="FROM:TO=PRICE, e.g. zone-a:zone-b=0.015EUR/kWh.")],
) -> Msg:
    """DSO: set its component of the grid fee for routes touching its zones (0 removes it).

    Example: gridledger tx grid-fees set zone-a:zone-a=0.01EUR/kWh zone-a:zone-b=0.015EUR/kWh --from dso
    """
    parsed = []
    for entry in entries:
        route, sep, price = entry.partition("=")
        from_zone, colon, to_zone = route.partition(":")
        if not sep or not colon:
            raise UnitError(f"{entry!r}: write FROM:TO=PRICE, e.g. zone-a:zone-b=0.015EUR/kWh")
        parsed.append(FeeEntry(from_zone=from_zone, to_zone=to_zone, fee_per_kwh=ctx.price(price)))
    return SetGridFees(entries=tuple(parsed))


@tx_app.command("broadcast")
def broadcast_file(
    file: Annotated[Path, typer.Argument(help="File written by --sign-only.")],
    node: Annotated[str, typer.Option("--node", envvar="GRIDLEDGER_NODE", help="CometBFT RPC URL.")] = DEFAULT_NODE,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the commit.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits.")] = 30.0,
    output: Annotated[Format, typer.Option("--output", "-o", help="Result format.")] = Format.table,
) -> None:
    """Send a transaction signed offline with --sign-only.

    Example: gridledger tx broadcast transfer.json --wait
    """
    try:
        doc = json.loads(file.read_text())
        raw = base64.b64decode(doc["tx_base64"], validate=True)
        codec.decode(raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"{file} is not a signed transaction file: {exc}")
    broadcast(NodeClient(node), raw, Output(output.value), wait, timeout)


# -- meter readings (docs/settlement.md) ----------------------------------------------
readings_app = typer.Typer(help="Relay signed smart-meter readings.", no_args_is_help=True)
tx_app.add_typer(readings_app, name="readings")

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


def unlock_meter_keys(names: set[str], keyring_dir: Path, passphrase_file: Path | None) -> dict[str, SigningKey]:
    """Each meter key once (a passphrase per key: the file, else $GRIDLEDGER_PASSPHRASE, else a prompt)."""
    with user_errors():
        return {name: load_key(name, keyring_dir, passphrase_file) for name in sorted(names)}


@tx_command(readings_app, "submit")
def readings_submit(
    ctx: BuildContext,
    meter: Annotated[str | None, typer.Option(help="Meter id (one reading; or use --file).")] = None,
    at: Annotated[str | None, typer.Option(
        help="Slot end the registers were read at: unix seconds or ISO 8601 with zone, e.g. 2026-01-01T11:00Z.")]
    = None,
    import_register: Annotated[str | None, typer.Option(
        "--import", help="Cumulative import register (OBIS 1.8.0), e.g. 1234Wh.")] = None,
    export_register: Annotated[str | None, typer.Option(
        "--export", help="Cumulative export register (OBIS 2.8.0), e.g. 56Wh.")] = None,
    meter_key: Annotated[str | None, typer.Option(help="Keyring name of the meter's key (default: the meter id).")]
    = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="CSV of readings: meter,timestamp,import_wh,export_wh[,meter_key] (up to 256 rows).")] = None,
    meter_passphrase_file: Annotated[Path | None, typer.Option(
        help="Passphrase file of the meter keys (else $GRIDLEDGER_PASSPHRASE, else ask).")] = None,
    meter_chain_id: Annotated[str | None, typer.Option(
        help="Chain id the meters sign for (default: the node's; required with --sign-only/--dry-run).")] = None,
) -> Msg:
    """Relay meter readings: each is signed with its METER's key, the transaction with --from's.

    The registers are cumulative (as the meter displays them); the ledger takes the
    slot's energy as the difference to the meter's previous reading.

    Example: gridledger tx readings submit --meter m-001 --at 2026-01-01T11:00Z --import 1234Wh --export 56Wh
    --from dso --wait
    """
    single = (meter, at, import_register, export_register)
    if file is not None:
        if any(value is not None for value in (*single, meter_key)):
            raise UnitError("give either --file or --meter/--at/--import/--export, not both")
        unsigned = read_readings_csv(file)
    else:
        if any(value is None for value in single):
            raise UnitError("one reading needs --meter, --at, --import and --export (or give --file)")
        assert meter is not None and at is not None and import_register is not None and export_register is not None
        unsigned = [UnsignedReading(meter_id=meter, timestamp=parse_time(at),
                                    import_register_wh=parse_energy(import_register),
                                    export_register_wh=parse_energy(export_register), meter_key=meter_key or meter)]
    if len(unsigned) > MAX_READINGS:
        raise UnitError(f"{len(unsigned)} readings: one transaction carries at most {MAX_READINGS}")
    chain_id = meter_chain_id or ctx.chain.chain_id
    if not chain_id:
        raise UnitError("offline, the meters' chain id is unknown: add --meter-chain-id")
    keys = unlock_meter_keys({r.meter_key for r in unsigned}, ctx.keyring_dir, meter_passphrase_file)
    return SubmitReadings(readings=tuple(sign_reading(chain_id, r, keys[r.meter_key]) for r in unsigned))
