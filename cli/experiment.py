"""`gridledger experiment run FILE`: a consensus and latency experiment matrix, end to end.

    gridledger experiment run config/experiments/smoke.toml
    gridledger experiment run config/experiments/saturation.toml
    gridledger experiment run config/experiments/latency-study.toml --results results --repeat 3

Exit codes: 0 every run completed without errors; 2 the experiment file is
invalid (or the pinned CometBFT is missing); 3 the report lists errors (a run
failed, a node died, or commits went missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.options import OutputOpt
from cli.output import Format, Output, note
from node import cometbft

experiment_app = typer.Typer(help="Consensus and latency experiments on local testnets (with a kvstore baseline).",
                             no_args_is_help=True)


def _row(run: Any) -> dict[str, Any]:
    summary = run.summary or {}
    latency = summary.get("latency_s") or {}
    return {"app": run.app, "validators": run.validators, "timeout_commit": run.timeout_commit,
            "offered_tps": run.rate, "repetition": run.repetition + 1,
            "committed_tps": _round(summary.get("committed_tps")),
            "sustained_tps": _round(summary.get("steady_committed_tps")),
            "p50_ms": _ms(latency.get("p50")), "p99_ms": _ms(latency.get("p99")), "n": latency.get("n", 0),
            "error": run.error or (f"skipped: {run.skipped}" if run.skipped else "")}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


@experiment_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="Experiment file, e.g. config/experiments/smoke.toml.")],
    results: Annotated[Path, typer.Option("--results", help="Root of the output (results/NAME/<timestamp>/).")] =
        Path("results"),
    repeat: Annotated[int, typer.Option("--repeat", min=1, max=20, help="Run the whole matrix N times; the report "
                                        "adds medians with their spread.")] = 1,
    output: OutputOpt = Format.table,
) -> None:
    """Init, start, warm up, load, collect and tear down every cell of the matrix; write report.md.

    Example: gridledger experiment run config/experiments/smoke.toml
    """
    from lab.experiment import ExperimentFailed, check_cometbft_settings, load_config, run_experiment

    parsed = load_config(config)
    cometbft.binary()
    check_cometbft_settings(parsed)
    outcome = run_experiment(parsed, results, progress=note, repeat=repeat)
    report = outcome.directory / "report.md"
    Output(output.value).records([_row(r) for r in outcome.runs], title=f"report: {report}")
    note(f"report: {report}")
    errors = len(outcome.errors) + sum(len((r.summary or {}).get("errors", [])) for r in outcome.runs)
    if errors:
        raise ExperimentFailed(f"the experiment had {errors} error(s); they are listed at the top of the report")
