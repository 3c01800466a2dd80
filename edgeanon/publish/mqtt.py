"""MQTT v5 publisher (paho-mqtt 2.x): redacted JPEG frames, events, stats and availability for one camera.

Frames go through a small bounded queue drained by a sender thread that publishes only while
connected and waits for each frame's PUBACK (QoS 1), so memory stays bounded whatever the broker
does: when the broker is away the oldest frames are dropped. paho reconnects with backoff.

Every frame's fate is counted in `DeliveryCounters`: handed to the client, acknowledged by the broker,
refused by it (a PUBACK with a failure reason code, e.g. not authorized by the ACL; MQTT 5 only),
unacknowledged (lost with the connection or never answered), or dropped before it was sent (queue,
too large, not connected, error, still queued at stop). Only `acked` frames reached a broker. A frame
is never larger than `mqtt.max_payload` nor than the Maximum Packet Size the broker announces in its
CONNACK (MQTT 5): it is encoded to fit, or dropped and counted, never sent to be cut off.

The sender never dies silently: it survives single errors, and after MAX_CONSECUTIVE_ERRORS in a row
it stops and sets `failure`, which the pipeline turns into a non-zero exit (systemd restarts the
daemon). `check_progress()` warns when frames wait and nothing was acknowledged for
`mqtt.no_ack_warn_s`, and sets `failure` after `mqtt.no_ack_exit_s`. `healthy()` says whether frames
are leaving (or the broker is known to be away): the pipeline feeds systemd's watchdog only then.
`make_client` is the one way edgeanon builds a client (daemon and doctor).
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgeanon import __version__
from edgeanon.config import MqttConfig
from edgeanon.encode import EncodedFrame, JpegEncoder, PayloadTooLarge
from edgeanon.frames import RedactedFrame
from edgeanon.scrub import scrub, short_error

log = logging.getLogger(__name__)

# Availability: `stopped` only after a clean stop; `failed` when the daemon ends for any failure (a model
# that does not load, a publisher that gave up); `offline` is the broker's last will for a daemon that died.
ONLINE, OFFLINE, STOPPED, FAILED = "online", "offline", "stopped", "failed"
# Frames and events go with QoS 1: the PUBACK says whether the broker took them (and, in MQTT 5, why not).
FRAME_QOS = 1
ACK_TIMEOUT_S = 5.0
# Errors in a row after which the sender gives up and the daemon exits for a restart.
MAX_CONSECUTIVE_ERRORS = 5
# Frames waiting this long while connected mean nothing leaves: the watchdog is no longer fed.
SEND_STALL_S = 20.0
# Late PUBACKs of frames already counted as unacknowledged are recognised among the last this many.
LATE_ACK_MEMORY = 256
# A PUBLISH packet's bytes besides topic, properties and payload: fixed header (1), remaining length (up
# to 4), topic length (2), packet identifier (2).
PUBLISH_FIXED_OVERHEAD = 1 + 4 + 2 + 2


@dataclass
class DeliveryCounters:
    """What became of the frames one camera gave its publisher (kept per publisher, so per camera).

    A frame taken into the queue ends in exactly one of acked, refused, unacked or a dropped_* counter,
    or is still waiting. Only `acked` frames reached a broker.
    """

    queued: int = 0  # taken into the publisher's queue
    handed: int = 0  # handed to the MQTT client, which wrote it towards the broker
    acked: int = 0  # PUBACK with success: the broker has it
    refused: int = 0  # PUBACK with a failure reason code (ACL, quota, too large): the broker did not take it
    unacked: int = 0  # handed, but no PUBACK came (timeout, connection lost): no broker is known to have it
    dropped_queue: int = 0  # pushed out of a full queue (broker away or slower than the camera), never sent
    dropped_too_large: int = 0  # over max_payload or the broker's Maximum Packet Size, never sent
    dropped_unsent: int = 0  # not sent: the client would not take it (connection lost just then), or the
    #                          publisher had given up (the daemon is about to exit)
    dropped_error: int = 0  # an exception while sending, never sent
    dropped_at_stop: int = 0  # still queued when the publisher closed, never sent
    connects: int = 0  # successful connections (1 + reconnects)

    @property
    def dropped(self) -> int:
        """Frames that never left the device."""
        return (self.dropped_queue + self.dropped_too_large + self.dropped_unsent + self.dropped_error
                + self.dropped_at_stop)

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "dropped": self.dropped}


def publish_overhead(topic: str, properties: Properties | None) -> int:
    """Bytes a PUBLISH packet adds to its payload (at most), for the broker's Maximum Packet Size."""
    props = len(properties.pack()) if properties is not None else 0
    return PUBLISH_FIXED_OVERHEAD + len(topic.encode("utf-8")) + props


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


def make_client(cfg: MqttConfig, client_id: str, will_topic: str | None = None) -> mqtt.Client:
    """A paho client as the daemon uses it: protocol, credentials, TLS, last will, reconnect backoff.

    Raises PublishError for TLS files that cannot be loaded.
    """
    protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=protocol)
    if will_topic is not None:
        client.will_set(will_topic, OFFLINE, qos=1, retain=True)
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls.ca is not None:
        try:
            client.tls_set(ca_certs=cfg.tls.ca, certfile=cfg.tls.cert, keyfile=cfg.tls.key,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise PublishError(f"mqtt.tls: cannot load the CA/certificate/key ({scrub(str(exc))})") from None
        client.tls_insecure_set(cfg.tls.insecure)
    client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
    return client


@dataclass
class _Item:
    encoded: EncodedFrame
    event: bytes


def _connect_error(tls: bool) -> str:
    """Why the connection attempt failed (paho calls on_connect_fail inside its `except OSError`)."""
    exc = sys.exc_info()[1]
    if exc is None:
        return "no reason given"
    text = short_error(exc)
    # A plain MQTT listener answers a TLS ClientHello by closing or resetting the connection.
    if tls and isinstance(exc, (ssl.SSLError, ConnectionResetError, ConnectionAbortedError)):
        return f"{text}; the TLS handshake failed: is the port a TLS listener?"
    return text


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
        self._stop_by: float | None = None  # set by stop_sending(): the sender gives up waiting then
        self._sending = False
        self._fail_logged_at = -1e9
        self._error_logged_at = -1e9
        self._refused_logged_at = -1e9
        self._connected = threading.Event()
        self._connected_at = time.monotonic()
        self.counters = DeliveryCounters()
        self._unacked_mids: deque[int] = deque(maxlen=LATE_ACK_MEMORY)  # counted unacked; a late PUBACK moves it
        self._broker_max_packet: int | None = None  # the Maximum Packet Size of the broker's CONNACK (MQTT 5)
        self._too_large_logged_at = -1e9
        self._no_ack_logged_at = -1e9
        self._connect_error = ""  # the last failed connection attempt, for the no-ack warning
        self.failure: str | None = None  # set when the sender gave up: the daemon must exit
        self._consecutive_errors = 0
        self._acks: dict[int, Any] = {}  # mid -> PUBACK reason code, since the current frame was handed to paho
        # Progress: the last PUBACK of a frame, and when work last became pending after an idle spell.
        self._last_ack = time.monotonic()
        self._pending_since = time.monotonic()
        self._protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
        self._client = make_client(cfg, cfg.client_id or f"edgeanon-{camera_id}", will_topic=self.topics.available)
        # paho's own queue holds at most what we hand it: one frame and its event in flight, plus a little.
        self._client.max_queued_messages_set(cfg.queue_size + 16)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_publish = self._on_publish
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._started = False

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
            self._connect_error = f"the broker refused the connection: {reason_code}"
            log.error("mqtt %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason_code)
            return
        self.counters.connects += 1
        self._connected_at = time.monotonic()
        self._connect_error = ""
        announced = getattr(properties, "MaximumPacketSize", None) if properties is not None else None
        self._broker_max_packet = int(announced) if announced else None
        limit = f"; its Maximum Packet Size is {announced} bytes" if announced else ""
        log.info("mqtt connected to %s:%d%s", self.cfg.host, self.cfg.port, limit)
        client.publish(self.topics.available, ONLINE, qos=1, retain=True)
        if self.cfg.homeassistant:
            topic, payload = discovery_message(self.cfg, self.camera_id, self.topics)
            client.publish(topic, json.dumps(payload), qos=1, retain=True)
        with self._cond:
            self._connected.set()
            self._cond.notify_all()

    def _on_connect_fail(self, client, userdata) -> None:
        self._connect_error = _connect_error(self.cfg.tls.ca is not None)
        now = time.monotonic()
        if now - self._fail_logged_at > 60.0:  # the first failure, then once a minute
            self._fail_logged_at = now
            tls = " (TLS)" if self.cfg.tls.ca else ""
            log.warning("mqtt %s:%d%s unreachable (%s); retrying with backoff up to %d s", self.cfg.host,
                        self.cfg.port, tls, self._connect_error, self.cfg.reconnect_max_s)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        with self._cond:
            self._connected.clear()
            self._cond.notify_all()
        if was and not self._closing:
            log.warning("mqtt disconnected (%s); reconnecting with backoff", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cond:  # only while a frame is in flight (cleared per frame), so the dict stays small
            if self._sending:
                self._acks[mid] = reason_code
            if mid in self._unacked_mids:  # a frame given up on was acknowledged after all (resent on reconnect)
                self._unacked_mids.remove(mid)
                self.counters.unacked -= 1
                if getattr(reason_code, "is_failure", False):
                    self.counters.refused += 1
                else:
                    self.counters.acked += 1
                    self._last_ack = time.monotonic()

    # -- limits ---------------------------------------------------------------------------------

    def _frame_packet_overhead(self) -> int:
        # the frame_index property at its longest (10 digits), so any index fits; the expiry is 4 bytes whatever
        # its value (set to 0 here so that packing cannot fail on it)
        props = self._frame_properties(10**10 - 1)
        if props is not None:
            props.MessageExpiryInterval = 0
        return publish_overhead(self.topics.frame, props)

    def frame_limit(self) -> int:
        """The largest frame payload that may be sent now: mqtt.max_payload, or less when the broker's
        Maximum Packet Size (MQTT 5 CONNACK) leaves less room."""
        limit = self.cfg.max_payload
        if self._broker_max_packet is not None:
            limit = min(limit, self._broker_max_packet - self._frame_packet_overhead())
        return max(0, limit)

    def _too_large(self, what: str) -> None:
        self.counters.dropped_too_large += 1
        now = time.monotonic()
        if now - self._too_large_logged_at > 60.0:  # the first, then once a minute
            self._too_large_logged_at = now
            log.warning("%s; frame dropped, not sent (%d so far)", what, self.counters.dropped_too_large)

    # -- publishing -----------------------------------------------------------------------------

    def publish_frame(self, frame: RedactedFrame, event: dict[str, Any], started: float | None = None) -> float | None:
        """Encode and queue a redacted frame and its event; the latency in ms, or None when it was dropped (too large).

        The latency runs from `started` (time.monotonic() when the frame arrived; default: this call) to the
        frame being queued; it is sent as the event's latency_ms (the caller's dict is left as it is).
        """
        called = time.monotonic()
        if not isinstance(frame, RedactedFrame):
            raise TypeError(f"the publisher takes only RedactedFrame, not {type(frame).__name__}")
        if self.failure is not None:
            self.counters.dropped_unsent += 1
            return None
        try:
            encoded = self.encoder.encode(frame, max_bytes=self.frame_limit())
        except PayloadTooLarge as exc:
            broker = self._broker_max_packet is not None and self.frame_limit() < self.cfg.max_payload
            self._too_large(f"{exc} (the broker's Maximum Packet Size)" if broker else str(exc))
            return None
        latency_ms = round((time.monotonic() - (started if started is not None else called)) * 1000.0, 1)
        item = _Item(encoded, json.dumps({**event, "latency_ms": latency_ms}, separators=(",", ":")).encode())
        with self._cond:
            if not self._queue and not self._sending:
                self._pending_since = time.monotonic()
            full = self._queue.maxlen
            if len(self._queue) == full and self._connected.is_set():
                # Broker there but slower than us: wait a moment for room (a file source loses nothing).
                self._cond.wait_for(lambda: len(self._queue) < full or not self._connected.is_set(), timeout=1.0)
            if len(self._queue) == full:  # broker away: the oldest frame goes
                self.counters.dropped_queue += 1
            self._queue.append(item)
            self.counters.queued += 1
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
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._closing or (self._queue and self._connected.is_set()))
                    if self._closing and (not self._queue or not self._connected.is_set()
                                          or time.monotonic() >= (self._stop_by or 0.0)):
                        return  # drained, or the broker is away, or the time to drain is up
                    if not self._queue or not self._connected.is_set():
                        continue
                    item = self._queue.popleft()
                    self._sending = True
                    self._cond.notify_all()
                try:
                    self._send(item)
                    self._consecutive_errors = 0
                except Exception as exc:  # count, log, keep going; give up only when it keeps happening
                    self._send_error(exc)
                    if self._consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                        self.failure = f"{self._consecutive_errors} send errors in a row, the last {short_error(exc)}"
                        log.error("mqtt sender stopped: %s", self.failure)
                        return
                finally:
                    with self._cond:
                        self._sending = False
                        self._cond.notify_all()
        except BaseException as exc:  # never die silently, whatever it was
            self.failure = self.failure or f"sender thread died ({short_error(exc)})"
            raise
        finally:
            if self.failure is not None:  # nothing more will be sent: what waits is dropped, and counted
                with self._cond:
                    self.counters.dropped_at_stop += len(self._queue)
                    self._queue.clear()
                    self._cond.notify_all()

    def _send_error(self, exc: Exception) -> None:
        self.counters.dropped_error += 1
        self._consecutive_errors += 1
        now = time.monotonic()
        if now - self._error_logged_at > 10.0:
            self._error_logged_at = now
            log.error("mqtt: sending a frame failed (%s); %d error(s) so far", short_error(exc),
                      self.counters.dropped_error, exc_info=log.isEnabledFor(logging.DEBUG))

    def _send(self, item: _Item) -> None:
        properties = self._frame_properties(item.encoded.index)
        limit = self.frame_limit()  # the broker's limit may have changed since the frame was encoded
        if len(item.encoded.data) > limit:
            self._too_large(f"frame {item.encoded.index}: {len(item.encoded.data)} bytes, over the {limit} bytes "
                            "the broker and mqtt.max_payload allow")
            return
        with self._cond:
            self._acks.clear()
        info = self._client.publish(self.topics.frame, item.encoded.data, qos=FRAME_QOS, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:  # not connected any more, or paho's queue is full
            self.counters.dropped_unsent += 1
            return
        self.counters.handed += 1
        event_packet = len(item.event) + publish_overhead(self.topics.events, None)
        if self._broker_max_packet is None or event_packet <= self._broker_max_packet:
            self._client.publish(self.topics.events, item.event, qos=FRAME_QOS)
        try:
            # One frame in flight: wait for its PUBACK (which also keeps paho's buffer to about one frame),
            # in slices, so that stop_sending() need not wait out a silent broker.
            deadline = time.monotonic() + ACK_TIMEOUT_S
            while not info.is_published() and time.monotonic() < min(deadline, self._stop_by or deadline):
                info.wait_for_publish(timeout=0.1)
            acked = info.is_published()
        except (RuntimeError, ValueError):
            acked = False
        with self._cond:
            # (a PUBACK that came just now is in _acks, even before paho marks the message published)
            acked = acked or info.mid in self._acks or info.is_published()
            reason = self._acks.pop(info.mid, None)
            if not acked:  # a PUBACK may still come after a reconnect (paho resends): _on_publish moves it
                self.counters.unacked += 1
                self._unacked_mids.append(info.mid)
                return
        self._last_ack = time.monotonic()  # refused or not, the broker answered
        if reason is not None and getattr(reason, "is_failure", False):
            self._refused(reason)
        else:
            self.counters.acked += 1

    def _refused(self, reason: Any) -> None:
        self.counters.refused += 1
        now = time.monotonic()
        if now - self._refused_logged_at > 60.0:  # the first refusal, then once a minute
            self._refused_logged_at = now
            log.error("mqtt %s:%d refused frames on %s (%s); %d refused so far: check the broker's ACL for "
                      "this camera", self.cfg.host, self.cfg.port, self.topics.frame, reason,
                      self.counters.refused)

    def check_progress(self) -> None:
        """Warn when frames wait and the broker acknowledged none for mqtt.no_ack_warn_s (then once per that
        period); set `failure` once that lasts mqtt.no_ack_exit_s (0: never), so the daemon exits for a restart."""
        if self.failure is not None or not self._started:
            return
        with self._cond:
            pending = bool(self._queue) or self._sending
            waiting = len(self._queue) + int(self._sending)
        if not pending:
            return
        now = time.monotonic()
        silent = now - max(self._last_ack, self._pending_since)
        if silent < self.cfg.no_ack_warn_s:
            return
        if self.connected:
            why = "connected, but the broker acknowledges nothing"
        else:
            why = f"broker unreachable: {self._connect_error or 'not connected'}"
        c = self.counters
        summary = (f"{c.handed} handed, {c.acked} acknowledged, {c.refused} refused, {c.unacked} unacknowledged, "
                   f"{c.dropped} dropped")
        exit_s = self.cfg.no_ack_exit_s
        if exit_s and silent >= exit_s:
            self.failure = f"no frame acknowledged for {silent:.0f} s ({why}; {summary})"
            return
        if now - self._no_ack_logged_at >= self.cfg.no_ack_warn_s:
            self._no_ack_logged_at = now
            then = f"; exiting for a restart after {exit_s:g} s" if exit_s else ""
            log.warning("mqtt %s:%d: no frame acknowledged for %.0f s (%s); %d waiting; so far %s%s", self.cfg.host,
                        self.cfg.port, silent, why, waiting, summary, then)

    def healthy(self, stall_s: float = SEND_STALL_S) -> bool:
        """True while frames leave, or while the broker is known to be away (then the queue drops the
        oldest and a restart would fix nothing); False once the sender failed or frames wait in vain."""
        if self.failure is not None or (self._started and not self._sender.is_alive() and not self._closing):
            return False
        if not self._connected.is_set():
            return True
        with self._cond:
            pending = bool(self._queue) or self._sending
        # Frames wait while connected: the broker must have acknowledged one within stall_s (counted from
        # the connect, or from when work came after an idle spell).
        since = max(self._last_ack, self._connected_at, self._pending_since)
        return not pending or time.monotonic() - since < stall_s

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every queued frame was sent (while connected); False when some are still waiting."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._sending and (not self._queue or not self._connected.is_set()), timeout)

    def queue_length(self) -> int:
        return len(self._queue)

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "waiting": len(self._queue), **self.counters.as_dict(),
                "max_frame_bytes": self.frame_limit(), "broker_max_packet": self._broker_max_packet,
                **({"failure": self.failure} if self.failure else {})}

    def stop_sending(self, timeout: float = 1.0) -> None:
        """Send what is queued for at most `timeout` s (while connected), then stop the sender: a frame in
        flight without its PUBACK by then is counted unacknowledged, frames still queued dropped at stop.
        The counters are final afterwards (the final stats go out after this)."""
        if not self._started or self._closing:
            return
        with self._cond:
            self._closing = True
            self._stop_by = time.monotonic() + timeout
            self._cond.notify_all()
        self._sender.join(timeout + 1.0)
        with self._cond:
            self.counters.dropped_at_stop += len(self._queue)
            self._queue.clear()

    def close(self, timeout: float = 3.0, state: str = STOPPED) -> None:
        """stop_sending() (if not done yet), publish `state` (`stopped` after a clean stop, `failed`
        otherwise) retained, disconnect cleanly."""
        if not self._started:
            return
        deadline = time.monotonic() + timeout
        self.stop_sending(max(0.1, timeout / 2 - 1.0))
        if self.connected:
            info = self._client.publish(self.topics.available, state, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                log.warning("could not publish '%s' before exit", state)
        self._client.disconnect()
        self._client.loop_stop()
