"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in the child (a pre-exec hook or a pool initializer): have the kernel SIGKILL it
    when the thread that started it exits (Linux; elsewhere nothing happens). Start such
    children from the main thread, which lives as long as the process."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
