"""`testnet logs`: the nodes' log files, their tails and what is appended to them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

# --- logs ------------------------------------------------------------------------------


def tail_lines(path: Path, count: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        # CometBFT lines run to a few hundred bytes; read generously, then cut.
        handle.seek(max(0, size - max(64 * 1024, 1024 * count)))
        lines = handle.read().decode("utf-8", "replace").splitlines()
    return lines[-count:] if count else []


def follow(paths: dict[str, Path], stop_after: float | None = None) -> Iterator[tuple[str, str]]:
    """Yield (node, line) for lines appended to the logs from now on (a file has no event to wait on: poll)."""
    offsets = {name: (path.stat().st_size if path.exists() else 0) for name, path in paths.items()}
    return _follow(paths, offsets, stop_after)


def _follow(paths: dict[str, Path], offsets: dict[str, int], stop_after: float | None) -> Iterator[tuple[str, str]]:
    partial = dict.fromkeys(paths, "")
    deadline = None if stop_after is None else time.monotonic() + stop_after
    while deadline is None or time.monotonic() < deadline:
        grew = False
        for name, path in paths.items():
            if not path.exists():
                continue
            if path.stat().st_size < offsets[name]:
                offsets[name] = 0  # truncated or replaced
            with path.open("rb") as handle:
                handle.seek(offsets[name])
                chunk = handle.read()
            if not chunk:
                continue
            grew = True
            offsets[name] += len(chunk)
            text = partial[name] + chunk.decode("utf-8", "replace")
            *complete, partial[name] = text.split("\n")
            for line in complete:
                yield name, line
        if not grew:
            time.sleep(0.25)
