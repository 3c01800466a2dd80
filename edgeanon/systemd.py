"""systemd notify protocol (Type=notify) without dependencies: READY, WATCHDOG, STATUS, STOPPING."""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of WATCHDOG_USEC), or None when no watchdog is asked for."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET; every call is a no-op when not run by systemd."""

    def __init__(self, socket_path: str | None = None, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET")
        self._address: str | bytes | None = None
        if path:
            # '@name' is an abstract socket: a leading NUL byte on the wire.
            self._address = "\0" + path[1:] if path.startswith("@") else path
        self._sock: socket.socket | None = None
        self.watchdog_interval = watchdog_interval(env)
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send one message ("KEY=VALUE" lines); False when not under systemd or the send failed."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode("utf-8"), self._address)
            return True
        except OSError as exc:
            log.debug("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text.splitlines()[0] if text else ''}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def extend_timeout(self, usec: int) -> bool:
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(usec)}")

    def watchdog(self, force: bool = False) -> bool:
        """Ping the watchdog, at most twice per WATCHDOG_USEC; no-op when no watchdog is configured."""
        if self.watchdog_interval is None:
            return False
        now = time.monotonic()
        if not force and now - self._last_ping < self.watchdog_interval / 2:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
