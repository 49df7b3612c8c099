"""The JSON summary of one load run: rates, latency percentiles, rejections, blocks.

Every figure comes with the number of samples behind it (``*_n`` or ``n``), so a
reader can tell a percentile of 10 000 commits from one of 3.

Definitions (times are this client's clock, seconds since the run started):

* offered tx/s: the target rate (transactions due per second by the schedule);
* achieved tx/s: transactions actually submitted / (last submit - first due time);
* committed tx/s: transactions seen in a block with result code 0 / (last such
  commit seen - first submit);
* latency: from submitting ``broadcast_tx_sync`` to seeing the block that holds
  the transaction, for transactions committed with code 0;
* fell behind: a transaction left more than ``BEHIND_TOLERANCE_S`` after its due time.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lab.load.generator import BEHIND_TOLERANCE_S, BlockRecord, LoadResult, TxRecord

SATURATED_BELOW = 0.8


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def distribution(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, p50, p90, p99, max of a sample (None figures when it is empty)."""
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {"n": len(values), "mean": sum(values) / len(values), "p50": percentile(values, 50),
            "p90": percentile(values, 90), "p99": percentile(values, 99), "max": max(values)}


def rejection_counts(records: Sequence[TxRecord]) -> dict[str, int]:
    """Every transaction that did not commit with code 0, by where and why."""
    counts: Counter[str] = Counter()
    for record in records:
        if record.commit_height is not None and record.result_code == 0:
            continue  # committed, even if its CheckTx answer was lost
        if record.submit_s is None:
            counts["not_sent"] += 1
        elif record.error:
            counts[f"rpc:{record.error}"] += 1
        elif record.check_code not in (0, None):
            counts[f"check:{record.check_code}"] += 1
        elif record.commit_height is None:
            counts["not_committed"] += 1
        elif record.result_code != 0:
            counts[f"deliver:{record.result_code}"] += 1
    return dict(sorted(counts.items()))


def block_stats(blocks: Sequence[BlockRecord]) -> dict[str, Any]:
    ordered = sorted(blocks, key=lambda b: b.height)
    intervals = [b.time_unix - a.time_unix for a, b in itertools.pairwise(ordered)
                 if b.height == a.height + 1]
    return {
        "count": len(ordered),
        "first_height": ordered[0].height if ordered else None,
        "last_height": ordered[-1].height if ordered else None,
        "recovered": sum(1 for b in ordered if b.recovered),
        "interval_s": distribution(intervals),
        "txs_per_block": distribution([float(b.num_txs) for b in ordered]),
        "bytes_per_block": distribution([float(b.bytes) for b in ordered]),
    }


def steady_committed_tps(records: Sequence[TxRecord], duration_s: float) -> float | None:
    """Commits (code 0) seen between duration/4 and duration, per second of that window."""
    start, end = duration_s / 4, duration_s
    if end <= start:
        return None
    seen = sum(1 for r in records if r.result_code == 0 and r.commit_seen_s is not None
               and start <= r.commit_seen_s < end)
    return seen / (end - start)


def summarize(result: LoadResult) -> dict[str, Any]:
    records, settings = result.records, result.settings
    sent = [r for r in records if r.submit_s is not None]
    accepted = [r for r in sent if r.check_code == 0]
    committed = [r for r in sent if r.commit_seen_s is not None and r.result_code == 0]
    lags = [r.send_lag_s for r in sent if r.send_lag_s is not None]
    behind = [r for r in sent if (r.send_lag_s or 0.0) > BEHIND_TOLERANCE_S]
    send_window = max((r.submit_s or 0.0 for r in sent), default=0.0)
    first_submit = min((r.submit_s or 0.0 for r in sent), default=0.0)
    last_commit = max((r.commit_seen_s or 0.0 for r in committed), default=0.0)
    commit_window = last_commit - first_submit
    sizes = [float(r.size) for r in records]
    steady = steady_committed_tps(records, settings.duration_s)
    saturated = steady is not None and steady < SATURATED_BELOW * settings.rate
    errors, warnings = list(result.errors), []
    undrained = int(result.notes.get("undrained", 0))
    if not result.drained and undrained:
        message = (f"{undrained} accepted transactions were not seen committed within "
                   f"{settings.drain_timeout_s:g}s after sending ended")
        if saturated:
            warnings.append(message + " (expected past saturation: the backlog outlives the drain)")
        else:
            errors.append(message)
    return {
        "workload": result.workload,
        "label": settings.label,
        "nodes": list(settings.nodes),
        "started_unix": result.started_unix,
        "duration_s": settings.duration_s,
        "errors": errors,
        "warnings": warnings,
        "drained": result.drained,
        "planned": len(records),
        "sent": len(sent),
        "accepted": len(accepted),
        "committed": len(committed),
        "offered_tps": settings.rate,
        "achieved_tps": len(sent) / send_window if send_window > 0 else None,
        "committed_tps": len(committed) / commit_window if commit_window > 0 else None,
        "steady_committed_tps": steady,
        "saturated": saturated,
        "transport": settings.transport,
        "connections_per_node": settings.connections,
        "resent_after_stale_nonce": sum(1 for r in records if r.retry_of is not None),
        "latency_s": distribution([r.latency_s for r in committed if r.latency_s is not None]),
        "check_latency_s": distribution([r.check_s - r.submit_s for r in sent
                                         if r.check_s is not None and r.submit_s is not None]),
        "send_lag_s": distribution(lags),
        "fell_behind": {"n": len(behind), "tolerance_s": BEHIND_TOLERANCE_S,
                        "first_s": min((r.scheduled_s for r in behind), default=None),
                        "last_s": max((r.scheduled_s for r in behind), default=None)},
        "rejections": rejection_counts(records),
        "kinds": dict(sorted(Counter(r.kind for r in records).items())),
        "tx_bytes": distribution(sizes),
        "blocks": block_stats(result.blocks),
        "notes": dict(result.notes),
    }


def committed_per_second(records: Sequence[TxRecord]) -> list[tuple[int, int]]:
    """(second since start, transactions seen committed with code 0 in that second), no gaps."""
    seconds = Counter(int(r.commit_seen_s) for r in records if r.commit_seen_s is not None and r.result_code == 0)
    if not seconds:
        return []
    return [(s, seconds.get(s, 0)) for s in range(0, max(seconds) + 1)]


def median_and_spread(values: list[float]) -> tuple[float, float, float] | None:
    """(median, min, max) of repeated figures; None without values."""
    if not values:
        return None
    return statistics.median(values), min(values), max(values)
