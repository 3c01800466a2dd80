"""sd_notify over a real unix datagram socket (path and abstract), watchdog interval from the environment."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from pathlib import Path

import pytest

from edgeanon.systemd import Notifier, watchdog_interval


@pytest.fixture()
def notify_socket():
    folder = Path(tempfile.mkdtemp(prefix="ea-sd-", dir="/tmp"))  # short path: sun_path is 108 bytes
    path = folder / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield str(path), sock
    sock.close()
    path.unlink(missing_ok=True)
    folder.rmdir()


def test_messages_arrive(notify_socket):
    path, sock = notify_socket
    n = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    assert n.enabled and n.watchdog_interval == 5.0
    assert n.ready(status="running")
    assert sock.recv(4096) == b"READY=1\nSTATUS=running"
    assert n.status("12 fps\nsecond line dropped")
    assert sock.recv(4096) == b"STATUS=12 fps"
    assert n.extend_timeout(5_000_000)
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=5000000"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert not n.watchdog(), "a second ping within a quarter of the interval is skipped"
    assert n.watchdog(force=True)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    n.close()


def test_abstract_socket():
    name = f"edgeanon-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        n = Notifier(environ={"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_without_systemd_everything_is_a_no_op():
    n = Notifier(environ={})
    assert not n.enabled
    assert not n.ready() and not n.status("x") and not n.stopping() and not n.watchdog()


def test_socket_gone_does_not_raise(tmp_path):
    n = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "absent.sock"), "WATCHDOG_USEC": "1000000"})
    assert not n.ready()
    assert not n.watchdog()


def test_watchdog_interval_from_environment():
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "3000000"}) == 1.5
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}) == 1.5
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "zero"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert Notifier(environ={"NOTIFY_SOCKET": "/x"}).watchdog_interval is None
