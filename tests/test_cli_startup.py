"""Every command starts without py-libp2p and trio: only the p2p commands (and the p2p host) import them."""

from __future__ import annotations

import subprocess
import sys


def test_basic_the_cli_loads_without_libp2p() -> None:
    code = ("import sys, cli.main\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('libp2p', 'trio', 'multiaddr'))\n"
            "print(heavy[:5])\nsys.exit(1 if heavy else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_basic_the_p2p_error_is_still_mapped_once_loaded() -> None:
    from cli.main import exit_code_for
    from node.p2p.control import ControlError

    assert exit_code_for(ControlError("socket gone")) == (2, "socket gone")
