"""`gridledger scenario run`: play a market scenario from a CSV file (the engine is lab/scenario.py).

Exit codes: 0 played and settled; 1 the chain rejected one of its transactions;
2 the scenario, a key or an option is invalid; 3 node unreachable or timed out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import DEFAULT_KEYRING, DEFAULT_NODE, KeyringDirOpt, NodeOpt, OutputOpt, PassphraseFileOpt, load_key
from cli.output import Format, Output, note
from lab.scenario import Keys, RpcTransport, Runner, key_names, load_scenario
from node.client.chain import NodeClient
from node.client.orders import rules_of
from node.client.slots import parse_duration
from node.client.units import parse_time

scenario_app = typer.Typer(help="Play market scenarios (orders and meter readings) from CSV files.",
                           no_args_is_help=True)

SUMMARY_COLUMNS = ("participant", "balance_before_fmt", "balance_fmt", "change_fmt", "bought_wh", "sold_wh",
                   "imported_wh", "exported_wh", "fees_paid_fmt", "balancing_charges_fmt", "supply_charges_fmt",
                   "network_charges_fmt", "credits_fmt", "debt_fmt")


@scenario_app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="Scenario CSV (docs/scenarios.md).")],
    start: Annotated[str | None, typer.Option(
        help="Start of slot 0: next, +2h, a slot start in ISO 8601 with zone or unix seconds (default: the first "
             "slot still open with a margin).")] = None,
    relayer: Annotated[str | None, typer.Option(
        help="Key name of the account relaying all readings (default: each meter's participant).")] = None,
    settle: Annotated[bool, typer.Option("--settle/--no-settle",
                                         help="Wait for the last slot's settlement before printing.")] = True,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    passphrase_file: PassphraseFileOpt = None,
    node: NodeOpt = DEFAULT_NODE,
    output: OutputOpt = Format.table,
) -> None:
    """Play a scenario: place its orders before gate closure, submit its meter readings at each slot end,
    wait for the settlement, and print every participant's balances.

    Every key (participants, the relayer, meters) is unlocked with the one passphrase.
    Block time is real time: a day of hourly slots takes a day (plus the settlement window), and four minutes
    on a replay chain whose 10 s slots stand for hours (config/replay-4.toml, docs/scenarios.md).

    Example: gridledger scenario run config/scenarios/day-hourly.csv --start +1h --relayer dso-north
    """
    scenario = load_scenario(file)
    first_slot = None
    if start is not None and (start.strip().lower() == "next" or parse_duration(start) is not None):
        client = NodeClient(node)  # relative to the chain's time
        first_slot = rules_of(client.query("/params")).resolve(start, int(client.query("/chain")["time"]))
    elif start is not None:
        first_slot = parse_time(start)  # the runner checks it is a slot start
    accounts, meters = key_names(scenario, relayer)
    keys = Keys(accounts={name: load_key(name, keyring_dir, passphrase_file) for name in accounts},
                meters={name: load_key(name, keyring_dir, passphrase_file) for name in meters})
    runner = Runner(scenario, RpcTransport(node), keys, start=first_slot, relayer=relayer, settle=settle, log=note)
    Output(output.value).records(runner.play(), columns=SUMMARY_COLUMNS)
