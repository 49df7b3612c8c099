"""`gridledger tx ...`: build, sign, broadcast (or sign offline) ledger transactions.

Every command that signs takes the same signing options, the ``Annotated``
aliases of cli/options.py: ``--from``, ``--keyring-dir``, ``--passphrase-file``,
``--node``, ``--chain-id``, ``--nonce``, ``--wait``, ``--timeout``,
``--sign-only --out FILE``, ``--dry-run``, ``--output``; it then hands its
message builder to ``send``. Exit codes: 0 accepted (and committed with
--wait), 1 rejected, 2 usage or input error, 3 node unreachable or timed out.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from abci_app.ledger import codec
from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.bank import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.gov import CastVote, ProposeParams, ProposeValidator
from abci_app.ledger.modules.gov.records import ParamChange, ValidatorChange
from abci_app.ledger.modules.market.msgs import CancelOrder, FeeEntry, SetGridFees
from abci_app.ledger.modules.market.records import ORIGINS
from abci_app.ledger.modules.registry import Deactivate, RegisterMeter, RegisterParticipant
from abci_app.ledger.modules.settlement.msgs import MAX_READINGS, SubmitReadings
from abci_app.ledger.msg import Msg
from abci_app.ledger.tx import encode_tx
from abci_app.ledger.wire import plain
from cli.options import (
    DEFAULT_KEYRING,
    DEFAULT_NODE,
    ChainIdOpt,
    CurrencyOpt,
    DryRunOpt,
    FromOpt,
    KeyringDirOpt,
    NodeOpt,
    NonceOpt,
    OutputOpt,
    PassphraseFileOpt,
    SignedOutOpt,
    SignOnlyOpt,
    TimeoutOpt,
    WaitOpt,
    complete_zones,
    load_key,
)
from cli.output import Format, Output, UsageError, note, print_tx
from node.client.chain import ChainInfo, NodeClient
from node.client.keystore import Keystore, resolve_pubkey
from node.client.names import resolve
from node.client.orders import OrderInput, build_order
from node.client.readings import UnsignedReading, read_readings_csv, sign_reading
from node.client.units import UnitError, parse_energy, parse_money, parse_power, parse_price, parse_time
from node.rpc import tx_hash
from node.validators import KeyFormatError, consensus_key_text, parse_consensus_pubkey

tx_app = typer.Typer(help="Sign and send transactions (or sign offline).", no_args_is_help=True)
participant_app = typer.Typer(help="DSO: register or deactivate participants.", no_args_is_help=True)
meter_app = typer.Typer(help="DSO: register or deactivate smart meters.", no_args_is_help=True)
gov_app = typer.Typer(help="Operators: propose parameter changes and vote.", no_args_is_help=True)
order_app = typer.Typer(help="Participants: place and cancel energy orders.", no_args_is_help=True)
fees_app = typer.Typer(help="DSO: publish grid fee components.", no_args_is_help=True)
readings_app = typer.Typer(help="Relay signed smart-meter readings.", no_args_is_help=True)
tx_app.add_typer(participant_app, name="participant")
tx_app.add_typer(meter_app, name="meter")
tx_app.add_typer(gov_app, name="gov")
tx_app.add_typer(order_app, name="order")
tx_app.add_typer(fees_app, name="grid-fees")
tx_app.add_typer(readings_app, name="readings")

OFFLINE_DEFAULT = ChainInfo(chain_id="", currency="EUR", currency_exponent=6)


def offline_currency(text: str | None) -> tuple[str, int]:
    """``--currency TOK`` or ``TOK:6``: the currency code and exponent amounts are read in when offline."""
    if text is None:
        return OFFLINE_DEFAULT.currency, OFFLINE_DEFAULT.currency_exponent
    code, _, exponent = text.partition(":")
    if not code.isascii() or not code.isalpha() or (exponent and not exponent.isdigit()) or int(exponent or 0) > 18:
        raise UsageError(f"--currency {text!r}: write the chain's currency as CODE or CODE:EXPONENT, e.g. TOK:6")
    return code, int(exponent) if exponent else OFFLINE_DEFAULT.currency_exponent


@dataclass(frozen=True)
class BuildContext:
    """What a message builder may use: chain facts and the keyring for name lookups."""

    chain: ChainInfo
    keyring_dir: Path
    params: dict[str, Any] | None = None
    """The chain's parameters; None offline."""
    now: int = 0
    """The chain's last block time (offline: this machine's clock), for relative times."""
    client: NodeClient | None = None
    """The node (None offline): operator names are looked up there."""

    def money(self, text: str) -> int:
        return parse_money(text, self.chain.currency, self.chain.currency_exponent)

    def account(self, text: str) -> str:
        """An id, a key name, or (online) an operator name of the chain."""
        return resolve(text, self.keyring_dir, self.client)

    def pubkey(self, text: str) -> bytes:
        return resolve_pubkey(text, self.keyring_dir)

    def price(self, text: str) -> int:
        return parse_price(text, self.chain.currency, self.chain.currency_exponent)


@dataclass(frozen=True)
class TxOptions:
    """The signing options of a command, in the order every command declares them."""

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
    currency: str | None = None
    """Offline: the chain's currency as CODE[:EXPONENT] (default EUR:6)."""


def send(opts: TxOptions, build: Callable[[BuildContext], Msg]) -> None:
    """Sign the message and do what the options ask: dry-run, sign-only, broadcast, wait."""
    out = Output(opts.output.value)
    if opts.sign_only and opts.out is None:
        raise UsageError("--sign-only needs --out FILE")
    offline = opts.sign_only or opts.dry_run
    if offline and (opts.chain_id is None or opts.nonce is None):
        raise UsageError("offline signing needs --chain-id and --nonce (the node is not asked)")
    client = NodeClient(opts.node)
    if offline:
        code, exponent = offline_currency(opts.currency)
        if opts.currency is None:
            note(f"offline: amounts are read in {code} with {exponent} decimals (another chain: --currency CODE:N)")
        context = BuildContext(ChainInfo("", code, exponent), opts.keyring_dir, None, int(time.time()))
    else:
        facts, params = client.query("/chain"), client.query("/params")
        chain = ChainInfo(facts["chain_id"], params["currency"], params["currency_exponent"])
        context = BuildContext(chain, opts.keyring_dir, params, int(facts["time"]), client)
    chain = context.chain
    msg = build(context)
    if Keystore(opts.keyring_dir.expanduser()).show(opts.from_key).kind == "meter":
        raise UsageError(f"{opts.from_key!r} is a meter key: a meter signs readings (tx readings submit "
                         f"--meter-key {opts.from_key}); sign transactions with an account key (--from)")
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
    print_tx(out, client.submit(raw, opts.wait, opts.timeout))


def describe(raw: bytes, msg: Msg, key: SigningKey, chain_id: str, nonce: int) -> dict[str, Any]:
    body = plain(msg)
    if isinstance(msg, ProposeValidator):  # consensus keys read in base64 everywhere, as CometBFT writes them
        body["change"]["consensus_pubkey"] = consensus_key_text(msg.change.consensus_pubkey)
    return {"hash": tx_hash(raw), "type": msg.TYPE, "chain_id": chain_id, "signer": key.account,
            "nonce": nonce, "body": body, "bytes": len(raw)}


# -- commands -------------------------------------------------------------------------
@tx_app.command("transfer")
def transfer(
    recipient: Annotated[str, typer.Argument(help="Account id or key name.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 12.50EUR.")],
    memo: Annotated[str, typer.Option(help="Note for the recipient.")] = "",
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Send money to another account.

    Example: gridledger tx transfer bob 12.50EUR --from alice --wait
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: Transfer(recipient=ctx.account(recipient), amount=ctx.money(amount), memo=memo))


@tx_app.command("deposit")
def deposit(
    account: Annotated[str, typer.Argument(help="Account id or key name credited.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 100EUR.")],
    reference: Annotated[str, typer.Option(help="Off-chain payment reference.")] = "",
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """LPD: credit an account against an off-chain payment received.

    Example: gridledger tx deposit alice 100EUR --reference SEPA-4711 --from lpd
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: Deposit(account=ctx.account(account), amount=ctx.money(amount), reference=reference))


@tx_app.command("withdraw")
def withdraw(
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 20EUR.")],
    agent: Annotated[str, typer.Option(help="LPD (account id or key name) that pays out.")],
    reference: Annotated[str, typer.Option(help="Payout instruction reference.")] = "",
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Ask an LPD to pay part of the free balance out off-chain.

    Example: gridledger tx withdraw 20EUR --agent lpd --from alice
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: Withdraw(amount=ctx.money(amount), agent=ctx.account(agent), reference=reference))


@participant_app.command("register")
def participant_register(
    pubkey: Annotated[str, typer.Argument(help="Participant's public key (64 hex) or key name.")],
    role: Annotated[str, typer.Option(help="consumer | prosumer | producer.")],
    zone: Annotated[str, typer.Option(help="Grid zone served by the signing DSO.", autocompletion=complete_zones)],
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """DSO: register a participant in one of its zones.

    Example: gridledger tx participant register carol --role consumer --zone zone-a --from dso
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: RegisterParticipant(pubkey=ctx.pubkey(pubkey), role=role, zone=zone))


@participant_app.command("deactivate")
def participant_deactivate(
    account: Annotated[str, typer.Argument(help="Account id or key name.")],
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """DSO: deactivate one of its participants (it can still withdraw).

    Example: gridledger tx participant deactivate carol --from dso
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: Deactivate(kind="participant", target=ctx.account(account)))


@meter_app.command("register")
def meter_register(
    meter_id: Annotated[str, typer.Argument(help="Meter id, e.g. its serial number.")],
    pubkey: Annotated[str, typer.Option(help="Meter public key (64 hex) or meter key name.")],
    owner: Annotated[str, typer.Option(help="Participant (account id or key name).")],
    import_capacity: Annotated[str, typer.Option(help="Import capacity, e.g. 11kW.")] = "0W",
    export_capacity: Annotated[str, typer.Option(help="Export capacity, e.g. 8kW.")] = "0W",
    import_register: Annotated[str, typer.Option(help="Import register at installation, e.g. 0Wh.")] = "0Wh",
    export_register: Annotated[str, typer.Option(help="Export register at installation.")] = "0Wh",
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """DSO: register a smart meter to one of its participants.

    Example: gridledger tx meter register m-001 --pubkey m-001 --owner alice --export-capacity 8kW --from dso
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: RegisterMeter(
             meter_id=meter_id, pubkey=ctx.pubkey(pubkey), owner=ctx.account(owner),
             import_capacity_w=parse_power(import_capacity), export_capacity_w=parse_power(export_capacity),
             import_register_wh=parse_energy(import_register), export_register_wh=parse_energy(export_register)))


@meter_app.command("deactivate")
def meter_deactivate(
    meter_id: Annotated[str, typer.Argument(help="Meter id.")],
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """DSO: deactivate one of its meters.

    Example: gridledger tx meter deactivate m-001 --from dso
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda _ctx: Deactivate(kind="meter", target=meter_id))


def _param_changes(changes: list[str]) -> tuple[ParamChange, ...]:
    parsed = []
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise UnitError(f"{change!r}: write NAME=INTEGER")
        parsed.append(ParamChange(name=name, value=int(value)))
    return tuple(parsed)


@gov_app.command("propose-params")
def propose_params(
    changes: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs (integers).")],
    description: Annotated[str, typer.Option(help="Why; shown to voters.")] = "",
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Operator: propose new parameter values (pass with > 2/3 of operator power).

    Example: gridledger tx gov propose-params voting_period_s=3600 --description "faster votes" --from dso
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda _ctx: ProposeParams(changes=_param_changes(changes), description=description))


def _consensus_key(text: str) -> bytes:
    """--consensus-pubkey: base64 as CometBFT writes it (the hex of older JSON is accepted too)."""
    if not text:
        return b""
    try:
        return parse_consensus_pubkey(text)
    except KeyFormatError as exc:
        raise UnitError(f"--consensus-pubkey: {exc}") from exc


@gov_app.command("propose-validator")
def propose_validator(
    action: Annotated[str, typer.Argument(help="add | remove | power.")],
    name: Annotated[str, typer.Argument(help="Operator name (new for add, a current validator otherwise).")],
    role: Annotated[str, typer.Option(help="add: dso | lpd.")] = "",
    account_pubkey: Annotated[str, typer.Option(help="add: operator account key (64 hex) or key name.")] = "",
    consensus_pubkey: Annotated[str, typer.Option(
        help="add: validator consensus key, base64 as in priv_validator_key.json (see `gridledger node init`).")] = "",
    zones: Annotated[str, typer.Option(help="add, DSO: zones served, comma-separated.")] = "",
    power: Annotated[int, typer.Option(help="add, power: voting power.", min=0)] = 0,
    description: Annotated[str, typer.Option(help="Why; shown to voters.")] = "",
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Operator: propose adding a DSO/LPD validator, removing one, or changing its power.

    Example: gridledger tx gov propose-validator add dso-east --role dso --account-pubkey dso-east
    --consensus-pubkey BASE64 --zones zone-e --power 10 --from dso
    """
    def build(ctx: BuildContext) -> Msg:
        change = ValidatorChange(
            action=action, name=name, role=role, consensus_pubkey=_consensus_key(consensus_pubkey),
            account_pubkey=ctx.pubkey(account_pubkey) if account_pubkey else b"",
            zones=tuple(sorted({z.strip() for z in zones.split(",") if z.strip()})), power=power)
        return ProposeValidator(change=change, description=description)

    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency), build)


def _approve(choice: str) -> bool:
    if choice not in ("yes", "no"):
        raise UnitError("vote yes or no")
    return choice == "yes"


@gov_app.command("vote")
def vote(
    proposal_id: Annotated[int, typer.Argument(help="Proposal id.", min=1)],
    choice: Annotated[str, typer.Argument(help="yes | no.")],
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Operator: vote on an open proposal.

    Example: gridledger tx gov vote 1 yes --from lpd
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda _ctx: CastVote(proposal_id=proposal_id, approve=_approve(choice)))


class Side(StrEnum):
    bid = "bid"
    ask = "ask"


class TimeInForce(StrEnum):
    limit = "limit"
    ioc = "ioc"
    fok = "fok"
    post_only = "post_only"


Origin = StrEnum("Origin", {name.replace("-", "_"): name for name in ORIGINS})  # type: ignore[misc]


@order_app.command("place")
def order_place(
    side: Annotated[Side, typer.Option(help="bid (buy) | ask (sell).", case_sensitive=False)],
    qty: Annotated[str, typer.Option(help="Energy, e.g. 2kWh or 500Wh.")],
    price: Annotated[str, typer.Option(help="Limit per kWh, e.g. 0.26EUR/kWh (bids: all-in, grid fee included).")],
    slot: Annotated[str, typer.Option(
        help="Slot: next (first open), +2h (the slot in 2 hours), a start in ISO 8601 (2026-11-27T14:00Z) or unix "
             "seconds; see `gridledger query slots`.")],
    valid_until: Annotated[str | None, typer.Option(
        help="Last time the order may trade: +15m, gate, slot-start, slot-end, ISO 8601 (default: the slot start).")]
    = None,
    tif: Annotated[TimeInForce, typer.Option(help="Time in force.", case_sensitive=False)] = TimeInForce.limit,
    client_order_id: Annotated[str, typer.Option(help="Your own reference.")] = "",
    origin: Annotated[Origin | None, typer.Option(help="Asks: where the energy comes from.",
                                                  case_sensitive=False)] = None,
    accept: Annotated[str, typer.Option(help=f"Bids: accepted origins, comma-separated, of {', '.join(ORIGINS)} "
                                             "(default: any).")] = "",
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Place a bid or an ask for one delivery slot (docs/market.md).

    Side, origins, time in force, the slot (aligned, gate open), the tick, the price range and the
    minimum quantity are checked before signing: a mistake exits 2 with the fix, nothing is sent.

    Example: gridledger tx order place --side ask --qty 2kWh --price 0.24EUR/kWh --slot next
    --origin solar --from alice --wait
    """
    order = OrderInput(side=side.value, qty=qty, price=price, slot=slot, valid_until=valid_until, tif=tif.value,
                       client_order_id=client_order_id, origin=origin.value if origin is not None else "",
                       accept=accept)
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: build_order(order, ctx.chain.currency, ctx.chain.currency_exponent, ctx.params, ctx.now))


@order_app.command("cancel")
def order_cancel(
    order_id: Annotated[int, typer.Argument(help="Order id.", min=1)],
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Cancel one of your open orders; its locked money is released.

    Example: gridledger tx order cancel 17 --from alice
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda _ctx: CancelOrder(order_id=order_id))


def _fee_entries(ctx: BuildContext, entries: list[str]) -> tuple[FeeEntry, ...]:
    parsed = []
    for entry in entries:
        route, sep, price = entry.partition("=")
        from_zone, colon, to_zone = route.partition(":")
        if not sep or not colon:
            raise UnitError(f"{entry!r}: write FROM:TO=PRICE, e.g. zone-a:zone-b=0.015EUR/kWh")
        parsed.append(FeeEntry(from_zone=from_zone, to_zone=to_zone, fee_per_kwh=ctx.price(price)))
    return tuple(parsed)


@fees_app.command("set")
def grid_fees_set(
    entries: Annotated[list[str], typer.Argument(help="FROM:TO=PRICE, e.g. zone-a:zone-b=0.015EUR/kWh.")],
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """DSO: set its component of the grid fee for routes touching its zones (0 removes it).

    Example: gridledger tx grid-fees set zone-a:zone-a=0.01EUR/kWh zone-a:zone-b=0.015EUR/kWh --from dso
    """
    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency),
         lambda ctx: SetGridFees(entries=_fee_entries(ctx, entries)))


@tx_app.command("broadcast")
def broadcast_file(
    files: Annotated[list[Path], typer.Argument(
        help="Files written by --sign-only, or JSON lines of them (one object with tx_base64 per line); '-' reads "
             "standard input.")],
    node: NodeOpt = DEFAULT_NODE,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
    output: OutputOpt = Format.table,
) -> None:
    """Send transactions signed offline with --sign-only, in the order given.

    All are sent first, then (with --wait) their commits awaited, so a day of signed
    orders goes out in a few blocks. A file sent before says "already submitted".
    Exit code 1 if the chain rejected any.

    Example: gridledger tx broadcast transfer.json --wait
    """
    raws = [raw for file in files for raw in signed_txs(file)]
    if not raws:
        raise UsageError("no transactions in " + ", ".join(map(str, files)))
    results = NodeClient(node).submit_many(raws, wait, timeout)
    out = Output(output.value)
    if len(results) == 1:
        print_tx(out, results[0])
        return
    out.records([result.record() for result in results], columns=("hash", "code", "height", "log"))
    rejected = [result for result in results if result.rejected]
    if rejected:
        rejected[0].raise_if_rejected()


def signed_txs(file: Path) -> list[bytes]:
    """The transactions of a --sign-only file, or of JSON lines of them (``-``: standard input)."""
    import sys

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: {exc}") from None
    try:
        try:
            docs = [json.loads(text)]  # one --sign-only file (indented JSON)
        except json.JSONDecodeError:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]  # JSON lines
        raws = [base64.b64decode(doc["tx_base64"], validate=True) for doc in docs]
        for raw in raws:
            codec.decode(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{file} is not a signed transaction file (or JSON lines of them): {exc}") from None
    return raws


# -- meter readings (docs/settlement.md) ----------------------------------------------
def _readings(file: Path | None, meter: str | None, at: str | None, import_register: str | None,
              export_register: str | None, meter_key: str | None) -> list[UnsignedReading]:
    """The readings to relay: the rows of --file, or the one reading of --meter/--at/--import/--export."""
    single = (meter, at, import_register, export_register)
    if file is not None:
        if any(value is not None for value in (*single, meter_key)):
            raise UnitError("give either --file or --meter/--at/--import/--export, not both")
        unsigned = read_readings_csv(file)
    elif meter is None or at is None or import_register is None or export_register is None:
        raise UnitError("one reading needs --meter, --at, --import and --export (or give --file)")
    else:
        unsigned = [UnsignedReading(meter_id=meter, timestamp=parse_time(at),
                                    import_register_wh=parse_energy(import_register),
                                    export_register_wh=parse_energy(export_register), meter_key=meter_key or meter)]
    if len(unsigned) > MAX_READINGS:
        raise UnitError(f"{len(unsigned)} readings: one transaction carries at most {MAX_READINGS}")
    return unsigned


@readings_app.command("submit")
def readings_submit(
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
    *,
    from_key: FromOpt, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE, chain_id: ChainIdOpt = None, nonce: NonceOpt = None, wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0, sign_only: SignOnlyOpt = False, out: SignedOutOpt = None, dry_run: DryRunOpt = False,
    currency: CurrencyOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Relay meter readings: each is signed with its METER's key, the transaction with --from's.

    The registers are cumulative (as the meter displays them); the ledger takes the
    slot's energy as the difference to the meter's previous reading.

    Example: gridledger tx readings submit --meter m-001 --at 2026-01-01T11:00Z --import 1234Wh --export 56Wh
    --from dso --wait
    """
    def build(ctx: BuildContext) -> Msg:
        unsigned = _readings(file, meter, at, import_register, export_register, meter_key)
        meters_chain = meter_chain_id or ctx.chain.chain_id
        if not meters_chain:
            raise UnitError("offline, the meters' chain id is unknown: add --meter-chain-id")
        # Each meter key once (a passphrase per key: the file, else $GRIDLEDGER_PASSPHRASE, else a prompt).
        keys = {name: load_key(name, ctx.keyring_dir, meter_passphrase_file)
                for name in sorted({r.meter_key for r in unsigned})}
        return SubmitReadings(readings=tuple(sign_reading(meters_chain, r, keys[r.meter_key]) for r in unsigned))

    send(TxOptions(from_key, keyring_dir, passphrase_file, node, chain_id, nonce, wait, timeout, sign_only, out,
                   dry_run, output, currency), build)
