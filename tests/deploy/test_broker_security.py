"""The fleet broker config (deploy/mosquitto/ + deploy/certs.sh) on a real mosquitto: who may connect and write."""

from __future__ import annotations

import ssl
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from devkit.broker import Broker

NOT_AUTHORIZED = 135


class Session:
    """A connected MQTT v5 client that records CONNACK, PUBACKs and received messages."""

    def __init__(self, broker: Broker, port: int, cert: tuple[str, str] | None = None,
                 username: str | None = None, password: str | None = None, tls: bool = True):
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
        if tls:
            certfile, keyfile = cert if cert else (None, None)
            self.client.tls_set(ca_certs=broker.ca_path, certfile=certfile, keyfile=keyfile,
                                cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: mqtt.ReasonCode | None = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.pubacks: dict[int, mqtt.ReasonCode] = {}
        self.acked = threading.Condition()
        self.messages: list[tuple[str, bytes]] = []
        self.got_message = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        # A refused certificate shows up (TLS 1.3) as a dropped connection after the handshake.
        self.client.on_disconnect = lambda *a: self.connected.set()
        self.broker = broker
        self.port = port

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code
        self.connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.acked:
            self.pubacks[mid] = reason_code
            self.acked.notify_all()

    def _on_message(self, client, userdata, message):
        self.messages.append((message.topic, message.payload))
        self.got_message.set()

    def connect(self, timeout: float = 10.0) -> mqtt.ReasonCode | None:
        """Connect and wait for CONNACK; None when the connection broke before one (a TLS refusal)."""
        try:
            self.client.connect(self.broker.host, self.port, keepalive=10)
        except (ssl.SSLError, OSError):
            return None
        self.client.loop_start()
        self.connected.wait(timeout)
        return self.connack

    def publish_qos1(self, topic: str, payload: bytes, timeout: float = 10.0) -> mqtt.ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.pubacks, timeout), f"no PUBACK for {topic}"
            return self.pubacks[info.mid]

    def subscribe(self, topic: str, timeout: float = 10.0) -> None:
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(timeout), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def sessions():
    opened: list[Session] = []

    def open_session(*args, **kwargs) -> Session:
        session = Session(*args, **kwargs)
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.close()


def test_device_writes_only_its_own_topics(secure_broker, sessions):
    viewer = sessions(secure_broker, secure_broker.password_tls_port, username="viewer",
                      password=secure_broker.passwords["viewer"])
    assert viewer.connect() == 0
    viewer.subscribe("edgeanon/#")

    cam1 = sessions(secure_broker, secure_broker.tls_port, cert=secure_broker.cert_for("cam1"))
    assert cam1.connect() == 0

    denied = cam1.publish_qos1("edgeanon/cam2/frame", b"forged")
    assert denied.value == NOT_AUTHORIZED, denied
    own = cam1.publish_qos1("edgeanon/cam1/frame", b"redacted")
    assert not own.is_failure, own

    # The allowed message arrives; the forged one (published first, same connection) never did.
    assert viewer.got_message.wait(10)
    assert viewer.messages == [("edgeanon/cam1/frame", b"redacted")]


def test_device_cannot_read_other_cameras(secure_broker, sessions):
    spy = sessions(secure_broker, secure_broker.tls_port, cert=secure_broker.cert_for("cam2"))
    assert spy.connect() == 0
    spy.subscribe("edgeanon/#")
    cam1 = sessions(secure_broker, secure_broker.tls_port, cert=secure_broker.cert_for("cam1"))
    assert cam1.connect() == 0
    assert not cam1.publish_qos1("edgeanon/cam1/frame", b"redacted").is_failure
    assert not spy.got_message.wait(1.0)


def test_device_certificate_is_required_on_the_camera_port(secure_broker, sessions):
    no_cert = sessions(secure_broker, secure_broker.tls_port)
    assert no_cert.connect(timeout=5) is None or no_cert.connack.is_failure


def test_foreign_certificate_is_refused(secure_broker, sessions, tmp_path):
    other = Broker(tmp_path / "other-ca", tls=True)  # a second CA the broker does not trust
    cert = other.cert_for("cam1")
    session = sessions(secure_broker, secure_broker.tls_port, cert=cert)
    assert session.connect(timeout=5) is None or session.connack.is_failure


@pytest.mark.parametrize("port_name", ["port", "password_tls_port"])
def test_anonymous_and_wrong_password_are_refused(secure_broker, sessions, port_name):
    port = getattr(secure_broker, port_name)
    tls = port_name != "port"
    anonymous = sessions(secure_broker, port, tls=tls)
    assert anonymous.connect().is_failure
    wrong = sessions(secure_broker, port, tls=tls, username="viewer", password="not-the-password")
    assert wrong.connect().is_failure
    right = sessions(secure_broker, port, tls=tls, username="viewer", password=secure_broker.passwords["viewer"])
    assert right.connect() == 0


def test_restart_keeps_ports_and_config(secure_broker, sessions):
    secure_broker.restart()
    cam1 = sessions(secure_broker, secure_broker.tls_port, cert=secure_broker.cert_for("cam1"))
    assert cam1.connect() == 0
    assert cam1.publish_qos1("edgeanon/cam2/frame", b"forged").value == NOT_AUTHORIZED


def test_plain_broker_accepts_anonymous(mosquitto_broker, sessions):
    client = sessions(mosquitto_broker, mosquitto_broker.port, tls=False)
    assert client.connect() == 0
    assert not client.publish_qos1("edgeanon/cam1/frame", b"x").is_failure
