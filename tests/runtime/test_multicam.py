"""Several cameras in one daemon ([[cameras]]): a real mosquitto, real ONNX Runtime, real faces, cameras that break.

The healthy camera keeps publishing while another stops mid-stream and a third is a corrupt file; the
broken ones are reported and reconnect, or end the daemon, as the config says; no published frame of any
camera shows a face as it was.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from devkit.broker import mosquitto_binary
from devkit.daemon_kit import Collector, decode_jpeg, make_clip
from tests.runtime.test_daemon import read_frames, start_daemon

CLIP_FRAMES = 24
CLIP_FPS = 12.0

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "faces.avi", frames=CLIP_FRAMES, size=(640, 360),
                     fps=CLIP_FPS)


def device_config(port: int, cameras: dict[str, str], extra: dict[str, str] | None = None) -> str:
    """Three cameras' tables over one top level (blur, generous deadline, fast reconnects)."""
    text = ('[model]\nmethod = "blur"\n[pipeline]\nstats_interval_s = 1.0\ndeadline_ms = 60000.0\ntarget_fps = 0\n'
            '[source]\nreconnect_min_s = 0.2\nreconnect_max_s = 0.5\nloop = true\nrealtime = true\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nreconnect_min_s = 1\nreconnect_max_s = 2\n')
    for name, uri in cameras.items():
        text += f'[[cameras]]\ncamera_id = "{name}"\n[cameras.source]\nuri = "{uri}"\n'
        text += (extra or {}).get(name, "")
    return text


def camera_frames(received, camera: str) -> list[tuple[int, bytes]]:
    return [f for f, topic in zip(received.frames, received.frame_topics) if topic == f"edgeanon/{camera}/frame"]


def available(received, camera: str) -> list[str]:
    """What the camera's `available` topic said, in order."""
    return [a for a, topic in zip(received.available, received.available_topics)
            if topic == f"edgeanon/{camera}/available"]


def assert_no_face_as_it_was(received, source: list[np.ndarray]) -> int:
    """Every frame published by any camera had faces found and covered: each face box differs from the source."""
    events = {(e["camera"], e["frame_index"]): e for e in received.events}
    checked = 0
    for (index, payload), topic in zip(received.frames, received.frame_topics):
        camera = topic.split("/")[1]
        event = events.get((camera, index))
        assert event is not None, f"{camera} frame {index} came without its event"
        original = source[index % CLIP_FRAMES]
        published = decode_jpeg(payload)
        if event["fully_masked"]:
            continue
        assert event["faces"] >= 1, f"{camera} frame {index}: published with no face handled (every frame has one)"
        for x1, y1, x2, y2 in (np.array(b).astype(int) for b in event["boxes"]):
            region = (slice(max(0, y1), y2), slice(max(0, x1), x2))
            diff = np.abs(published[region].astype(int) - original[region].astype(int)).mean()
            assert diff > 8, f"{camera} frame {index}: a face box is the source's (mean difference {diff:.1f})"
        checked += 1
    return checked


def test_the_healthy_camera_keeps_publishing_while_others_break(tmp_path, clip, mosquitto_broker):
    stops = tmp_path / "stops.avi"
    shutil.copy(clip, stops)
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    collector = Collector(mosquitto_broker.port)
    config = device_config(mosquitto_broker.port, {"good": f"file://{clip}", "stops": f"file://{stops}",
                                                   "corrupt": f"file://{corrupt}"})
    daemon = start_daemon(tmp_path, config)
    try:
        assert collector.wait_for(lambda r: len(camera_frames(r, "stops")) >= 4 and len(camera_frames(r, "good"))
                                  >= 4, 120), daemon.stderr()
        stops.unlink()  # the camera goes away mid-stream: at the end of its pass it cannot reopen its file
        assert collector.wait_for(lambda r: "stops.avi" in daemon.stderr() and "not found" in daemon.stderr(),
                                  60), daemon.stderr()
        stopped_at = len(camera_frames(collector.received, "stops"))
        good_at = len(camera_frames(collector.received, "good"))
        # While it is away the healthy camera goes on: another full pass of its clip arrives.
        assert collector.wait_for(lambda r: len(camera_frames(r, "good")) >= good_at + CLIP_FRAMES // 2, 120), \
            daemon.stderr()
        assert len(camera_frames(collector.received, "stops")) <= stopped_at + 1
        shutil.copy(clip, stops)  # back: it reconnects by itself
        assert collector.wait_for(lambda r: len(camera_frames(r, "stops")) >= stopped_at + 4, 120), daemon.stderr()
        assert daemon.proc.poll() is None, daemon.stderr()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.stderr()
        assert collector.wait_for(lambda r: len(r.finals()) >= 2, 10)
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        collector.close()
    log = daemon.stderr()
    received = collector.received
    assert camera_frames(received, "corrupt") == [], "a corrupt file publishes nothing"
    assert "camera corrupt: cannot open its source" in log and "cannot be opened as video" in log
    assert "camera corrupt: restarted" in log, "retried alone (on_camera_failure = restart)"
    reports = [s for s in received.stats if s.get("camera") == "corrupt"]
    assert reports and all("cannot be opened as video" in s["failed"] for s in reports), "reported on its topic"
    assert "failed" in available(received, "corrupt") and available(received, "good")[-1] == "stopped"
    finals = {s["camera"]: s for s in received.finals()}
    assert set(finals) == {"good", "stops"} and finals["good"]["frames_in"] > CLIP_FRAMES
    good_events = [e for e in received.events if e["camera"] == "good"]
    assert all(e["latency_ms"] <= 60000.0 for e in good_events), "every healthy frame within its deadline"
    indexes = [i for i, _ in camera_frames(received, "good")]
    assert indexes == sorted(indexes), "each camera's frames in order, its own frame_index"
    assert assert_no_face_as_it_was(received, read_frames(clip)) >= CLIP_FRAMES
    assert received.other == [] or all(not t.endswith("/frame") for t, _ in received.other)


def test_a_broken_camera_ends_the_daemon_when_its_config_says_exit(tmp_path, clip, mosquitto_broker):
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    collector = Collector(mosquitto_broker.port)
    config = device_config(mosquitto_broker.port, {"good": f"file://{clip}", "corrupt": f"file://{corrupt}"},
                           {"corrupt": '[cameras.pipeline]\non_camera_failure = "exit"\n'})
    daemon = start_daemon(tmp_path, config)
    try:
        assert daemon.wait(120) == 1, daemon.stderr()
    finally:
        collector.close()
    assert "camera corrupt failed: the daemon exits" in daemon.stderr()
    assert_no_face_as_it_was(collector.received, read_frames(clip))


def test_a_hung_camera_is_restarted_alone_or_ends_the_device(clip, mosquitto_broker):
    """In process: one camera's driver hangs (open, no frame); the file camera beside it keeps delivering."""
    from edgeanon.config import cameras_of, config_from_dict
    from edgeanon.device import Camera, Device, GatedRedactor, camera_chain, share_models
    from edgeanon.publish.mqtt import MqttPublisher
    from edgeanon.redactor import Redactor
    from edgeanon.sources import Backoff, LiveSource, open_source
    from tests.runtime.test_sources import HungCapture

    hung = HungCapture()

    def opener(cfg):
        if cfg.uri == "file:///hung":
            return LiveSource("test://hung", lambda: hung, Backoff(0.05, 0.1))
        return open_source(cfg)

    for policy in ("restart", "exit"):
        cfg = config_from_dict({
            "model": {"method": "blur"}, "pipeline": {"target_fps": 0, "on_camera_failure": policy},
            "source": {"stall_timeout_s": 0.5, "reconnect_min_s": 0.1, "reconnect_max_s": 0.2, "loop": True,
                       "realtime": True},
            "mqtt": {"host": "127.0.0.1", "port": mosquitto_broker.port},
            "cameras": [{"camera_id": f"file-{policy}", "source": {"uri": f"file://{clip}"}},
                        {"camera_id": f"hung-{policy}", "source": {"uri": "file:///hung"}}]})
        base = Redactor.from_config(cfg.model, video=True)
        gate, shared = share_models(base, 2, 0.02)
        cameras = [Camera(c, GatedRedactor(camera_chain(base, shared), gate), opener,
                          lambda c: MqttPublisher(c.mqtt, c.camera_id)) for c in cameras_of(cfg)]
        device = Device(cameras, shared=shared)
        collector = Collector(mosquitto_broker.port, camera=f"file-{policy}")
        result: list[int] = []
        try:
            if policy == "restart":
                runner = threading.Thread(target=lambda d=device, out=result: out.append(d.run()))
                runner.start()
                deadline = time.monotonic() + 60
                while cameras[1].restarts < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert cameras[1].restarts >= 2, "the hung camera is restarted, again and again"
                before = len(collector.received.frames)
                assert collector.wait_for(lambda r, n=before: len(r.frames) >= n + 6, 60), "the file camera goes on"
                device.request_stop()
                runner.join(30)
                assert result == [0]
            else:
                assert device.run() == 1
                assert cameras[1].state == "failed"
        finally:
            hung.unblock.set()
            collector.close()
        hung = HungCapture()
