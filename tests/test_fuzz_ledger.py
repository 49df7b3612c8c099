"""Fuzzed transactions against the ABCI oracle of tests/fuzz_ledger.py, under two PYTHONHASHSEED values.

Both runs (subprocesses, in parallel) replay the same seeded sequence; each
must find no violation (nothing escapes, one result per transaction, a
rejected transaction changes nothing but its nonce), and both must end with
the same chain of app hashes. The counts per result code and mutation are
printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parent.parent
SEED = 15
COUNT = 8_000
HASH_SEEDS = ("0", "2463")


@pytest.mark.timeout(900)  # two parallel runs: ~1 min idle, several under load on a 2-core box
def test_fuzz_transactions_change_nothing_when_rejected_and_hash_alike(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    runs = {
        hash_seed: subprocess.Popen([sys.executable, "-m", "tests.fuzz_ledger", "--seed", str(SEED),
                                     "--count", str(COUNT)], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    env={**os.environ, "PYTHONHASHSEED": hash_seed})
        for hash_seed in HASH_SEEDS
    }
    reports = {}
    for hash_seed, proc in runs.items():
        out, err = proc.communicate(timeout=800)
        assert proc.returncode == 0, f"PYTHONHASHSEED={hash_seed}: exit {proc.returncode}\n{err[-4000:]}"
        reports[hash_seed] = json.loads(out)
    first, second = (reports[seed] for seed in HASH_SEEDS)
    assert first["violations"] == [], first["violations"]
    assert second["violations"] == [], second["violations"]
    assert first["transactions"] == COUNT
    assert (first["hash_chain"], first["final_app_hash"]) == (second["hash_chain"], second["final_app_hash"])
    assert first["codes"] == second["codes"]
    codes = {int(code): count for code, count in first["codes"].items()}
    assert codes.get(0, 0) > COUNT // 10, "too few transactions accepted: the fuzzer barely moves the state"
    rejected = COUNT - codes.get(0, 0)
    with capsys.disabled():  # the counts belong in the CI log
        print(f"\nfuzzed transactions: {COUNT} x 2 runs (PYTHONHASHSEED {' and '.join(HASH_SEEDS)}) in "
              f"{time.monotonic() - started:.0f} s; accepted {codes.get(0, 0)}, rejected {rejected} by code: "
              + ", ".join(f"{code}: {count}" for code, count in sorted(codes.items()) if code)
              + f"; mutations: {first['mutations']}; ProcessProposal rejected {first['process_rejected']} "
              f"single-transaction blocks; final app hash {first['final_app_hash'][:16]}... in both runs; "
              f"exceptions caught and logged: {first['app_errors'] or 'none'}")
    # An exception the application or the server caught (code 1, or a proposal rejected for it) is a bug
    # even though nothing escaped.
    caught = first["app_errors"]
    assert not caught, (caught, first["app_error_examples"])
    assert codes.get(1, 0) == 0 and first["check_codes"].get("1", 0) == 0, "internal errors (code 1)"
