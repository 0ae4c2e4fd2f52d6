"""Crash points for the crash-safety tests: BERTH_CRASH_AT=<name> SIGKILLs the process there."""

import os
import signal


def point(name: str) -> None:
    if os.environ.get("BERTH_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
