"""A datagram socket standing in for systemd's NOTIFY_SOCKET: keeps every message a daemon sends, with its time."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path


class NotifySocket:
    """Bound under /tmp (sun_path holds 108 bytes at most); `messages` and `times` grow as messages arrive."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ea-n-", dir="/tmp"))
        self.path = str(self.dir / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self.times: list[float] = []  # time.monotonic() of each message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            self.messages.append(message)

    def first(self, prefix: str) -> int:
        return next((i for i, m in enumerate(self.messages) if m.startswith(prefix)), -1)

    def pings_between(self, start: float, end: float) -> int:
        """WATCHDOG=1 messages that arrived in [start, end) (time.monotonic())."""
        return sum(start <= t < end for t, m in zip(self.times, self.messages) if m == "WATCHDOG=1")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)
