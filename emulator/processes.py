"""Child processes of the local stack die with it, even when it is killed without a chance to clean up
(a test run cut short, kill -9): Linux's parent-death signal, set in the child before it runs."""
from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn for subprocess.Popen: SIGTERM this child when the thread that started it exits."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
