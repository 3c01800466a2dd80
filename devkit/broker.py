"""A real mosquitto for tests: plain and open, or secured with deploy/ (certs.sh, mosquitto/edgeanon.conf, acl).

    from devkit.broker import Broker

    with Broker(tmp_path) as broker:                 # plain: anonymous, loopback only
        client.connect(broker.host, broker.port)

    with Broker(tmp_path, tls=True) as broker:       # the production config from deploy/mosquitto/
        cert, key = broker.cert_for("cam1")          # client certificate with CN=cam1 (made on demand)
        client.tls_set(ca_certs=broker.ca_path, certfile=cert, keyfile=key)
        client.connect(broker.host, broker.tls_port) # cam1 may write only edgeanon/cam1/#
        broker.restart()                             # same ports; broker.kill() for an abrupt death

    with Broker(tmp_path, extra_config="max_packet_size 20000\n") as broker:   # any mosquitto.conf lines

    with SilentBroker() as silent:                   # not mosquitto: takes the connection, acknowledges nothing
        ...                                          # (CONNACK, PINGRESP; every PUBLISH swallowed)

Secure broker ports: `tls_port` (cameras, mutual TLS, certificate CN = user name), `password_tls_port`
(TLS + user name/password, for viewers) and `port` (loopback, user name/password). `passwords` maps user
to password; user "viewer" may read edgeanon/# (see deploy/mosquitto/acl). Server certificate names:
localhost and 127.0.0.1.

Its pytest fixtures are in devkit.broker_fixtures (this module does not need pytest: `make demo` uses it
with the runtime alone installed).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from devkit.process import stop_process

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
CERTS_SH = DEPLOY / "certs.sh"
CONF_TEMPLATE = DEPLOY / "mosquitto" / "edgeanon.conf"
ACL_TEMPLATE = DEPLOY / "mosquitto" / "acl"
# The template's production values, replaced for a test run.
_PROD_DIR = "/etc/mosquitto/edgeanon/"
_PROD_PORTS = {"listener 1883 127.0.0.1": "port", "listener 8883": "tls_port", "listener 8884": "password_tls_port"}


def mosquitto_binary() -> str | None:
    """Path of the mosquitto executable (often in /usr/sbin, outside a user's PATH), or None."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render_config(template: str, directory: Path, ports: dict[str, int]) -> str:
    """deploy/mosquitto/edgeanon.conf with its files in `directory` and its listeners on `ports`."""
    out = []
    for line in template.splitlines():
        stripped = line.strip()
        if stripped in _PROD_PORTS:
            line = f"listener {ports[_PROD_PORTS[stripped]]} 127.0.0.1"
        out.append(line.replace(_PROD_DIR, f"{directory}/"))
    return "\n".join(out) + "\n"


class Broker:
    """One mosquitto subprocess in `workdir`; see the module docstring for the API."""

    host = "127.0.0.1"

    def __init__(self, workdir: str | Path, tls: bool = False, devices: tuple[str, ...] = ("cam1", "cam2"),
                 passwords: dict[str, str] | None = None, extra_config: str = ""):
        self.workdir = Path(workdir)
        self.extra_config = extra_config  # mosquitto.conf lines appended (global options such as max_packet_size)
        self.tls = tls
        self.devices = devices
        self.passwords = dict(passwords or {"viewer": "viewer-secret"})
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.password_tls_port = free_port() if tls else None
        self.pki = self.workdir / "pki"
        self.ca_path: str | None = None
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen | None = None
        self._prepared = False

    # -- set-up ---------------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self._prepared:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        user = f"user {getpass.getuser()}\n"  # as root, mosquitto would otherwise switch to user 'mosquitto'
        common = (f"{user}persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
                  f"{self.extra_config}")
        if not self.tls:
            self.config_path.write_text(f"{common}listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        else:
            self._certs("ca")
            self._certs("server", "localhost", "127.0.0.1")
            for device in self.devices:
                self._certs("device", device)
            shutil.copy(ACL_TEMPLATE, self.pki / "acl")
            passwd = self.pki / "passwd"
            passwd.touch(mode=0o600)
            for user_name, password in self.passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user_name, password],
                               check=True, capture_output=True)
            ports = {"port": self.port, "tls_port": self.tls_port, "password_tls_port": self.password_tls_port}
            self.config_path.write_text(common + render_config(CONF_TEMPLATE.read_text(), self.pki, ports))
            self.ca_path = str(self.pki / "ca.crt")
        self._prepared = True

    def _certs(self, *args: str) -> None:
        result = subprocess.run([str(CERTS_SH), "--dir", str(self.pki), *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"certs.sh {' '.join(args)} failed: {result.stderr.strip()}")

    def cert_for(self, device_id: str) -> tuple[str, str]:
        """(certificate, key) paths of a client certificate with CN=device_id, made on first use."""
        if not self.tls:
            raise RuntimeError("cert_for needs Broker(..., tls=True)")
        self._prepare()
        cert, key = self.pki / f"{device_id}.crt", self.pki / f"{device_id}.key"
        if not cert.is_file():
            self._certs("device", device_id)
        return str(cert), str(key)

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [p for p in (self.port, self.tls_port, self.password_tls_port) if p is not None]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> Broker:
        """Start mosquitto and return once every listener accepts TCP connections."""
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt install mosquitto)")
        self._prepare()
        if self.running:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._proc = subprocess.Popen([binary, "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT)
        self._log = log
        deadline = time.monotonic() + timeout
        pending = set(self.ports)
        while pending:
            if self._proc.poll() is not None:
                self._close_log()
                raise RuntimeError(f"mosquitto exited ({self._proc.returncode}): {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen on {sorted(pending)} within {timeout}s: "
                                   f"{self.log_tail()}")
            for port in list(pending):
                with socket.socket() as sock:
                    sock.settimeout(0.2)
                    if sock.connect_ex((self.host, port)) == 0:
                        pending.discard(port)
            if pending:
                time.sleep(0.05)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop mosquitto cleanly (SIGTERM, then SIGKILL after `timeout`)."""
        if self._proc is not None:
            stop_process(self._proc, timeout)
        self._proc = None
        self._close_log()

    def kill(self) -> None:
        """Kill mosquitto abruptly (SIGKILL): clients see the connection drop without a DISCONNECT."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
        self._proc = None
        self._close_log()

    def restart(self, down_for: float = 0.0) -> Broker:
        """Stop, stay down `down_for` seconds, start again on the same ports with the same config."""
        self.stop()
        if down_for:
            time.sleep(down_for)
        return self.start()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SilentBroker:
    """A real TCP peer that speaks just enough MQTT to take a connection and then acknowledges nothing.

    It answers CONNECT with a successful CONNACK (MQTT 5 or 3.1.1, as the client asked) and PINGREQ with
    PINGRESP, so the client stays connected; every PUBLISH is read and swallowed, never acknowledged:
    the broker that accepts a connection and loses everything. `published` counts the PUBLISH packets.
    """

    host = "127.0.0.1"

    def __init__(self):
        self._server = socket.create_server((self.host, 0))
        self.port = self._server.getsockname()[1]
        self.connects = 0
        self.published = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> SilentBroker:
        thread = threading.Thread(target=self._accept, name="silent-broker", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            try:
                chunk = conn.recv(n - len(data))
            except TimeoutError:  # the timeout only lets stop() end the thread; a packet is read whole
                if self._stop.is_set():
                    raise ConnectionError("stopped") from None
                continue
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _packet(self, conn: socket.socket) -> tuple[int, bytes]:
        first = self._read(conn, 1)[0]
        length, shift = 0, 0
        while True:  # MQTT's variable-length "remaining length"
            byte = self._read(conn, 1)[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first >> 4, self._read(conn, length)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        with conn:
            while not self._stop.is_set():
                try:
                    kind, body = self._packet(conn)
                except (ConnectionError, OSError):
                    return
                if kind == 1:  # CONNECT: protocol name (2-byte length + text), then the protocol level
                    level = body[2 + int.from_bytes(body[:2], "big")]
                    self.connects += 1
                    conn.sendall(b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
                elif kind == 3:  # PUBLISH: swallowed
                    self.published += 1
                elif kind == 12:  # PINGREQ
                    conn.sendall(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    return

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
        for thread in self._threads:
            thread.join(2.0)

    def __enter__(self) -> SilentBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

