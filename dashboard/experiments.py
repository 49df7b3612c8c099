"""Open runs that ``gridledger experiment run`` and ``bench load`` wrote under a results directory.

Nothing is recomputed: a run's own ``report.md`` (tables, plot references)
is rendered as it is, with relative links and images pointed at the
dashboard's file route, and a run without a report (a ``bench load``) shows
its ``summary.json`` figures and its PNG plots. Layout (docs/experiments.md):
``RESULTS/<name>/<timestamp>/`` holding ``report.md`` and/or ``summary.json``.

Only files inside a listed run with a known suffix are ever served, so a path
with ``..`` or a symlink out of the results directory is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt
from markdown_it.token import Token

SERVED_SUFFIXES = {".png": "image/png", ".svg": "image/svg+xml", ".csv": "text/csv; charset=utf-8",
                   ".json": "application/json", ".md": "text/markdown; charset=utf-8",
                   ".txt": "text/plain; charset=utf-8"}
FILES_ROUTE = "/results"
MAX_REPORT_BYTES = 4 * 1024 * 1024


class RunNotFound(Exception):
    """No such run (or file) under the results directory."""


@dataclass(frozen=True)
class Run:
    id: str
    """``<name>/<timestamp>``, relative to the results directory."""
    name: str
    stamp: str
    path: Path
    has_report: bool


def list_runs(root: Path) -> list[Run]:
    """Every run directory (two levels down, holding report.md or summary.json), newest stamp first."""
    runs: list[Run] = []
    if not root.is_dir():
        return runs
    for name_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for run_dir in sorted(p for p in name_dir.iterdir() if p.is_dir()):
            report, summary = run_dir / "report.md", run_dir / "summary.json"
            if report.is_file() or summary.is_file():
                runs.append(Run(id=f"{name_dir.name}/{run_dir.name}", name=name_dir.name, stamp=run_dir.name,
                                path=run_dir, has_report=report.is_file()))
    runs.sort(key=lambda run: (run.stamp, run.name), reverse=True)
    return runs


def find_run(root: Path, run_id: str) -> Run:
    for run in list_runs(root):
        if run.id == run_id:
            return run
    raise RunNotFound(f"no run {run_id!r} in {root}")


def served_file(root: Path, relative: str) -> tuple[Path, str]:
    """(path, media type) of a file of a listed run; ``RunNotFound`` for anything else."""
    base = root.resolve()
    target = (base / relative).resolve()
    media = SERVED_SUFFIXES.get(target.suffix.lower())
    if media is None or not target.is_file() or not target.is_relative_to(base):
        raise RunNotFound(f"no file {relative!r} in the results")
    runs = [run.path.resolve() for run in list_runs(root)]
    if not any(target.is_relative_to(run) for run in runs):
        raise RunNotFound(f"{relative!r} is not part of a run")
    return target, media


def _markdown() -> MarkdownIt:
    # CommonMark with tables; raw HTML in a report is shown as text, never run.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _is_relative_url(url: str) -> bool:
    return bool(url) and not url.startswith(("/", "#")) and ":" not in url.split("/", 1)[0]


ALIGN_CLASSES = {f"text-align:{side}": f"align-{side}" for side in ("left", "center", "right")}


def _rewrite(tokens: list[Token], prefix: str) -> None:
    for token in tokens:
        if token.children:
            _rewrite(token.children, prefix)
        style = token.attrGet("style")
        if isinstance(style, str):  # table alignment as a class: the page's CSP allows no inline styles
            del token.attrs["style"]
            if style in ALIGN_CLASSES:
                token.attrSet("class", ALIGN_CLASSES[style])
        for attr in ("src", "href"):
            value = token.attrGet(attr)
            if isinstance(value, str) and _is_relative_url(value):
                token.attrSet(attr, prefix + quote(value, safe="/#?=&"))


def render_report(run: Run) -> str:
    """The run's report.md as HTML, its relative links and images served from the run's directory."""
    text = (run.path / "report.md").read_bytes()[:MAX_REPORT_BYTES].decode("utf-8", errors="replace")
    md = _markdown()
    tokens = md.parse(text)
    _rewrite(tokens, f"{FILES_ROUTE}/{quote(run.id)}/")
    return str(md.renderer.render(tokens, md.options, {}))


def run_summary(run: Run) -> dict[str, Any]:
    """For a run without report.md: its summary.json's headline figures and its plots."""
    try:
        summary = json.loads((run.path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    rows = []
    if isinstance(summary, dict):
        for key in sorted(summary):
            value = summary[key]
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                rows.append((key, str(value)))
            elif isinstance(value, dict) and {"n", "p50"} <= set(value):
                rows.append((key, ", ".join(f"{k} {value[k]}" for k in ("n", "mean", "p50", "p90", "p99", "max")
                                            if k in value)))
    plots = sorted(p.relative_to(run.path).as_posix() for p in run.path.rglob("*.png"))
    return {"rows": rows, "plots": [f"{FILES_ROUTE}/{quote(run.id)}/{quote(p)}" for p in plots]}
