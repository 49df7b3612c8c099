"""The supervisor's own stdout: lines of several noisy children never merge or split.

The supervisor runs in a subprocess with its default sink (its real stdout),
three stand-in children (app, CometBFT, p2p host) print thousands of lines at
once, and every line read back must be exactly one child line with its prefix.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

LINES = 20_000
PAD = "x" * 40

# A stand-in child: announces readiness if it is the app, prints LINES numbered lines
# (plus one that is not UTF-8), says "done" and waits for SIGTERM.
CHILD = f"""
import signal, sys
name = sys.argv[1]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if name == "app":
    print("ABCI server ready on tcp://127.0.0.1:1 at height 0", flush=True)
sys.stdout.buffer.write(name.encode() + b" raw \\xff\\xfe\\n")
for i in range({LINES}):
    sys.stdout.write(f"{{name}} {{i}} {PAD}\\n")
print(f"{{name}} done", flush=True)
while True:
    signal.pause()
"""

SUPERVISOR = """
import sys
from pathlib import Path
from node import supervisor
from node.supervisor import NodeSpec

child = sys.argv[1]

class NoisySpec(NodeSpec):
    def app_argv(self): return [sys.executable, "-c", child, "app"]
    def cometbft_argv(self): return [sys.executable, "-c", child, "cometbft"]
    def p2p_argv(self): return [sys.executable, "-c", child, "p2p"]

sys.exit(supervisor.run(NoisySpec(home=Path("."), abci_address="tcp://127.0.0.1:1", p2p=True)))
"""

LINE = re.compile(rf"\[(app|cometbft|p2p)\] (app|cometbft|p2p) (\d+) {PAD}")


def test_basic_children_lines_never_merge(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, CHILD], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[bytes] = []
    done: set[str] = set()
    try:
        for raw in proc.stdout:
            lines.append(raw)
            match = re.fullmatch(rb"\[(\w+)\] (\w+) done\n", raw)
            if match:
                done.add(match.group(1).decode())
                if done == {"app", "cometbft", "p2p"}:
                    proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = [line.decode() for line in lines]  # the supervisor writes valid UTF-8 only
    numbered = [LINE.fullmatch(line.rstrip("\n")) for line in text]
    merged = [line for line, match in zip(text, numbered, strict=True)
              if match is None and not line.startswith(("[supervisor]", "[app] ABCI server ready"))
              and " done\n" not in line and " raw " not in line]
    assert not merged, f"{len(merged)} merged or split lines, e.g. {merged[:3]}"
    counts = Counter((m.group(1), m.group(2), int(m.group(3))) for m in numbered if m is not None)
    assert all(prefix == name for prefix, name, _ in counts)
    assert len(counts) == 3 * LINES and set(counts.values()) == {1}
    assert {line for line in text if " raw " in line} == {f"[{n}] {n} raw \ufffd\ufffd\n"
                                                          for n in ("app", "cometbft", "p2p")}
