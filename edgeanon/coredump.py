"""Keeps raw frames out of crash artefacts: the daemon turns its own core dumps off, and says what it found.

A core dump of the daemon holds the last camera frame, the detector's input buffer and the config (the
MQTT password). `disable_core_dumps()` sets RLIMIT_CORE to 0, soft and hard (nothing in the process or
its children can raise it again), and marks the process non-dumpable (prctl PR_SET_DUMPABLE 0): the
kernel then writes no core at all, even where core_pattern pipes cores to a collector that ignores the
limit, and other processes of the same user can no longer ptrace it or read its /proc/PID/mem. Linux
only; elsewhere it says it could not. `core_settings()` reads what applies, for the daemon's log and
`doctor`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

# <linux/prctl.h>
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


@dataclass(frozen=True)
class CoreSettings:
    """What decides whether this process would leave a core dump."""

    rlimit_core: tuple[int, int]  # soft, hard (resource.RLIM_INFINITY for unlimited)
    dumpable: int | None  # prctl(PR_GET_DUMPABLE): 0 none, 1 yes, 2 root-only; None where it cannot be read
    core_pattern: str | None  # /proc/sys/kernel/core_pattern; None where it cannot be read

    @property
    def off(self) -> bool:
        """True when the kernel writes no core for this process, whatever the core pattern."""
        return self.dumpable == 0

    def describe(self) -> str:
        def limit(v: int) -> str:
            return "unlimited" if v == resource.RLIM_INFINITY else str(v)

        dumpable = {0: "no", 1: "yes", 2: "root only"}.get(self.dumpable, "unknown") \
            if self.dumpable is not None else "unknown"
        pattern = repr(self.core_pattern) if self.core_pattern is not None else "unknown"
        return (f"RLIMIT_CORE {limit(self.rlimit_core[0])}/{limit(self.rlimit_core[1])}, dumpable {dumpable}, "
                f"core_pattern {pattern}")


def _prctl():
    """libc's prctl, or None off Linux (or without a libc ctypes can load)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def core_settings(proc: Path = Path("/proc")) -> CoreSettings:
    """This process's core-dump settings and the kernel's core pattern."""
    prctl = _prctl()
    dumpable = None
    if prctl is not None:
        value = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
        dumpable = value if value >= 0 else None
    try:
        pattern: str | None = (proc / "sys" / "kernel" / "core_pattern").read_text().strip()
    except OSError:
        pattern = None
    return CoreSettings(resource.getrlimit(resource.RLIMIT_CORE), dumpable, pattern)


def disable_core_dumps() -> list[str]:
    """No core dump of this process from now on; the reasons it could not be done (empty when it was)."""
    problems = []
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        problems.append(f"RLIMIT_CORE cannot be set to 0 ({exc})")
    prctl = _prctl()
    if prctl is None:
        problems.append(f"prctl(PR_SET_DUMPABLE) is not available on {sys.platform}")
    elif prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        problems.append(f"prctl(PR_SET_DUMPABLE, 0) failed (errno {errno})")
    return problems
