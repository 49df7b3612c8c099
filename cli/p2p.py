"""`gridledger p2p ...`: direct bilateral offers and the live market feed over libp2p.

`p2p listen` runs a participant's (or, with --publish-feed, a validator's)
libp2p host and keeps it running; the other commands are short-lived and talk
to that host through its control socket `<home>/control.sock`:

    p2p offer    sign an offer with an account key here, hand the signed bytes to the host to gossip
    p2p offers   live verified offers in the host's cache, and what it dropped (per reason)
    p2p accept   co-sign a cached offer as taker and submit `accept_offer` to the chain
    p2p watch    stream the market feed (and optionally offers) as the host receives it
    p2p status   the host's peer id, addresses, peers and counters

Exit codes: 0 ok, 1 transaction rejected, 2 usage or input error (also: no
host listening), 3 node unreachable (or no feed event within --idle-timeout).
docs/p2p.md has formats and limits.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from abci_app.ledger.tx import encode_tx
from cli.options import (
    DEFAULT_KEYRING,
    DEFAULT_NODE,
    NODE_ENV,
    FromOpt,
    KeyringDirOpt,
    NodeOpt,
    OutputOpt,
    PassphraseFileOpt,
    TimeoutOpt,
    WaitOpt,
    load_key,
)
from cli.output import Format, Output, UsageError, note, print_tx
from node.client.chain import NodeClient
from node.client.units import format_energy, format_money, parse_energy, parse_price, parse_time
from node.p2p import messages
from node.p2p.messages import MessageError, OfferBody, SignedOffer
from node.rpc import tx_hash

# trio, the control socket and py-libp2p (node.p2p.host) load in over a second: imported by the p2p
# commands when they run, so every other command (also `gridledger --help`) starts without them.
if TYPE_CHECKING:
    from node.p2p.control import ControlClient
    from node.p2p.host import P2PHost

p2p_app = typer.Typer(help="Direct offers and the live market feed over libp2p.", no_args_is_help=True)

HOME_ENV = "GRIDLEDGER_P2P_HOME"
DEFAULT_HOME = Path("~/.gridledger/p2p")
CONFIG_FILE = "p2p.toml"
DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"
OFFER_COLUMNS = ("offer_id", "side", "quantity", "price", "slot", "valid_until", "zone", "origin", "maker")

HomeOpt = Annotated[Path, typer.Option("--home", envvar=HOME_ENV,
                                       help="Directory of the p2p host: identity key, p2p.toml, control socket.")]


def _client(home: Path, timeout: float = 10.0) -> ControlClient:
    from node.p2p.control import ControlClient, socket_path

    return ControlClient(socket_path(home.expanduser()), timeout=timeout)


# -- listen -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainFacts:
    chain_id: str
    currency: str
    currency_exponent: int


def _read_config(home: Path) -> dict[str, Any]:
    path = home / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from exc


class _StopRequest:
    """SIGINT/SIGTERM before the host's own signal receiver runs: remember it, stop cleanly (exit 0)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, _frame: object) -> None:
        self.event.set()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def _await_node(node: str, seconds: float, stop: _StopRequest) -> bool:
    """Poll until the node answers queries (it may still be starting); False if a stop came first.

    A node that has just started has no event to wait on: poll, bounded by ``seconds``.
    """
    from node.rpc import CometRpc, NodeUnreachable, RpcError

    deadline = time.monotonic() + seconds
    rpc = CometRpc(node, timeout=2.0)
    try:
        while True:
            try:
                rpc.query_json("/chain")
                return True
            except (NodeUnreachable, RpcError):
                if time.monotonic() > deadline:
                    return True  # _chain_facts reports the unreachable node with its exit code
            if stop.event.wait(0.5):
                return False
    finally:
        rpc.close()


def _chain_facts(chain_id: str | None, node: str | None) -> ChainFacts:
    if node is None:
        if chain_id is None:
            raise UsageError("give --chain-id, or --node URL to ask the node")
        note("no --node: prices are shown in EUR with 6 decimals (the default chain currency)")
        return ChainFacts(chain_id, "EUR", 6)
    client = NodeClient(node)
    info = client.chain_info()
    if chain_id is not None and chain_id != info.chain_id:
        raise UsageError(f"--chain-id {chain_id} but the node runs {info.chain_id}")
    return ChainFacts(info.chain_id, info.currency, info.currency_exponent)


@p2p_app.command("listen")
def listen(
    home: HomeOpt = DEFAULT_HOME,
    zone: Annotated[list[str] | None, typer.Option("--zone", help="Zone whose topics to join (repeat).")] = None,
    chain_id: Annotated[str | None, typer.Option("--chain-id", help="Chain id (default: from --node).")] = None,
    node: Annotated[str | None, typer.Option("--node", envvar=NODE_ENV,
                                             help="CometBFT RPC URL (chain facts; the feed's data).")] = None,
    listen_addr: Annotated[list[str] | None, typer.Option(
        "--listen", help=f"Multiaddr to listen on (repeat; default {DEFAULT_LISTEN}).")] = None,
    bootstrap: Annotated[list[str] | None, typer.Option(
        "--bootstrap", help="Peer to dial: /ip4/A/tcp/P/p2p/PEERID (repeat; adds to p2p.toml's list).")] = None,
    trust_publisher: Annotated[list[str] | None, typer.Option(
        "--trust-publisher", help="Accept feed snapshots only from this publisher key (64 hex; repeat).")] = None,
    publish_feed: Annotated[bool, typer.Option(
        "--publish-feed", help="Validator: publish a signed market snapshot per zone after each block.")] = False,
    wait_node: Annotated[float, typer.Option(
        "--wait-node", min=0, help="Seconds to wait for --node to answer (a node that is still starting).")] = 0.0,
) -> None:
    """Run a p2p host until Ctrl-C (or SIGTERM): gossip offers and the feed of your zones.

    Settings may also come from <home>/p2p.toml (keys: chain_id, node, zones,
    listen, bootstrap, trusted_publishers); options win, bootstrap lists add up.

    Example: gridledger p2p listen --zone zone-a --node http://127.0.0.1:26657
    """
    stop = _StopRequest()
    stop.install()
    home = home.expanduser()
    home.mkdir(parents=True, exist_ok=True)
    config = _read_config(home)
    node = node or config.get("node")
    zones = tuple(zone or config.get("zones", ()))
    if not zones:
        raise UsageError("give at least one --zone (or zones in p2p.toml)")
    if node is not None and wait_node > 0 and not _await_node(node, wait_node, stop):
        note("stopped before the node answered")
        return
    facts = _chain_facts(chain_id or config.get("chain_id"), node)
    if publish_feed and node is None:
        raise UsageError("--publish-feed reads the market from a node: give --node URL")
    trusted = [*config.get("trusted_publishers", ()), *(trust_publisher or ())]
    import trio

    from node.p2p.host import IDENTITY_FILE, HostConfig, P2PHost, load_or_create_identity

    try:
        host_config = HostConfig(
            chain_id=facts.chain_id, zones=zones,
            listen=tuple(listen_addr or config.get("listen", (DEFAULT_LISTEN,))),
            bootstrap=(*config.get("bootstrap", ()), *(bootstrap or ())),
            trusted_publishers=frozenset(bytes.fromhex(k) for k in trusted) if trusted else None,
        )
        identity = load_or_create_identity(home / IDENTITY_FILE)
        host = P2PHost(host_config, identity)
        host.topic_names()  # raises ValueError for a zone name that cannot be a topic
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    extra = {"currency": facts.currency, "currency_exponent": facts.currency_exponent,
             "publisher": identity.pubkey.hex() if publish_feed else None}
    trio.run(_run_listener, host, home, extra, node if publish_feed else None, stop)


async def _run_listener(host: P2PHost, home: Path, extra: Mapping[str, Any], feed_node: str | None,
                        stop: _StopRequest) -> None:
    import trio

    from node.p2p import control
    from node.p2p.control import socket_path

    # The signal receiver first, so a SIGTERM at any later point ends the host cleanly (exit 0).
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        if stop.event.is_set():
            note("stopping (signal during start)")
            return
        async with host.running(), trio.open_nursery() as nursery:
            await nursery.start(control.serve, host, socket_path(home), extra)
            note(f"p2p host {host.peer_id} on chain {host.config.chain_id}, zones {', '.join(host.config.zones)}")
            for addr in host.addrs():
                note(f"  listening: {addr}")
            note(f"  control socket: {socket_path(home)}")
            if feed_node is not None:
                nursery.start_soon(_publish_feed_forever, host, feed_node)
                note(f"  publishing the market feed from {feed_node} as {host.identity.pubkey.hex()}")
            async for signum in signals:
                note(f"stopping ({signal.Signals(signum).name})")
                nursery.cancel_scope.cancel()
                break


FEED_RECONNECT_S = (1.0, 2.0, 5.0, 10.0, 30.0)


async def _publish_feed_forever(host: P2PHost, feed_node: str) -> None:
    """Publish the feed; when the node's event stream ends or fails, reconnect with back-off.

    A validator's host must not go on silently without its feed (e.g. after
    its node's websocket dropped).
    """
    import trio

    from node.p2p import feed
    from node.rpc import CometRpc

    failures = 0
    while True:
        started = time.monotonic()
        try:
            await feed.publish_feed(host, feed.RpcMarketSource(CometRpc(feed_node)),
                                    feed.comet_new_heights(feed_node), host.config.zones, host.config.chain_id,
                                    host.config.limits)
            problem = "the node's block events ended"
        except Exception as exc:  # a node that went away: retry, never take the host down
            problem = f"{type(exc).__name__}: {exc}"
        failures = 1 if time.monotonic() - started > 60 else failures + 1
        delay = FEED_RECONNECT_S[min(failures, len(FEED_RECONNECT_S)) - 1]
        note(f"feed: {problem}; reconnecting to {feed_node} in {delay:g}s")
        # No event tells when a failed node is back: retry after a back-off.
        await trio.sleep(delay)


# -- offer ---------------------------------------------------------------------------------
def _valid_until(text: str, now: int) -> int:
    """``+90s``, ``+15m``, ``+2h`` from now, or an absolute time (unix seconds or ISO 8601 with zone)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text.startswith("+") and text[-1:] in units and text[1:-1].isdigit():
        return now + int(text[1:-1]) * units[text[-1]]
    return parse_time(text)


@p2p_app.command("offer")
def offer(
    side: Annotated[str, typer.Option(help="ask (you sell) or bid (you buy).")],
    qty: Annotated[str, typer.Option(help="Energy, e.g. 2.5kWh.")],
    price: Annotated[str, typer.Option(help="Per kWh, e.g. 0.12EUR/kWh (bids: all-in, grid fee included).")],
    slot: Annotated[str, typer.Option(help="Slot start: unix seconds or ISO 8601 with zone, e.g. 2026-01-01T10:15Z.")],
    valid_until: Annotated[str, typer.Option(help="Last time it may be accepted: +15m, +2h, unix seconds, ISO 8601.")],
    from_key: FromOpt,
    zone: Annotated[str | None, typer.Option(help="Your grid zone (default: the host's first zone).")] = None,
    origin: Annotated[str, typer.Option(help=f"Ask: {', '.join(messages.ORIGINS)}; bid: one of them or empty.")]
    = "",
    home: HomeOpt = DEFAULT_HOME,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    passphrase_file: PassphraseFileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Sign an offer with your account key and gossip it on your zone's offers topic.

    Example: gridledger p2p offer --side ask --qty 2kWh --price 0.11EUR/kWh --slot 1767229200 --valid-until +15m
    --origin solar --from alice
    """
    out = Output(output.value)
    client = _client(home)
    status = client.request("status")
    now = int(time.time())
    quantity_wh = parse_energy(qty)
    price_per_kwh = parse_price(price, status["currency"], status["currency_exponent"])
    expiry = _valid_until(valid_until, now)
    slot_start = parse_time(slot)
    key = load_key(from_key, keyring_dir, passphrase_file)
    body = OfferBody(chain_id=status["chain_id"], maker=key.account, maker_pubkey=key.pubkey, side=side,
                     quantity_wh=quantity_wh, price=price_per_kwh, slot=slot_start, valid_until=expiry,
                     zone=zone or status["zones"][0], origin=origin, salt=os.urandom(messages.SALT_BYTES))
    signed = messages.sign_offer(body, key)
    messages.check_offer(signed, status["chain_id"], now)
    answer = client.request("publish", offer=base64.b64encode(signed.encode()).decode())
    out.record({"offer_id": answer["offer_id"], "topic": answer["topic"], "side": side,
                "quantity_wh": body.quantity_wh, "price": body.price, "slot": slot_start,
                "valid_until": body.valid_until, "zone": body.zone, "maker": key.account})


# -- offers / status ----------------------------------------------------------------------------
def _offer_row(entry: Mapping[str, Any], currency: str, exponent: int) -> dict[str, Any]:
    return {
        "offer_id": entry["offer_id"], "side": entry["side"], "quantity": format_energy(entry["quantity_wh"]),
        "price": f"{format_money(entry['price'], currency, exponent)}/kWh", "slot": entry["slot"],
        "valid_until": entry["valid_until"], "zone": entry["zone"], "origin": entry["origin"] or "any",
        "maker": entry["maker"],
    }


@p2p_app.command("offers")
def offers(
    home: HomeOpt = DEFAULT_HOME,
    node: Annotated[str | None, typer.Option(
        "--node", envvar=NODE_ENV,
        help="CometBFT RPC URL: ask the chain which offers are already taken (and hide them).")] = None,
    show_taken: Annotated[bool, typer.Option("--all", help="With --node: list taken offers too.")] = False,
    output: OutputOpt = Format.table,
) -> None:
    """List live, verified, unexpired offers the host holds, and what it dropped per reason.

    Gossip cannot tell that an offer has been accepted: with --node each offer is looked up
    on chain (`/offer/<id>`) and the taken ones are hidden (or marked, with --all).

    Example: gridledger p2p offers --node http://127.0.0.1:26657 --output json
    """
    out = Output(output.value)
    client = _client(home)
    status = client.request("status")
    answer = client.request("offers")
    entries = [{k: v for k, v in entry.items() if k != "offer_b64"} for entry in answer["offers"]]
    hidden = 0
    if node is not None:
        chain = NodeClient(node)
        for entry in entries:
            entry["taken"] = chain.query_or_none(f"/offer/{entry['offer_id']}")
        if not show_taken:
            live = [entry for entry in entries if entry["taken"] is None]
            hidden, entries = len(entries) - len(live), live
    counters = answer["offer_messages"]
    if output is Format.json:
        out.record({"offers": entries, "messages": counters, "now": answer["now"], "taken_hidden": hidden})
        return
    rows = [_offer_row(e, status["currency"], status["currency_exponent"]) for e in entries]
    columns: tuple[str, ...] = OFFER_COLUMNS
    if node is not None:
        columns = (*OFFER_COLUMNS, "taken")
        for row, entry in zip(rows, entries, strict=True):
            row["taken"] = f"trade {entry['taken']['trade']}" if entry["taken"] else "-"
    title = f"{len(rows)} offers" + (f" ({hidden} taken on chain, hidden)" if hidden else "")
    out.records(rows, columns=columns, title=title)
    out.record(counters, title="offer messages (accepted, dropped per reason)")


@p2p_app.command("status")
def status(home: HomeOpt = DEFAULT_HOME, output: OutputOpt = Format.table) -> None:
    """The running host: peer id, addresses, connected peers, cache size and drop counters.

    Example: gridledger p2p status
    """
    answer = _client(home).request("status")
    answer.pop("ok", None)
    Output(output.value).record(answer)


# -- accept ----------------------------------------------------------------------------------
@p2p_app.command("accept")
def accept(
    offer_id: Annotated[str, typer.Argument(help="Offer id (64 hex) as `p2p offers` lists it.")],
    from_key: FromOpt,
    qty: Annotated[str | None, typer.Option(help="Energy to take (default: all of it), e.g. 1kWh.")] = None,
    home: HomeOpt = DEFAULT_HOME,
    node: NodeOpt = DEFAULT_NODE,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    passphrase_file: PassphraseFileOpt = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Only write the signed acceptance (JSON) to FILE; submit nothing.")] = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
    output: OutputOpt = Format.table,
) -> None:
    """Co-sign an offer as taker and submit an `accept_offer` transaction (first acceptance wins).

    Example: gridledger p2p accept 3f2a...c9 --from bob --wait
    """
    out = Output(output.value)
    entry = _client(home).request("offer", offer_id=offer_id.lower())
    offer_obj = messages.decode_as(SignedOffer, base64.b64decode(entry["offer_b64"]))
    quantity = parse_energy(qty) if qty is not None else None
    key = load_key(from_key, keyring_dir, passphrase_file)
    try:
        acceptance = messages.accept(offer_obj, key, quantity)
        body = messages.AcceptOfferBody(offer=offer_obj, acceptance=acceptance)
        messages.check_accept_offer(body, offer_obj.body.chain_id, int(time.time()))
    except MessageError as exc:
        raise UsageError(f"cannot accept: {exc}") from exc
    document = {"offer_id": offer_obj.offer_id.hex(), "taker": key.account,
                "quantity_wh": acceptance.body.quantity_wh, "chain_id": offer_obj.body.chain_id,
                "accept_offer_body_b64": base64.b64encode(body.encode()).decode()}
    if out_file is not None:
        out_file.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        note(f"signed acceptance written to {out_file}")
        out.record(document)
        return
    client = NodeClient(node)
    raw = encode_tx(offer_obj.body.chain_id, body, key, client.next_nonce(key.account))
    note(f"submitting accept_offer {tx_hash(raw)}")
    print_tx(out, client.submit(raw, wait, timeout))


# -- watch ----------------------------------------------------------------------------------------
@p2p_app.command("watch")
def watch(
    home: HomeOpt = DEFAULT_HOME,
    offers_too: Annotated[bool, typer.Option("--offers", help="Also show new offers as they arrive.")] = False,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after this many events.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(
        "--idle-timeout", help="Give up (exit 3) after this many seconds without an event.")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Show the live market feed: per block and zone, best prices per slot and new trades.

    Example: gridledger p2p watch --count 3 --output json
    """
    from node.p2p.control import ControlError

    out = Output(output.value)
    seen = 0
    try:
        status_answer = _client(home).request("status")
        for event in _client(home).stream("watch", idle_timeout=idle_timeout, offers=offers_too):
            _print_event(out, event, status_answer["currency"], status_answer["currency_exponent"])
            seen += 1
            if count is not None and seen >= count:
                return
    except ControlError as exc:
        if isinstance(exc.__cause__, TimeoutError):  # the socket's timeout: --idle-timeout passed without an event
            raise TimeoutError(f"no feed event within {idle_timeout:g}s") from exc
        raise


def _print_event(out: Output, event: Mapping[str, Any], currency: str, exponent: int) -> None:
    if out.fmt == "json":
        out.record(event)
        return
    if event["kind"] == "offer":
        out.record(_offer_row(event, currency, exponent), title="new offer")
        return

    def money(value: int) -> str:
        return format_money(value, currency, exponent)

    rows = []
    for view in event["slots"]:
        ask = view["best_ask"][0] if view["best_ask"] else None
        bid = view["best_bid"][0] if view["best_bid"] else None
        rows.append({
            "slot": view["slot"],
            "best bid": f"{money(bid['price'])} ({format_energy(bid['quantity_wh'])})" if bid else "-",
            "best ask": f"{money(ask['price'])} ({format_energy(ask['quantity_wh'])}, {ask['zone']})" if ask else "-",
            "ask incl. fee": money(ask["effective_price"]) if ask else "-",
            "zone bids": " ".join(money(level["price"]) for level in view["bids"]) or "-",
            "zone asks": " ".join(money(level["price"]) for level in view["asks"]) or "-",
        })
    title = f"height {event['height']} zone {event['zone']} (prices per kWh)"
    if rows:
        out.records(rows, title=title)
    else:
        out.record({"height": event["height"], "zone": event["zone"], "open slots": "none"})
    for trade in event["trades"]:
        out.record({"trade": trade["trade_id"], "slot": trade["slot"], "quantity": format_energy(trade["quantity_wh"]),
                    "price": money(trade["price"]), "fee": money(trade["fee"]),
                    "zones": f"{trade['seller_zone']} -> {trade['buyer_zone']}"})
