"""Block retention: the ``retain_height`` the app answers in Commit, so CometBFT prunes old blocks.

CometBFT keeps every block unless the application's Commit answer names a
``retain_height`` above 0; then it deletes the blocks (and their stored ABCI
results) below that height. Pruning is a node-local choice, not consensus:
nodes may keep different histories, and the answer never enters the app hash.

What a node keeps (docs/operators.md, "Pruning"):

* at least ``blocks`` of its newest blocks (``[pruning] retain_blocks`` of the
  node's ``config/gridledger.toml``; 0 keeps every block, an archive node);
* every block since the oldest state-sync snapshot it offers (``interval`` x
  ``keep`` heights), so a node restored from any of them can block-sync on;
* CometBFT itself also keeps the headers and commits of blocks still within
  the evidence window (consensus params ``evidence.max_age_num_blocks`` and
  ``max_age_duration``), whatever the app answers.

The default, 100 000 blocks, is CometBFT's default evidence window in blocks
(``max_age_num_blocks``): the node keeps whole blocks, not only headers, for
as long as misbehaviour in them can still be punished. At one block per
second that is about 28 hours of history; an empty block of a one-validator
chain takes about 2.5 kB in CometBFT's block and state stores (measured), so
some 250 MB plus the transactions and the other validators' signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RETAIN_BLOCKS = 100_000
MIN_RETAIN_BLOCKS = 64
"""Fewer would let the supervisor's start-up re-index of the newest 64 blocks miss blocks (node/supervisor.py)."""


class RetentionError(ValueError):
    """A retention setting that would prune blocks the node still needs."""


@dataclass(frozen=True)
class Retention:
    blocks: int = DEFAULT_RETAIN_BLOCKS
    """Newest blocks always kept; 0 keeps every block."""
    snapshot_interval: int = 0
    """Heights between the state-sync snapshots this node takes (0: it takes none)."""
    snapshot_keep: int = 0
    """How many of those snapshots it keeps."""

    def __post_init__(self) -> None:
        # Each rule one check: a bad config.toml value is refused at start, never applied.
        if self.blocks != 0 and self.blocks < MIN_RETAIN_BLOCKS:
            raise RetentionError(f"retain_blocks must be 0 (keep every block) or at least {MIN_RETAIN_BLOCKS}, "
                                 f"got {self.blocks}")
        if self.snapshot_interval < 0 or self.snapshot_keep < 0:
            raise RetentionError("snapshot interval and keep must not be negative")

    @property
    def window(self) -> int:
        """Newest blocks kept: the configured number, or more to reach back to the oldest snapshot."""
        return max(self.blocks, self.snapshot_interval * self.snapshot_keep)

    def retain_height(self, height: int) -> int:
        """The lowest height to keep once block ``height`` is committed; 0 keeps every block.

        Snapshots are taken at multiples of the interval, so the oldest one
        kept is never below ``height - interval * keep + 1``: keeping the
        newest ``interval * keep`` blocks keeps every block after it.
        """
        if self.blocks == 0:
            return 0
        lowest = height - self.window + 1
        # Nothing to prune yet: CometBFT takes 0 (and 1, its lowest height) as "keep everything".
        return lowest if lowest > 1 else 0
