"""Stopping a child process the way the tools and tests do: SIGTERM, then SIGKILL if it outlives a timeout."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, timeout: float) -> int:
    """Ask `proc` to stop (SIGTERM), kill it (SIGKILL) if it has not exited within `timeout` seconds, and
    return its exit status. A process that has already exited is left as it is."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
