"""Exec a program that the kernel sends SIGTERM when its parent dies, without ``preexec_fn``.

    python -I -S node/parent_death_exec.py PARENT_PID -- PROGRAM [ARGS...]

``subprocess.Popen(preexec_fn=...)`` runs Python code between fork and exec in
a child of a possibly multi-threaded process, which the subprocess docs warn
can deadlock (loading a library there is the classic case). This helper runs
instead as a fresh, single-threaded interpreter (``-S``: no site packages,
only the standard library): it asks for PR_SET_PDEATHSIG, checks that the
parent it was started for is still its parent (it may have died before the
request, and then nobody would ever signal), and replaces itself with the
program, found on PATH as ``subprocess`` finds it when its name has no
slash. The setting survives ``execve``, so the program keeps the same pid
and dies with its parent even if the parent is SIGKILLed.

The kernel sends the signal when the *thread* that started the child ends, so
start children from a thread that lives as long as they should (the main
thread, in the experiment runner). Exit codes of the helper itself: 2 bad
usage, 125 prctl failed, 126 the parent was already gone, 127 exec failed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def command(parent_pid: int, argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` through this helper on behalf of ``parent_pid``."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(parent_pid), "--", *argv]


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--" or not args[0].isdigit():
        print("usage: parent_death_exec.py PARENT_PID -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    parent, program = int(args[0]), args[2:]
    libc = ctypes.CDLL(None, use_errno=True)  # the C library this interpreter already links
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        print(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 125
    if os.getppid() != parent:
        return 126
    try:
        os.execvp(program[0], program)
    except OSError as exc:
        print(f"cannot run {program[0]}: {exc}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
