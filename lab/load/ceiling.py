"""The generator's own ceiling: a short ramp of offered rates against the kvstore baseline.

A report that says "gridledger saturates at X tx/s" is only worth something if
the generator could offer more than X. So every experiment measures, in the
same run and on the same network settings, how much the generator can push
into CometBFT's built-in kvstore, whose CheckTx costs next to nothing: short
open-loop loads at rising rates (``start_rate``, doubling, up to
``max_rate``), each ``step_s`` long, until a step is not held.

A step is *held* when at most ``HELD_BEHIND_SHARE`` of its transactions left
late and at most ``HELD_ERROR_SHARE`` got an error instead of a CheckTx answer
(mempool full, timeout) or a refusal. The result names what ended the ramp:

* ``generator``: a step was not held while the generator's process used at
  least ``CPU_BOUND_SHARE`` of a core: the generator itself is the limit;
* ``nodes``: a step was not held although the generator had CPU to spare: the
  nodes' RPC and mempool could not take more (CometBFT's admission, on the
  cores the generator shares with them);
* ``max_rate``: every step up to ``max_rate`` was held.

``ceiling_tps`` is the highest rate of CheckTx-accepted transactions over the
steps (accepted / time from first submission to last answer), ``held_tps``
the highest offered rate that was held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from lab.load import LoadSetupError
from lab.load.accounts import LoadAccount
from lab.load.generator import BEHIND_TOLERANCE_S, LoadResult, LoadSettings, run_load
from lab.load.workload import KvWorkload

HELD_BEHIND_SHARE = 0.05
HELD_ERROR_SHARE = 0.01
CPU_BOUND_SHARE = 0.9


@dataclass(frozen=True)
class CeilingSettings:
    start_rate: float = 500.0
    max_rate: float = 8000.0
    step_s: float = 3.0

    def __post_init__(self) -> None:
        if self.start_rate <= 0 or self.max_rate < self.start_rate or self.step_s <= 0:
            raise LoadSetupError("ceiling: need 0 < start_rate <= max_rate and step_s > 0")

    def rates(self) -> list[float]:
        rates, rate = [], self.start_rate
        while rate <= self.max_rate:
            rates.append(rate)
            rate *= 2
        return rates


@dataclass(frozen=True)
class CeilingStep:
    offered_tps: float
    sent: int
    accepted: int
    errors: int
    """Transactions answered with an error instead of CheckTx (mempool full, timeout, transport)."""
    refused: int
    """Transactions CheckTx refused (kvstore refuses nothing it can parse: many mean these are no kvstore nodes)."""
    achieved_tps: float
    """Submitted per second of the step."""
    accepted_tps: float
    """CheckTx-accepted per second, from the first submission to the last answer."""
    behind_share: float
    check_p50_ms: float | None
    generator_cpu_share: float | None
    held: bool


@dataclass
class CeilingResult:
    settings: CeilingSettings
    transport: str
    connections: int
    steps: list[CeilingStep] = field(default_factory=list)
    limit: str = ""
    error: str = ""

    @property
    def ceiling_tps(self) -> float | None:
        return max((s.accepted_tps for s in self.steps), default=None)

    @property
    def held_tps(self) -> float | None:
        return max((s.offered_tps for s in self.steps if s.held), default=None)

    def as_dict(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings), "transport": self.transport, "connections": self.connections,
                "ceiling_tps": self.ceiling_tps, "held_tps": self.held_tps, "limit": self.limit,
                "error": self.error, "steps": [asdict(s) for s in self.steps]}


def step_figures(result: LoadResult) -> CeilingStep:
    """What one ramp step shows about the generator (from the answers, not the commits)."""
    rate = result.settings.rate
    sent = [r for r in result.records if r.submit_s is not None]
    answered = [r for r in sent if r.check_s is not None]
    accepted = [r for r in answered if r.check_code == 0]
    errors = sum(1 for r in answered if r.error)
    refused = sum(1 for r in answered if r.check_code not in (0, None))
    behind = sum(1 for r in sent if (r.send_lag_s or 0.0) > BEHIND_TOLERANCE_S)
    first = min((r.submit_s or 0.0 for r in sent), default=0.0)
    last_answer = max((r.check_s or 0.0 for r in answered), default=0.0)
    last_submit = max((r.submit_s or 0.0 for r in sent), default=0.0)
    checks = sorted((r.check_s or 0.0) - (r.submit_s or 0.0) for r in answered)
    n = max(1, len(sent))
    cpu = result.notes.get("generator_cpu_share")
    held = (behind / n <= HELD_BEHIND_SHARE and (errors + refused) / n <= HELD_ERROR_SHARE
            and len(sent) == result.settings.planned)
    return CeilingStep(
        offered_tps=rate, sent=len(sent), accepted=len(accepted), errors=errors, refused=refused,
        achieved_tps=round(len(sent) / last_submit, 1) if last_submit > 0 else 0.0,
        accepted_tps=round(len(accepted) / (last_answer - first), 1) if last_answer > first else 0.0,
        behind_share=round(behind / n, 3),
        check_p50_ms=round(checks[len(checks) // 2] * 1000, 1) if checks else None,
        generator_cpu_share=cpu, held=held)


def probe_ceiling(nodes: tuple[str, ...], accounts: list[LoadAccount], tx_bytes: int, settings: CeilingSettings,
                  transport: str, connections: int, tag: str, settle: Callable[[], object] = lambda: None,
                  progress: Callable[[str], None] = lambda _: None) -> CeilingResult:
    """Ramp against kvstore nodes until a step is not held; ``settle`` runs between steps (empty the mempools)."""
    result = CeilingResult(settings, transport, connections)
    for rate in settings.rates():
        load = LoadSettings(nodes, rate, settings.step_s, drain_timeout_s=0.0, label=f"ceiling @ {rate:g} tx/s",
                            transport=transport, connections=connections)
        step = step_figures(run_load(load, KvWorkload(tx_bytes, f"{tag}-ceiling-{rate:g}"), accounts))
        result.steps.append(step)
        progress(f"[ceiling] {rate:g} tx/s offered: {step.accepted_tps:g} accepted/s, "
                 f"{step.behind_share:.0%} late, generator CPU {step.generator_cpu_share}")
        if step.refused > step.sent // 2:
            result.error = (f"the nodes refused {step.refused} of {step.sent} kvstore transactions: "
                            "a ceiling is measured against kvstore nodes only")
            return result
        if not step.held:
            cpu = step.generator_cpu_share or 0.0
            result.limit = "generator" if cpu >= CPU_BOUND_SHARE else "nodes"
            return result
        settle()
    result.limit = "max_rate"
    return result
