"""Files a load run leaves behind: per-tx CSV, JSON summary, PNG plots, and report.md.

Plots are drawn with matplotlib's non-interactive Agg backend (no display
needed); every series label carries its sample count.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # the backend is chosen before pyplot loads

from abci_app import version
from lab.cluster import THROUGHPUT_SETTINGS
from lab.load.generator import LoadResult, write_blocks_csv, write_csv
from lab.load.stats import committed_per_second, median_and_spread, summarize

if TYPE_CHECKING:  # lab.experiment imports this module (lazily: matplotlib loads only for reports)
    from lab.experiment import ExperimentOutcome, RunOutcome
from node import cometbft

PLOT_FILES = {"latency_cdf": "latency_cdf.png", "throughput": "committed_tps.png",
              "block_interval": "block_interval.png"}


# -- plots --------------------------------------------------------------------------------
def plot_latency_cdf(series: Mapping[str, Sequence[float]], path: Path, title: str = "Commit latency") -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, values in series.items():
        ordered = sorted(values)
        if not ordered:
            continue
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, fractions, where="post", label=f"{label} (n={len(ordered)})")
    ax.set_xlabel("latency: submit to commit seen (s)")
    ax.set_ylabel("fraction of committed transactions")
    ax.set_ylim(0, 1.01)
    _finish(fig, ax, path, title)


def plot_throughput(series: Mapping[str, Sequence[tuple[int, int]]], path: Path,
                    title: str = "Committed transactions per second") -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, points in series.items():
        if not points:
            continue
        total = sum(count for _, count in points)
        ax.plot([s for s, _ in points], [c for _, c in points], drawstyle="steps-post",
                label=f"{label} (n={total} txs)")
    ax.set_xlabel("time since start of load (s)")
    ax.set_ylabel("committed tx/s")
    _finish(fig, ax, path, title)


def plot_block_intervals(series: Mapping[str, Sequence[tuple[float, float]]], path: Path,
                         title: str = "Block interval (header times)") -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, points in series.items():
        if not points:
            continue
        ax.plot([t for t, _ in points], [i for _, i in points], marker=".", linewidth=0.8,
                label=f"{label} (n={len(points)} intervals)")
    ax.set_xlabel("time since start of load (s)")
    ax.set_ylabel("interval to previous block (s)")
    _finish(fig, ax, path, title)


def _finish(fig: Any, ax: Any, path: Path, title: str) -> None:
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def block_interval_points(result: LoadResult) -> list[tuple[float, float]]:
    """(header time relative to the run's start, interval to the previous block) for consecutive heights."""
    ordered = sorted(result.blocks, key=lambda b: b.height)
    return [(b.time_unix - result.started_unix, b.time_unix - a.time_unix)
            for a, b in itertools.pairwise(ordered) if b.height == a.height + 1]


def latencies(result: LoadResult) -> list[float]:
    return [r.latency_s for r in result.records if r.latency_s is not None and r.result_code == 0]


# -- one run --------------------------------------------------------------------------------
def write_run(result: LoadResult, outdir: Path) -> dict[str, Any]:
    """Write txs.csv, blocks.csv, summary.json and the three plots; return the summary."""
    outdir.mkdir(parents=True, exist_ok=True)
    write_csv(result.records, outdir / "txs.csv")
    write_blocks_csv(result.blocks, outdir / "blocks.csv")
    summary = summarize(result)
    label = result.settings.label or result.workload
    plot_latency_cdf({label: latencies(result)}, outdir / PLOT_FILES["latency_cdf"])
    plot_throughput({label: committed_per_second(result.records)}, outdir / PLOT_FILES["throughput"])
    plot_block_intervals({label: block_interval_points(result)}, outdir / PLOT_FILES["block_interval"])
    summary["files"] = {"txs_csv": "txs.csv", "blocks_csv": "blocks.csv", **PLOT_FILES}
    (outdir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


# -- machine and versions ---------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _command_output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_dirty() -> str:
    """Whether the work tree differs from its commit: "no", "yes (N paths)", or "unknown" outside git."""
    status = _command_output(["git", "-C", str(cometbft.REPO_ROOT), "status", "--porcelain",
                              "--untracked-files=no"])
    if status == "unknown":
        return status
    changed = len(status.splitlines())
    return f"yes ({changed} paths)" if changed else "no"


def machine_info() -> dict[str, Any]:
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        comet_binary = str(cometbft.binary())
    except FileNotFoundError:
        comet_binary = ""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(memory_kb / 2**20, 1) if memory_kb else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "gridledger": version(),
        "git_commit": _command_output(["git", "-C", str(cometbft.REPO_ROOT), "rev-parse", "--short", "HEAD"]),
        "git_dirty": git_dirty(),
        "cometbft_pinned": cometbft.pinned_version(),
        "cometbft_binary": _command_output([comet_binary, "version"]) if comet_binary else "missing",
    }


# -- numbers for people ------------------------------------------------------------------
def fmt(value: Any, digits: int = 1, scale: float = 1.0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value * scale:.{digits}f}{unit}"


def fmt_ms(value: Any) -> str:
    return fmt(value, 0, 1000.0)


def ratio(ours: Any, base: Any) -> str:
    if ours is None or base in (None, 0):
        return "n/a"
    return f"{ours / base:.2f}"


# -- a whole experiment ------------------------------------------------------------------
def _kv_twin(runs: Sequence[RunOutcome], run: RunOutcome) -> RunOutcome | None:
    for other in runs:
        if (other.app == "kvstore" and other.validators == run.validators and other.repetition == run.repetition
                and other.timeout_commit == run.timeout_commit and other.rate == run.rate):
            return other
    return None


def _groups(runs: Sequence[RunOutcome]) -> list[tuple[int, str]]:
    seen: dict[tuple[int, str], None] = {}
    for run in runs:
        seen[(run.validators, run.timeout_commit)] = None
    return list(seen)


def _group_plots(outcome: ExperimentOutcome, validators: int, timeout_commit: str) -> dict[str, str]:
    results = {f"{r.app} @ {r.rate:g} tx/s": r.result for r in outcome.runs
               if r.validators == validators and r.timeout_commit == timeout_commit and r.result is not None
               and r.repetition == 0}
    slug = f"v{validators}-tc{timeout_commit}"
    files = {kind: f"plots/{slug}-{name}" for kind, name in PLOT_FILES.items()}
    (outcome.directory / "plots").mkdir(exist_ok=True)
    title = f"{validators} validator(s), timeout_commit {timeout_commit}"
    plot_latency_cdf({label: latencies(result) for label, result in results.items()},
                     outcome.directory / files["latency_cdf"], f"Commit latency, {title}")
    plot_throughput({label: committed_per_second(result.records) for label, result in results.items()},
                    outcome.directory / files["throughput"], f"Committed tx/s, {title}")
    plot_block_intervals({label: block_interval_points(result) for label, result in results.items()},
                         outcome.directory / files["block_interval"], f"Block interval, {title}")
    return files


def _run_entries(outcome: ExperimentOutcome) -> list[dict[str, Any]]:
    return [{"app": r.app, "validators": r.validators, "timeout_commit": r.timeout_commit, "rate": r.rate,
             "repetition": r.repetition, "summary": r.summary} for r in outcome.runs]


def _overview_plot(outcome: ExperimentOutcome) -> str | None:
    return plot_overview(_run_entries(outcome), outcome.directory, list(outcome.ceilings.values()))


def plot_overview(runs: Sequence[Mapping[str, Any]], directory: Path,
                  ceilings: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """Sustained committed tx/s and p50 latency against offered rate: one colour per (validators,
    timeout_commit, app), solid for gridledger, dashed for kvstore, the generator's ceiling as a dotted line.
    ``runs`` are the entries of an experiment's summary.json (the first repetition is drawn)."""
    lines: dict[tuple[int, str, str], list[tuple[float, float, float]]] = {}
    for run in runs:
        summary = run["summary"]
        if summary is None or run.get("repetition", 0) != 0:
            continue
        sustained = summary.get("steady_committed_tps", summary["committed_tps"])
        if sustained is None:
            continue
        key = (run["validators"], run["timeout_commit"], run["app"])
        lines.setdefault(key, []).append((run["rate"], sustained, summary["latency_s"]["p50"] or 0.0))
    if not lines:
        return None
    series = sorted(lines)
    colours = {key: plt.get_cmap("tab10")(i % 10) for i, key in enumerate(series)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    for key in series:
        validators, timeout_commit, app = key
        points = sorted(lines[key])
        style = dict(linestyle="-" if app == "gridledger" else "--", marker="o" if app == "gridledger" else "s",
                     color=colours[key], label=f"{app}, {validators} val, tc {timeout_commit}")
        left.plot([p[0] for p in points], [p[1] for p in points], **style)
        right.plot([p[0] for p in points], [p[2] * 1000 for p in points], **style)
    rates = sorted({run["rate"] for run in runs})
    left.plot([rates[0], rates[-1]], [rates[0], rates[-1]], ":", color="grey", linewidth=0.8,
              label="committed = offered")
    for ceiling in ceilings:
        if ceiling.get("ceiling_tps") and ceiling.get("repetition", 0) == 0:
            left.axhline(ceiling["ceiling_tps"], linestyle=(0, (1, 3)), linewidth=1.4, color="black",
                         label=f"generator ceiling vs kvstore, {ceiling['validators']} val "
                               f"({ceiling['ceiling_tps']:.0f} tx/s, ended by {ceiling['limit']})")
    if rates[-1] / rates[0] >= 8:
        for ax in (left, right):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(rates, [f"{r:g}" for r in rates], rotation=45)
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left.set_xlabel("offered tx/s")
    left.set_ylabel("committed tx/s (sustained: 2nd-4th quarter of the run)")
    left.set_title("Throughput")
    right.set_xlabel("offered tx/s")
    right.set_ylabel("p50 commit latency (ms)")
    right.set_title("Median latency (sample counts in the report table)")
    for ax in (left, right):
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = "plots/overview.png"
    (directory / "plots").mkdir(exist_ok=True)
    fig.savefig(directory / path, dpi=110)
    plt.close(fig)
    return path


def _problems(outcome: ExperimentOutcome) -> tuple[list[str], list[str]]:
    """(errors, warnings): errors are failures of the run; warnings are results worth a look."""
    errors = list(outcome.errors)
    warnings: list[str] = []
    for group, apps in outcome.applied_settings.items():
        if len({json.dumps(values, sort_keys=True) for values in apps.values()}) > 1:
            errors.append(f"{group}: the applications ran with different CometBFT settings: {apps}")
    for run in outcome.runs:
        if run.summary is None:
            continue
        slug = run.directory.rsplit("/", 1)[-1]
        errors.extend(f"{slug}: {message}" for message in run.summary["errors"])
        warnings.extend(f"{slug}: {message}" for message in run.summary.get("warnings", []))
        if run.summary["rejections"]:
            warnings.append(f"{slug}: not committed with code 0: {run.summary['rejections']}")
        behind = run.summary["fell_behind"]["n"]
        if behind:
            notes = run.summary["notes"]
            lag = run.summary["send_lag_s"]
            warnings.append(f"{slug}: {behind} of {run.summary['sent']} transactions left more than "
                            f"{run.summary['fell_behind']['tolerance_s'] * 1000:.0f} ms after their due time "
                            f"(send lag p50 {fmt_ms(lag['p50'])} ms, p99 {fmt_ms(lag['p99'])} ms, max "
                            f"{fmt_ms(lag['max'])} ms; achieved {fmt(run.summary['achieved_tps'])} of "
                            f"{run.rate:g} tx/s offered): "
                            f"{notes.get('backlogged_sends', 0)} requests written behind unsent bytes (the nodes "
                            f"read slower), {notes.get('wait_idle_account_s', 0):.1f} s waiting for an idle account, "
                            f"{notes.get('late_wakeups', 0)} late wake-ups (the generator got no CPU in time), "
                            f"generator CPU {notes.get('generator_cpu_share')} of a core")
    return errors, warnings


def _result_rows(outcome: ExperimentOutcome) -> list[str]:
    repeated = outcome.config.repeat > 1
    rows = ["| validators | timeout_commit | offered tx/s | app |" + (" rep |" if repeated else "")
            + " sent | committed | achieved tx/s | committed tx/s | sustained tx/s "
            "| latency p50 / p90 / p99 / max ms (n) | blocks (n) | block interval p50 ms | txs/block mean "
            "| generator CPU (share of a core) | files |",
            "|---:|---|---:|---|" + ("---:|" if repeated else "") + "---:|" * 5 + "---|" + "---:|" * 4 + "---|"]
    for run in outcome.runs:
        head = f"| {run.validators} | {run.timeout_commit} | {run.rate:g} | {run.app} |" + \
            (f" {run.repetition + 1} |" if repeated else "")
        if run.summary is None:
            why = f"skipped: {run.skipped}" if run.skipped else f"failed: {run.error}"
            rows.append(f"{head} {why} ||||||||||")
            continue
        s = run.summary
        lat, blocks = s["latency_s"], s["blocks"]
        mark = " (saturated)" if s.get("saturated") else ""
        rows.append(
            f"{head} {s['sent']} | {s['committed']} "
            f"| {fmt(s['achieved_tps'])} | {fmt(s['committed_tps'])} | {fmt(s.get('steady_committed_tps'))}{mark} "
            f"| {fmt_ms(lat['p50'])} / {fmt_ms(lat['p90'])} / {fmt_ms(lat['p99'])} / {fmt_ms(lat['max'])} "
            f"(n={lat['n']}) | {blocks['count']} | {fmt_ms(blocks['interval_s']['p50'])} "
            f"| {fmt(blocks['txs_per_block']['mean'])} | {fmt(s['notes'].get('generator_cpu_share'), 2)} "
            f"| [csv]({run.directory}/txs.csv) [json]({run.directory}/summary.json) "
            f"[cdf]({run.directory}/{PLOT_FILES['latency_cdf']}) |")
    return rows


def _ratio_rows(outcome: ExperimentOutcome) -> list[str]:
    rows = ["| validators | timeout_commit | offered tx/s | committed tx/s: gridledger / kvstore = ratio "
            "| p50 latency ms: gridledger / kvstore = ratio | p99 latency ms: gridledger / kvstore = ratio "
            "| samples (gridledger / kvstore) |",
            "|---:|---|---:|---|---|---|---|"]
    for run in outcome.runs:
        twin = _kv_twin(outcome.runs, run)
        if run.app != "gridledger" or twin is None or run.summary is None or twin.summary is None:
            continue
        ours, base = run.summary, twin.summary
        rows.append(
            f"| {run.validators} | {run.timeout_commit} | {run.rate:g} "
            f"| {fmt(ours['committed_tps'])} / {fmt(base['committed_tps'])} = "
            f"**{ratio(ours['committed_tps'], base['committed_tps'])}** "
            f"| {fmt_ms(ours['latency_s']['p50'])} / {fmt_ms(base['latency_s']['p50'])} = "
            f"**{ratio(ours['latency_s']['p50'], base['latency_s']['p50'])}** "
            f"| {fmt_ms(ours['latency_s']['p99'])} / {fmt_ms(base['latency_s']['p99'])} = "
            f"**{ratio(ours['latency_s']['p99'], base['latency_s']['p99'])}** "
            f"| {ours['latency_s']['n']} / {base['latency_s']['n']} |")
    return rows


def saturation_points(outcome: ExperimentOutcome) -> list[dict[str, Any]]:
    """Per (validators, timeout_commit, repetition) and app: the highest sustained committed tx/s and where."""
    best: dict[tuple[int, str, int, str], dict[str, Any]] = {}
    for run in outcome.runs:
        if run.summary is None or run.summary.get("steady_committed_tps") is None:
            continue
        key = (run.validators, run.timeout_commit, run.repetition, run.app)
        sustained = run.summary["steady_committed_tps"]
        entry = best.setdefault(key, {"validators": run.validators, "timeout_commit": run.timeout_commit,
                                      "repetition": run.repetition, "app": run.app, "max_sustained_tps": -1.0,
                                      "at_offered": None, "saturated_at": None})
        if sustained > entry["max_sustained_tps"]:
            entry["max_sustained_tps"], entry["at_offered"] = sustained, run.rate
        if run.summary.get("saturated") and entry["saturated_at"] is None:
            entry["saturated_at"] = run.rate
    return list(best.values())


def _saturation_rows(outcome: ExperimentOutcome) -> list[str]:
    points = saturation_points(outcome)
    rows = ["| validators | timeout_commit | app | highest sustained committed tx/s (at offered) "
            "| first saturated offered rate | ratio to kvstore |", "|---:|---|---|---|---:|---:|"]
    for point in points:
        if point["repetition"] != 0:
            continue
        twin = next((p for p in points if p["app"] == "kvstore" and p["repetition"] == 0
                     and p["validators"] == point["validators"] and p["timeout_commit"] == point["timeout_commit"]),
                    None)
        saturated = f"{point['saturated_at']:g}" if point["saturated_at"] is not None else "not reached"
        rows.append(f"| {point['validators']} | {point['timeout_commit']} | {point['app']} "
                    f"| {fmt(point['max_sustained_tps'])} ({point['at_offered']:g}) | {saturated} "
                    f"| {ratio(point['max_sustained_tps'], twin['max_sustained_tps']) if twin else 'n/a'} |")
    return rows


def _ceiling_lines(outcome: ExperimentOutcome) -> list[str]:
    if not outcome.ceilings:
        reason = "no kvstore baseline in this preset" if not outcome.config.baseline else "the probe did not run"
        return [f"Not measured ({reason}).", ""]
    lines = ["Short open-loop ramps against the kvstore network of each group, after its recorded rates: how "
             "many transactions the generator itself can hand to CometBFT (pre-signed, over "
             f"{outcome.config.connections} {outcome.config.transport} connection(s) per node). A step is held "
             "when at most 5 % of its transactions left late and at most 1 % got an error instead of a CheckTx "
             "answer. Ended by `nodes`: the nodes' RPC and mempool took no more while the generator had CPU to "
             "spare; `generator`: the generator used 90 % or more of a core; `max_rate`: every step held.", "",
             "| group | held offered tx/s | highest accepted tx/s | ended by | steps: offered -> accepted/s "
             "(late share, generator CPU share of a core) |", "|---|---:|---:|---|---|"]
    for key, ceiling in outcome.ceilings.items():
        steps = "; ".join(f"{s['offered_tps']:g} -> {s['accepted_tps']:g} ({s['behind_share']:.0%}, "
                          f"{fmt(s['generator_cpu_share'], 2)})" for s in ceiling["steps"])
        lines.append(f"| {key} | {fmt(ceiling['held_tps'], 0)} | {fmt(ceiling['ceiling_tps'], 0)} "
                     f"| {ceiling['limit'] or ceiling['error'] or 'n/a'} | {steps} |")
    lines += ["", _which_side(outcome), ""]
    return lines


def _which_side(outcome: ExperimentOutcome) -> str:
    """One sentence per application and group: did it saturate below what the generator could offer?"""
    sentences = []
    points = saturation_points(outcome)
    for ceiling in outcome.ceilings.values():
        top, limit = ceiling.get("ceiling_tps"), ceiling.get("limit")
        if top is None or ceiling.get("repetition", 0) != 0:
            continue
        cpu = max((s.get("generator_cpu_share") or 0.0 for s in ceiling["steps"]), default=0.0)
        for point in points:
            if (point["validators"], point["timeout_commit"], point["repetition"]) != \
                    (ceiling["validators"], ceiling["timeout_commit"], 0):
                continue
            reached = point["max_sustained_tps"]
            if point["saturated_at"] is None:
                verdict = f"did not saturate at the offered rates (highest sustained {reached:.0f} tx/s)"
            elif reached < 0.8 * top or limit == "nodes":
                verdict = (f"saturated at {reached:.0f} tx/s sustained; the generator handed the nodes up to "
                           f"{top:.0f} tx/s using at most {cpu:.0%} of a core, so the chain, not the generator, "
                           "was the limit")
            else:
                verdict = (f"reached {reached:.0f} tx/s sustained, close to the {top:.0f} tx/s the generator "
                           f"managed (ended by {limit}): the generator may have been the limit")
            sentences.append(f"{point['app']} ({point['validators']} val, tc {point['timeout_commit']}) {verdict}.")
    return " ".join(sentences)


def _repeat_rows(outcome: ExperimentOutcome) -> list[str]:
    """Medians over repetitions, with their spread (min-max)."""
    cells: dict[tuple[int, str, float, str], list[dict[str, Any]]] = {}
    for run in outcome.runs:
        if run.summary is not None:
            cells.setdefault((run.validators, run.timeout_commit, run.rate, run.app), []).append(run.summary)
    rows = ["| validators | timeout_commit | offered tx/s | app | runs | sustained tx/s median (min-max) "
            "| p50 latency ms median (min-max) |", "|---:|---|---:|---|---:|---|---|"]
    for (validators, timeout_commit, rate, app), summaries in cells.items():
        sustained = median_and_spread([s["steady_committed_tps"] for s in summaries
                                       if s.get("steady_committed_tps") is not None])
        p50 = median_and_spread([s["latency_s"]["p50"] * 1000 for s in summaries if s["latency_s"]["p50"]])
        rows.append(f"| {validators} | {timeout_commit} | {rate:g} | {app} | {len(summaries)} "
                    f"| {_spread(sustained)} | {_spread(p50, 0)} |")
    return rows


def _spread(figures: tuple[float, float, float] | None, digits: int = 1) -> str:
    if figures is None:
        return "n/a"
    median, low, high = figures
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _settings_rows(outcome: ExperimentOutcome) -> list[str]:
    why = {setting.name: setting.why for setting in THROUGHPUT_SETTINGS}
    chosen = outcome.config.settings()["cometbft"]
    applied: dict[str, dict[str, Any]] = {}
    for group_apps in outcome.applied_settings.values():
        for app, values in group_apps.items():
            applied.setdefault(app, values)
    apps = sorted(applied)
    header = ["config.toml setting", "chosen", *(f"{app} nodes" for app in apps), "why"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, value in chosen.items():
        cells = [f"`{name}`", f"`{json.dumps(value)}`", *(f"`{json.dumps(applied[app].get(name))}`" for app in apps),
                 why.get(name, "set by the preset")]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def render_report(outcome: ExperimentOutcome, machine: dict[str, Any],
                  group_plots: dict[tuple[int, str], dict[str, str]], overview: str | None) -> str:
    config = outcome.config
    errors, warnings = _problems(outcome)
    lines = [f"# Experiment `{config.name}`", ""]
    if errors:
        lines += [f"**This run had {len(errors)} error(s); figures below may be incomplete:**", ""]
        lines += [f"- {e}" for e in errors] + [""]
    else:
        lines += ["No errors: every planned run completed and every accepted transaction was seen committed "
                  "(or the run was past saturation, see the warnings).", ""]
    if warnings:
        lines += ["Warnings:", ""] + [f"- {w}" for w in warnings] + [""]
    took = (outcome.finished_unix - outcome.started_unix) / 60
    started = datetime.fromtimestamp(outcome.started_unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    load = outcome.load_average
    lines += [config.description, "", f"Started {started}, took {took:.1f} min. Preset: `{config.source}`. "
              f"Each cell: {config.duration_s:g} s of open-loop load from {config.accounts} accounts, "
              f"mix orders:cancels:transfers = {config.mix}, workload seed {config.seed}; kvstore transactions are "
              f"{outcome.kv_tx_bytes} bytes (the mean size of the gridledger mix). Every transaction was signed "
              f"and serialised before its run's clock started and sent over {config.connections} "
              f"{config.transport} connection(s) per node.", "",
              f"Host load average (1/5/15 min): {_load(load.get('start'))} at the start, {_load(load.get('end'))} "
              f"at the end. Git commit {machine.get('git_commit')}, work tree modified: {machine.get('git_dirty')}.",
              ""]
    lines += ["## Generator ceiling (against kvstore)", "", *_ceiling_lines(outcome)]
    lines += ["## Saturation", "", "Sustained committed tx/s: this run's commits seen from the end of the first "
              "quarter of the schedule to its end, per second. A run is saturated when that is below 0.8 x the "
              "offered rate" + ("; later rates of a saturated application were skipped" if
                                config.stop_after_saturation else "") + ".", "", *_saturation_rows(outcome), ""]
    lines += ["## Results", "", *_result_rows(outcome), ""]
    if config.repeat > 1:
        lines += [f"## Medians over {config.repeat} repetitions", "", *_repeat_rows(outcome), ""]
    ratios = _ratio_rows(outcome)
    if len(ratios) > 2:
        lines += ["## Ratio to the consensus engine alone (kvstore, same machine, same run)", "",
                  "A throughput ratio of 1.00 means gridledger committed as many transactions per second as "
                  "CometBFT's built-in kvstore at the same offered rate; a latency ratio above 1 means slower "
                  "commits.", "", *ratios, ""]
    lines += ["## Plots", ""]
    if overview:
        lines += [f"![throughput and latency against offered rate]({overview})", ""]
    for (validators, timeout_commit), files in group_plots.items():
        lines += [f"### {validators} validator(s), timeout_commit {timeout_commit}", "",
                  f"![latency CDF]({files['latency_cdf']})", "",
                  f"![committed tx/s over time]({files['throughput']})", "",
                  f"![block interval over time]({files['block_interval']})", ""]
    lines += ["## CometBFT settings", "", "Chosen for throughput experiments and applied identically to both "
              "applications; the node columns are the values read back from the nodes' config.toml.", "",
              *_settings_rows(outcome), ""]
    lines += ["## Machine and versions", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in machine.items()] + [""]
    lines += ["## Settings", "", "```json", json.dumps(config.settings(), indent=2), "```", "",
              "All nodes run on 127.0.0.1 on this one machine, together with the load generator. Latency is "
              "measured from submitting `broadcast_tx_sync` to this client receiving the NewBlock event of the "
              "block holding the transaction (websocket on node 0). Definitions: docs/experiments.md.", ""]
    return "\n".join(lines)


def _load(values: Sequence[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "n/a"


def write_experiment(outcome: ExperimentOutcome) -> Path:
    """summary.json, plots/ and report.md for a finished experiment; returns the report's path."""
    machine = machine_info()
    group_plots = {group: _group_plots(outcome, *group) for group in _groups(outcome.runs)}
    overview = _overview_plot(outcome)
    errors, warnings = _problems(outcome)
    summary = {"name": outcome.config.name, "settings": outcome.config.settings(), "machine": machine,
               "errors": errors, "warnings": warnings, "kv_tx_bytes": outcome.kv_tx_bytes,
               "started_unix": outcome.started_unix, "finished_unix": outcome.finished_unix,
               "load_average": outcome.load_average, "generator_ceiling": outcome.ceilings,
               "saturation": saturation_points(outcome), "cometbft_applied": outcome.applied_settings,
               "runs": [{"app": r.app, "validators": r.validators, "timeout_commit": r.timeout_commit, "rate": r.rate,
                         "repetition": r.repetition, "directory": r.directory, "error": r.error,
                         "skipped": r.skipped, "summary": r.summary} for r in outcome.runs]}
    (outcome.directory / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    path: Path = outcome.directory / "report.md"
    path.write_text(render_report(outcome, machine, group_plots, overview))
    return path
