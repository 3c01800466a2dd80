"""The MQTT publisher and JPEG encoder against a real mosquitto: topics, properties, type boundary, limits, TLS+ACL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

from devkit.broker import CERTS_SH, Broker, SilentBroker, free_port
from devkit.daemon_kit import Collector, decode_jpeg
from edgeanon.anonymize import Anonymizer
from edgeanon.config import MqttConfig, TlsConfig
from edgeanon.detector import FaceDetector
from edgeanon.encode import JpegEncoder, PayloadTooLarge
from edgeanon.frames import Frame, RedactedFrame
from edgeanon.publish.mqtt import MAX_CONSECUTIVE_ERRORS, MqttPublisher, Topics


@pytest.fixture(scope="module")
def redact(detector_model, face_image):
    """Returns a function making the index-th RedactedFrame of the astronaut, the real way."""
    detector = FaceDetector.from_path(detector_model)
    faces = detector.detect(face_image)
    assert faces, "the astronaut has a face"
    anonymizer = Anonymizer("blur")

    def make(index: int) -> RedactedFrame:
        return anonymizer.redact(Frame(index, index / 10.0, face_image.copy()), faces)

    return make


def cfg_for(port: int, **kw) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=port, reconnect_min_s=1, reconnect_max_s=2, **kw)


def event_for(frame: RedactedFrame) -> dict:
    return {"frame_index": frame.index, "faces": len(frame.faces)}


def test_frames_events_and_availability(mosquitto_broker, redact):
    collector = Collector(mosquitto_broker.port, camera="cam")
    pub = MqttPublisher(cfg_for(mosquitto_broker.port, frame_expiry_s=7), "cam")
    pub.start()
    try:
        assert pub.wait_connected(10)
        for i in range(3):
            assert pub.publish_frame(redact(i), event_for(redact(i)), started=time.monotonic()) is not None
        pub.publish_stats({"fps": 1.0})
        assert collector.wait_for(lambda r: len(r.frames) == 3 and len(r.events) == 3 and r.stats, 10)
    finally:
        pub.close()
    assert collector.wait_for(lambda r: r.available[-1:] == ["stopped"], 5)
    r = collector.received
    collector.close()
    assert [i for i, _ in r.frames] == [0, 1, 2]
    image = decode_jpeg(r.frames[0][1])
    assert image.shape == (512, 512, 3)
    props = r.frame_properties[0]
    assert props["MessageExpiryInterval"] == 7 and props["ContentType"] == "image/jpeg"
    assert props["qos"] == 1 and not props["retain"]  # QoS 1: the PUBACK says whether the broker took it
    assert [e["frame_index"] for e in r.events] == [0, 1, 2]
    assert all(e["faces"] == 1 and e["latency_ms"] >= 0 for e in r.events)
    assert r.stats == [{"fps": 1.0}]
    assert r.available == ["online", "stopped"]
    assert pub.stats()["acked"] == 3 and pub.stats()["refused"] == 0 and pub.healthy()


def test_only_redacted_frames_cross(face_image):
    pub = MqttPublisher(cfg_for(free_port()), "cam")
    raw = Frame(0, 0.0, face_image.copy())
    with pytest.raises(TypeError, match="only RedactedFrame"):
        pub.publish_frame(raw, {})
    with pytest.raises(TypeError, match="only RedactedFrame"):
        pub.publish_frame(face_image, {})
    with pytest.raises(TypeError, match="only RedactedFrame"):
        JpegEncoder().encode(raw)
    with pytest.raises(TypeError, match="only be made by the anonymizer"):
        RedactedFrame(0, 0.0, face_image)
    assert pub.queue_length() == 0


def test_encoder_keeps_under_the_limit(redact):
    frame = redact(0)
    big = JpegEncoder(quality=95).encode(frame)
    limit = len(big.data) // 4
    small = JpegEncoder(quality=95, min_quality=40, max_bytes=limit).encode(frame)
    assert len(small.data) <= limit
    assert small.quality < 95 or small.width < 512
    assert decode_jpeg(small.data).shape[:2] == (small.height, small.width)
    with pytest.raises(PayloadTooLarge):
        JpegEncoder(max_bytes=10, min_scale=0.5).encode(frame)


def test_too_large_frame_is_dropped_not_sent(mosquitto_broker, redact):
    pub = MqttPublisher(cfg_for(mosquitto_broker.port), "cam", JpegEncoder(max_bytes=100, min_scale=0.5))
    assert pub.publish_frame(redact(0), {}) is None
    assert pub.counters.dropped_too_large == 1 and pub.queue_length() == 0


def test_queue_is_bounded_while_broker_away(tmp_path, redact, caplog):
    broker = Broker(tmp_path / "late")  # its port is chosen, nothing listens yet
    pub = MqttPublisher(cfg_for(broker.port, queue_size=4), "cam")
    pub.start()
    try:
        for i in range(20):
            pub.publish_frame(redact(i), event_for(redact(i)))
        assert pub.queue_length() == 4
        assert pub.counters.dropped_queue == 16
        deadline = time.monotonic() + 10
        while "unreachable" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"mqtt 127.0.0.1:{broker.port} unreachable (ConnectionRefusedError" in caplog.text
        with broker:
            collector = Collector(broker.port, camera="cam")
            assert pub.wait_connected(15)
            deadline = time.monotonic() + 10
            while pub.stats()["acked"] < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pub.stats()["acked"] == 4, "the newest frames are sent once the broker is back"
            assert all(16 <= i <= 19 for i, _ in collector.received.frames), "only the newest were kept"
            pub.close()
            collector.close()
    finally:
        pub.close()


def test_home_assistant_discovery(mosquitto_broker):
    pub = MqttPublisher(cfg_for(mosquitto_broker.port, homeassistant=True), "porch")
    pub.start()
    try:
        assert pub.wait_connected(10)
        collector = Collector(mosquitto_broker.port, camera="porch", extra_topics=("homeassistant/#",))
        assert collector.wait_for(lambda r: r.other, 5), "discovery is retained"
        topic, payload = collector.received.other[0]
        collector.close()
    finally:
        pub.close()
    assert topic == "homeassistant/camera/edgeanon_porch/config"
    config = json.loads(payload)
    topics = Topics.for_camera("edgeanon", "porch")
    assert config["topic"] == topics.frame
    assert config["availability"][0]["topic"] == topics.available
    assert config["unique_id"] == "edgeanon_porch"


def test_tls_device_certificate_and_acl(secure_broker, redact, caplog):
    cert, key = secure_broker.cert_for("cam1")
    tls = {"ca_certs": secure_broker.ca_path}
    viewer = Collector(secure_broker.password_tls_port, camera="+", tls=tls,
                       auth=("viewer", secure_broker.passwords["viewer"]))

    def publisher(camera_id: str) -> MqttPublisher:
        cfg = cfg_for(secure_broker.tls_port, client_id=f"edgeanon-{camera_id}-test",
                      tls=TlsConfig(ca=secure_broker.ca_path, cert=cert, key=key))
        pub = MqttPublisher(cfg, camera_id)
        pub.start()
        assert pub.wait_connected(10), secure_broker.log_tail()
        return pub

    own = publisher("cam1")
    try:
        own.publish_frame(redact(5), event_for(redact(5)))
        assert viewer.wait_for(lambda r: r.frames and r.events, 10)
    finally:
        own.close()
    # The same certificate may not write another camera's topics: the broker refuses them in its PUBACK,
    # and the publisher counts that as refused, never as sent.
    other = publisher("cam2")
    try:
        for i in (6, 7):
            other.publish_frame(redact(i), event_for(redact(i)))
        deadline = time.monotonic() + 10
        while other.stats()["refused"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = other.stats()
    finally:
        other.close()
    assert stats["refused"] == 2 and stats["acked"] == 0 and stats["unacked"] == 0, stats
    assert "refused frames on edgeanon/cam2/frame" in caplog.text and "ACL" in caplog.text
    viewer.wait_for(lambda r: r.available.count("stopped") >= 1, 5)
    r = viewer.received
    viewer.close()
    assert [i for i, _ in r.frames] == [5], "cam1's frame arrived, cam2's write was refused"
    assert r.available[:2] == ["online", "stopped"]
    assert np.asarray(decode_jpeg(r.frames[0][1])).shape == (512, 512, 3)


def test_mqtt_311_for_older_brokers(mosquitto_broker, redact):
    collector = Collector(mosquitto_broker.port, camera="old", protocol="3.1.1")
    pub = MqttPublisher(cfg_for(mosquitto_broker.port, protocol="3.1.1"), "old")
    pub.start()
    try:
        assert pub.wait_connected(10)
        pub.publish_frame(redact(3), event_for(redact(3)))
        assert collector.wait_for(lambda r: r.frames and r.events, 10)
    finally:
        pub.close()
    assert collector.wait_for(lambda r: r.available[-1:] == ["stopped"], 5)
    collector.close()
    r = collector.received
    assert r.frame_properties[0].get("UserProperty") is None, "no MQTT 5 properties in 3.1.1"
    assert r.events[0]["frame_index"] == 3 and r.available == ["online", "stopped"]


def test_username_password(tmp_path, redact):
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("openssl and mosquitto_passwd are needed")
    passwords = {"viewer": "viewer-secret", "cam2": "cam2-secret"}
    with Broker(tmp_path / "pw", tls=True, passwords=passwords) as broker:
        viewer = Collector(broker.port, camera="cam2", auth=("viewer", passwords["viewer"]))
        wrong = MqttPublisher(cfg_for(broker.port, username="cam2", password="wrong"), "cam2")
        wrong.start()
        assert not wrong.wait_connected(2), "a wrong password is refused"
        wrong.close()
        pub = MqttPublisher(cfg_for(broker.port, username="cam2", password=passwords["cam2"]), "cam2")
        pub.start()
        try:
            assert pub.wait_connected(10)
            pub.publish_frame(redact(9), event_for(redact(9)))
            assert viewer.wait_for(lambda r: r.frames, 10)
        finally:
            pub.close()
            viewer.close()
    assert viewer.received.frames[0][0] == 9


def test_sender_errors_are_counted_and_end_in_a_failure(mosquitto_broker, redact, caplog):
    """An error while sending (here an expiry too large to pack, which config validation now refuses)
    no longer kills the sender thread silently: it is counted and logged, and when it keeps happening
    the publisher fails visibly (the pipeline then exits non-zero for a restart)."""
    pub = MqttPublisher(cfg_for(mosquitto_broker.port, frame_expiry_s=5_000_000_000), "cam")
    pub.start()
    try:
        assert pub.wait_connected(10)
        for i in range(MAX_CONSECUTIVE_ERRORS + 1):
            pub.publish_frame(redact(i), event_for(redact(i)))
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while pub.failure is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = pub.stats()
        assert stats["dropped_error"] == MAX_CONSECUTIVE_ERRORS and stats["acked"] == 0, stats
        assert "send errors in a row" in stats["failure"] and not pub.healthy()
        assert not pub.publish_frame(redact(9), {}), "a failed publisher takes no more frames"
        assert "mqtt: sending a frame failed" in caplog.text and "mqtt sender stopped" in caplog.text
    finally:
        pub.close()


def test_healthy_only_while_frames_leave_or_the_broker_is_away(tmp_path, redact):
    """A broker that holds the connection but answers nothing (SIGSTOP) is not health; one that is gone is
    known to be away (the queue drops the oldest frames), and a restart would not help."""
    broker = Broker(tmp_path / "b").start()
    pub = MqttPublisher(cfg_for(broker.port, keepalive_s=60), "cam")
    pub.start()
    try:
        assert pub.wait_connected(10)
        pub.publish_frame(redact(0), event_for(redact(0)))
        assert pub.flush(5) and pub.stats()["acked"] == 1 and pub.healthy(stall_s=1.0)
        os.kill(broker._proc.pid, signal.SIGSTOP)
        try:
            for i in range(1, 4):
                pub.publish_frame(redact(i), event_for(redact(i)))
            time.sleep(1.5)
            assert pub.connected and not pub.healthy(stall_s=1.0), pub.stats()
        finally:
            os.kill(broker._proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while not (pub.queue_length() == 0 and pub.healthy(stall_s=1.0)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.healthy(stall_s=1.0) and pub.stats()["acked"] >= 2, pub.stats()
        broker.kill()
        deadline = time.monotonic() + 10
        while pub.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        for i in range(4, 8):
            pub.publish_frame(redact(i), event_for(redact(i)))
        time.sleep(1.5)
        assert not pub.connected and pub.queue_length() > 0 and pub.healthy(stall_s=1.0)
    finally:
        pub.close()
        broker.stop()


def test_a_hung_broker_is_seen_however_fast_the_queue_turns_over(tmp_path, redact):
    """With a queue of 1 the waiting frame is replaced every second, so no frame grows old; what counts is
    that the broker acknowledged nothing for stall_s while frames were waiting."""
    broker = Broker(tmp_path / "b").start()
    pub = MqttPublisher(cfg_for(broker.port, keepalive_s=60, queue_size=1), "cam")
    pub.start()
    try:
        assert pub.wait_connected(10)
        pub.publish_frame(redact(0), event_for(redact(0)))
        assert pub.flush(5) and pub.healthy(stall_s=2.5)
        os.kill(broker._proc.pid, signal.SIGSTOP)
        try:
            seen = []
            deadline = time.monotonic() + 5.0
            i = 1
            while time.monotonic() < deadline:  # each call waits up to 1 s for room, then drops the oldest
                pub.publish_frame(redact(i), event_for(redact(i)))
                seen.append(pub.healthy(stall_s=2.5))
                i += 1
            assert pub.connected and seen[0] and not seen[-1], (seen, pub.stats())
        finally:
            os.kill(broker._proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while not pub.healthy(stall_s=2.5) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.healthy(stall_s=2.5), pub.stats()
    finally:
        pub.close()
        broker.stop()


# -- honest delivery (issue 26) -------------------------------------------------------------------

def test_the_brokers_maximum_packet_size_is_honoured(tmp_path, redact):
    """mosquitto with max_packet_size announces it in its CONNACK (MQTT 5): every frame is encoded to fit it
    and acknowledged on one connection. Before, a frame over it got the connection cut on every frame."""
    with Broker(tmp_path / "small", extra_config="max_packet_size 20000\n") as broker:
        collector = Collector(broker.port, camera="cam")
        pub = MqttPublisher(cfg_for(broker.port), "cam")  # max_payload: 1.9 MB
        full = len(JpegEncoder().encode(redact(0)).data)
        pub.start()
        try:
            assert pub.wait_connected(10)
            for i in range(3):
                assert pub.publish_frame(redact(i), event_for(redact(i))) is not None
            assert pub.flush(15)
            assert collector.wait_for(lambda r: len(r.frames) == 3, 10), pub.stats()
            stats = pub.stats()
        finally:
            pub.close()
            collector.close()
    assert full > 20000, "the frame as it comes is over the broker's limit"
    assert stats["broker_max_packet"] == 20000 and 19000 < stats["max_frame_bytes"] < 20000, stats
    assert (stats["queued"], stats["handed"], stats["acked"], stats["unacked"], stats["dropped"]) == (3, 3, 3, 0, 0)
    assert stats["connects"] == 1, "no disconnect"
    assert all(len(jpeg) <= stats["max_frame_bytes"] for _, jpeg in collector.received.frames)


def test_a_frame_over_the_brokers_limit_is_dropped_never_sent(tmp_path, redact, caplog):
    with Broker(tmp_path / "tiny", extra_config="max_packet_size 1500\n") as broker:
        collector = Collector(broker.port, camera="cam")
        pub = MqttPublisher(cfg_for(broker.port), "cam")
        pub.start()
        try:
            assert pub.wait_connected(10)
            for i in range(3):
                assert pub.publish_frame(redact(i), event_for(redact(i))) is None
            time.sleep(1.0)
            stats = pub.stats()
            assert pub.connected
        finally:
            pub.close()
        assert collector.wait_for(lambda r: r.available[-1:] == ["stopped"], 5)
        collector.close()
    assert stats["dropped_too_large"] == stats["dropped"] == 3 and stats["handed"] == stats["acked"] == 0, stats
    assert stats["connects"] == 1 and collector.received.frames == [] and collector.received.available == [
        "online", "stopped"]
    assert "the broker's Maximum Packet Size" in caplog.text and "frame dropped, not sent" in caplog.text


def test_a_broker_that_never_acknowledges_is_reported_then_given_up(redact, caplog):
    """A real TCP peer that takes the connection and swallows every PUBLISH: nothing is counted as
    acknowledged, a warning comes after no_ack_warn_s, and after no_ack_exit_s the publisher fails."""
    with SilentBroker() as silent:
        pub = MqttPublisher(cfg_for(silent.port, no_ack_warn_s=1.0, no_ack_exit_s=4.0, queue_size=2), "cam")
        pub.start()
        try:
            assert pub.wait_connected(10)
            deadline = time.monotonic() + 60
            i = 0
            while pub.failure is None and time.monotonic() < deadline:
                pub.publish_frame(redact(i), event_for(redact(i)))  # waits up to 1 s for room in the queue
                pub.check_progress()
                i += 1
            stats = pub.stats()
        finally:
            pub.close(timeout=1.0)
    assert pub.failure and "no frame acknowledged for" in pub.failure, stats
    assert "connected, but the broker acknowledges nothing" in pub.failure
    assert stats["acked"] == stats["refused"] == 0 and stats["handed"] >= 1 and silent.published >= 1, stats
    assert "no frame acknowledged for" in caplog.text and "exiting for a restart after 4 s" in caplog.text


def test_tls_against_a_plain_port_is_reported_never_counted(mosquitto_broker, tmp_path, redact, caplog):
    pki = tmp_path / "pki"
    subprocess.run([str(CERTS_SH), "--dir", str(pki), "ca"], check=True, capture_output=True)
    cfg = cfg_for(mosquitto_broker.port, tls=TlsConfig(ca=str(pki / "ca.crt")), no_ack_warn_s=1.0,
                  no_ack_exit_s=3.0, queue_size=2)
    pub = MqttPublisher(cfg, "cam")
    pub.start()
    try:
        deadline = time.monotonic() + 60
        i = 0
        while pub.failure is None and time.monotonic() < deadline:
            pub.publish_frame(redact(i), event_for(redact(i)))
            pub.check_progress()
            time.sleep(0.2)
            i += 1
        stats = pub.stats()
    finally:
        pub.close(timeout=1.0)
    assert not stats["connected"] and stats["connects"] == 0
    assert stats["handed"] == stats["acked"] == 0 and stats["dropped_queue"] > 0, stats
    assert pub.failure and "broker unreachable" in pub.failure and "TLS handshake failed" in pub.failure, pub.failure
    assert "is the port a TLS listener?" in caplog.text
