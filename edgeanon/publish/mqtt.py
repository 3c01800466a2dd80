"""MQTT v5 publisher (paho-mqtt 2.x): redacted JPEG frames, events, stats and availability for one camera.

Frames go through a small bounded queue drained by a sender thread that publishes only while
connected and waits for each frame to reach the socket, so memory stays bounded whatever the broker
does: when the broker is away the oldest frames are dropped. paho reconnects with backoff.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgeanon import __version__
from edgeanon.config import MqttConfig
from edgeanon.encode import EncodedFrame, JpegEncoder, PayloadTooLarge
from edgeanon.frames import RedactedFrame

log = logging.getLogger(__name__)

ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"


class PublishError(ValueError):
    """A publisher setting that cannot work (bad TLS files and the like): a user-fixable problem."""


@dataclass(frozen=True)
class Topics:
    """The topics of one camera under a prefix."""

    frame: str
    events: str
    stats: str
    available: str

    @classmethod
    def for_camera(cls, prefix: str, camera_id: str) -> Topics:
        base = f"{prefix}/{camera_id}"
        return cls(f"{base}/frame", f"{base}/events", f"{base}/stats", f"{base}/available")


def discovery_message(cfg: MqttConfig, camera_id: str, topics: Topics) -> tuple[str, dict]:
    """Home Assistant MQTT discovery: the redacted stream as a camera entity."""
    uid = f"edgeanon_{camera_id}"
    payload = {
        "name": f"edgeanon {camera_id}",
        "unique_id": uid,
        "object_id": uid,
        "topic": topics.frame,
        "availability": [{
            "topic": topics.available,
            "value_template": "{{ 'online' if value == 'online' else 'offline' }}",
        }],
        "json_attributes_topic": topics.stats,
        "device": {
            "identifiers": [uid],
            "name": f"edgeanon {camera_id}",
            "manufacturer": "edgeanon",
            "model": "face-anonymizing camera",
            "sw_version": __version__,
        },
    }
    return f"{cfg.discovery_prefix}/camera/{uid}/config", payload


@dataclass
class _Item:
    encoded: EncodedFrame
    event: bytes


class MqttPublisher:
    """Publishes one camera's redacted frames, events, stats and availability."""

    def __init__(self, cfg: MqttConfig, camera_id: str, encoder: JpegEncoder | None = None):
        self.cfg = cfg
        self.camera_id = camera_id
        self.topics = Topics.for_camera(cfg.prefix, camera_id)
        self.encoder = encoder or JpegEncoder(max_bytes=cfg.max_payload)
        self._queue: deque[_Item] = deque(maxlen=cfg.queue_size)
        self._cond = threading.Condition()
        self._closing = False
        self._sending = False
        self._fail_logged_at = -1e9
        self._connected = threading.Event()
        self.counters = {"sent": 0, "queue_dropped": 0, "too_large": 0, "send_failed": 0, "connects": 0}
        self._protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
        self._client = self._make_client()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._started = False

    def _make_client(self) -> mqtt.Client:
        cfg = self.cfg
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"edgeanon-{self.camera_id}",
            protocol=self._protocol,
        )
        client.will_set(self.topics.available, OFFLINE, qos=1, retain=True)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls.ca is not None:
            try:
                client.tls_set(ca_certs=cfg.tls.ca, certfile=cfg.tls.cert, keyfile=cfg.tls.key,
                               cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise PublishError(f"mqtt.tls: cannot load the CA/certificate/key ({exc})") from None
            client.tls_insecure_set(cfg.tls.insecure)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        return client

    # -- connection -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (the broker may be down now; paho keeps retrying with backoff)."""
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self._client.loop_start()
        self._sender.start()
        self._started = True

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason_code)
            return
        self.counters["connects"] += 1
        log.info("mqtt connected to %s:%d", self.cfg.host, self.cfg.port)
        client.publish(self.topics.available, ONLINE, qos=1, retain=True)
        if self.cfg.homeassistant:
            topic, payload = discovery_message(self.cfg, self.camera_id, self.topics)
            client.publish(topic, json.dumps(payload), qos=1, retain=True)
        with self._cond:
            self._connected.set()
            self._cond.notify_all()

    def _on_connect_fail(self, client, userdata) -> None:
        now = time.monotonic()
        if now - self._fail_logged_at > 60.0:  # the first failure, then once a minute
            self._fail_logged_at = now
            tls = " (TLS)" if self.cfg.tls.ca else ""
            log.warning("mqtt %s:%d%s unreachable; retrying with backoff up to %d s", self.cfg.host, self.cfg.port,
                        tls, self.cfg.reconnect_max_s)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        with self._cond:
            self._connected.clear()
            self._cond.notify_all()
        if was and not self._closing:
            log.warning("mqtt disconnected (%s); reconnecting with backoff", reason_code)

    # -- publishing -----------------------------------------------------------------------------

    def publish_frame(self, frame: RedactedFrame, event: dict[str, Any], started: float | None = None) -> float | None:
        """Encode and queue a redacted frame and its event; the latency in ms, or None when it was dropped (too large).

        The latency runs from `started` (time.monotonic() when the frame arrived; default: this call) to the
        frame being queued; it is sent as the event's latency_ms (the caller's dict is left as it is).
        """
        called = time.monotonic()
        if not isinstance(frame, RedactedFrame):
            raise TypeError(f"the publisher takes only RedactedFrame, not {type(frame).__name__}")
        try:
            encoded = self.encoder.encode(frame)
        except PayloadTooLarge as exc:
            self.counters["too_large"] += 1
            log.warning("%s; frame dropped", exc)
            return None
        latency_ms = round((time.monotonic() - (started if started is not None else called)) * 1000.0, 1)
        item = _Item(encoded, json.dumps({**event, "latency_ms": latency_ms}, separators=(",", ":")).encode())
        with self._cond:
            full = self._queue.maxlen
            if len(self._queue) == full and self._connected.is_set():
                # Broker there but slower than us: wait a moment for room (a file source loses nothing).
                self._cond.wait_for(lambda: len(self._queue) < full or not self._connected.is_set(), timeout=1.0)
            if len(self._queue) == full:  # broker away: the oldest frame goes
                self.counters["queue_dropped"] += 1
            self._queue.append(item)
            self._cond.notify()
        return latency_ms

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Send a stats message now when connected (stats are periodic: a missed one is not queued)."""
        if self.connected:
            self._client.publish(self.topics.stats, json.dumps(stats, separators=(",", ":")), qos=0)

    def _frame_properties(self, index: int) -> Properties | None:
        if self._protocol != mqtt.MQTTv5:
            return None
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = int(self.cfg.frame_expiry_s)
        props.ContentType = "image/jpeg"
        props.UserProperty = [("frame_index", str(index))]
        return props

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or (self._queue and self._connected.is_set()))
                if not self._queue or not self._connected.is_set():
                    if self._closing:
                        return
                    continue
                item = self._queue.popleft()
                self._sending = True
                self._cond.notify_all()
            try:
                self._send(item)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _send(self, item: _Item) -> None:
        info = self._client.publish(self.topics.frame, item.encoded.data, qos=0,
                                    properties=self._frame_properties(item.encoded.index))
        self._client.publish(self.topics.events, item.event, qos=0)
        try:
            # Keep paho's own buffer to about one frame: wait until this one reached the socket.
            info.wait_for_publish(timeout=5.0)
            ok = info.is_published() and info.rc == mqtt.MQTT_ERR_SUCCESS
        except (RuntimeError, ValueError):
            ok = False
        self.counters["sent" if ok else "send_failed"] += 1

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every queued frame was sent (while connected); False when some are still waiting."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._sending and (not self._queue or not self._connected.is_set()), timeout)

    def queue_length(self) -> int:
        return len(self._queue)

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "queued": len(self._queue), **self.counters}

    def close(self, timeout: float = 3.0) -> None:
        """Flush queued frames (while connected), publish `stopped` retained, disconnect cleanly."""
        if not self._started:
            return
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._sender.join(max(0.1, deadline - time.monotonic() - 1.0))
        if self.connected:
            info = self._client.publish(self.topics.available, STOPPED, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                log.warning("could not publish 'stopped' before exit")
        self._client.disconnect()
        self._client.loop_stop()
