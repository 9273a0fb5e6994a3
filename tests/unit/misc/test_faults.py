"""The fault-injection hook: SIGKILL at the named point (and call), nothing otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

CODE = ("from dlforge.faults import fault_point\n"
        "for i in range(3):\n"
        "    fault_point('other'); fault_point('here'); print(i, flush=True)\n")


@pytest.mark.parametrize(("target", "code", "printed"), [
    (None, 0, "0\n1\n2\n"),
    ("elsewhere", 0, "0\n1\n2\n"),
    ("here", -signal.SIGKILL, ""),
    ("here@2", -signal.SIGKILL, "0\n"),
    ("here@3", -signal.SIGKILL, "0\n1\n"),
])
def test_fault_point_kills_at_the_named_point_only(target, code, printed):
    env = {k: v for k, v in os.environ.items() if k != "DLFORGE_FAULT_AT"}
    if target is not None:
        env["DLFORGE_FAULT_AT"] = target
    proc = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout) == (code, printed), proc.stderr
