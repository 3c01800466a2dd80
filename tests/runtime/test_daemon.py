"""`edgeanon run` as a real subprocess: real mosquitto, real ONNX Runtime, real faces, real sd_notify socket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from devkit.broker import Broker, mosquitto_binary
from devkit.daemon_kit import Collector, decode_jpeg, make_clip
from devkit.notify import NotifySocket

REPO = Path(__file__).resolve().parents[2]
CLIP_FRAMES = 12
CLIP_FPS = 12.0

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


@dataclass
class Daemon:
    proc: subprocess.Popen
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"daemon did not exit in {timeout}s:\n{self.stderr()[-3000:]}") from None

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")


def start_daemon(tmp: Path, config: str, notify: NotifySocket | None = None, *args: str, cwd: Path = REPO,
                 preexec_fn=None) -> Daemon:
    cfg = tmp / "daemon.toml"
    cfg.write_text(config)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])  # for cwd != REPO
    if notify is not None:
        env.update(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000")
    log = tmp / "daemon.log"
    proc = subprocess.Popen([sys.executable, "-m", "edgeanon", "run", "--config", str(cfg), *args],
                            cwd=cwd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            preexec_fn=preexec_fn)
    return Daemon(proc, log)


def base_config(port: int, uri: str, extra: str = "", deadline_ms: float = 60_000.0) -> str:
    # A generous deadline: on a loaded CI machine a frame may take seconds; test_missed_deadline sets its own.
    # target_fps = 0: full-size detection whatever the load, so what these tests check does not depend on it.
    return (f'camera_id = "cam1"\n[source]\nuri = "{uri}"\nreconnect_min_s = 0.2\nreconnect_max_s = 0.5\n'
            f'[model]\nmethod = "blur"\n[pipeline]\nstats_interval_s = 1.0\ndeadline_ms = {deadline_ms}\n'
            'target_fps = 0\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nreconnect_min_s = 1\nreconnect_max_s = 2\n{extra}')


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "faces.avi", frames=CLIP_FRAMES, size=(640, 360),
                     fps=CLIP_FPS)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(tmp_path_factory.mktemp("broker")) as b:
        yield b


@dataclass
class Run:
    rc: int
    log: str
    received: object
    notify: list[str]


@pytest.fixture(scope="module")
def file_run(tmp_path_factory, clip, broker) -> Run:
    """One end-to-end run of the daemon over the clip, shared by the checks below."""
    tmp = tmp_path_factory.mktemp("e2e")
    notify = NotifySocket()
    collector = Collector(broker.port, camera="cam1")
    daemon = start_daemon(tmp, base_config(broker.port, f"file://{clip}"), notify)
    rc = daemon.wait()
    collector.wait_for(lambda r: r.available[-1:] == ["stopped"] and bool(r.finals()), 10)
    time.sleep(0.3)
    collector.close()
    notify.close()
    return Run(rc, daemon.stderr(), collector.received, notify.messages)


def test_file_source_end_to_end(file_run):
    r = file_run.received
    assert file_run.rc == 0, file_run.log
    assert [i for i, _ in r.frames] == list(range(CLIP_FRAMES)), "every frame, in order, with frame_index"
    assert all(decode_jpeg(jpeg).shape == (360, 640, 3) for _, jpeg in r.frames)
    assert [e["frame_index"] for e in r.events] == list(range(CLIP_FRAMES))
    for e in r.events:
        assert e["faces"] >= 1 and len(e["boxes"]) == e["faces"] == len(e["methods"])
        assert set(e["methods"]) == {"blur"} and e["latency_ms"] > 0 and not e["fully_masked"]
        assert abs(e["timestamp"] - e["frame_index"] / CLIP_FPS) < 1e-2
    assert r.available == ["online", "stopped"]
    final = r.final()
    assert final["frames_in"] == final["redacted"] == final["mqtt"]["acked"] == CLIP_FRAMES
    assert final["drops"] == 0 and final["faces"] == sum(e["faces"] for e in r.events)
    assert final["latency_ms"]["p50"] > 0 and final["mqtt"]["handed"] == CLIP_FRAMES
    assert final["telemetry"]["source"] in ("sys", "jtop")


def test_systemd_notify_for_real(file_run):
    messages = file_run.notify
    ready, stopping = next(i for i, m in enumerate(messages) if "READY=1" in m), messages.index("STOPPING=1")
    assert 0 < ready < stopping, messages
    assert "WATCHDOG=1" in messages
    assert any(m.startswith("STATUS=") and "fps" in m for m in messages)


@pytest.fixture(scope="module", params=["detector.onnx", "detector.int8.onnx"])
def privacy_run(request, tmp_path_factory, clip, broker) -> Run:
    """The daemon over the clip with each detector a checkout may default to: FP32 (a fresh clone without the
    shared data) and the CPU INT8 one (`make setup` with the data, when its gates passed)."""
    model = REPO / "models" / request.param
    if not model.is_file():
        pytest.skip(f"{model} not built (the INT8 detector needs the shared data and passing gates)")
    tmp = tmp_path_factory.mktemp("privacy")
    collector = Collector(broker.port, camera="cam1")
    config = base_config(broker.port, f"file://{clip}").replace('[model]\n', f'[model]\ndetector = "{model}"\n')
    daemon = start_daemon(tmp, config)
    rc = daemon.wait()
    collector.wait_for(lambda r: r.available[-1:] == ["stopped"], 10)
    time.sleep(0.3)
    collector.close()
    return Run(rc, daemon.stderr(), collector.received, [])


def test_no_face_survives_by_a_different_detector(privacy_run, clip):
    """dlib (not CenterFace) finds the faces of the source; none of them is recognisable in what arrived.

    Recognisable: dlib's HOG detector finds a face at the same place in the published frame AND dlib's face
    descriptor there is still the source person's (distance < 0.6, dlib's own same-person threshold). HOG
    alone also fires on the silhouette of a well-blurred head (hair around a smooth oval, descriptor
    distance 0.83 from the person), which is not a face that leaves the device.
    """
    import importlib.util

    import dlib

    hog = dlib.get_frontal_face_detector()
    models = Path(list(importlib.util.find_spec("face_recognition_models").submodule_search_locations)[0]) / "models"
    shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def faces(image: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [(d.left(), d.top(), d.right(), d.bottom()) for d in hog(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 1)]

    def descriptor(image: np.ndarray, box) -> np.ndarray:
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        return np.array(net.compute_face_descriptor(rgb, shape(rgb, dlib.rectangle(*box))))

    def overlaps(a, b) -> bool:
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union > 0.2

    assert privacy_run.rc == 0, privacy_run.log
    source = read_frames(clip)
    received = dict(privacy_run.received.frames)
    assert len(received) == len(source) == CLIP_FRAMES
    source_faces = [faces(image) for image in source]
    assert sum(len(f) for f in source_faces) >= CLIP_FRAMES, "dlib must see the faces of the source"
    survivors = []
    for index, original in enumerate(source_faces):
        published = decode_jpeg(received[index])
        for found in faces(published):
            for face in original:
                if overlaps(face, found):
                    distance = float(np.linalg.norm(descriptor(published, found) - descriptor(source[index], face)))
                    if distance < 0.6:
                        survivors.append((index, found, round(distance, 3)))
    assert survivors == [], f"faces still recognisable after redaction: {survivors}"


def test_broker_killed_and_restarted_mid_stream(tmp_path, clip, broker):
    lo = Broker(tmp_path / "broker")
    lo.start()
    collector = Collector(lo.port, camera="cam1")
    extra = "queue_size = 4\n"
    config = base_config(lo.port, f"file://{clip}", extra).replace("reconnect_max_s = 0.5\n",
                                                                    "reconnect_max_s = 0.5\nloop = true\n"
                                                                    "realtime = true\n")
    daemon = start_daemon(tmp_path, config)
    try:
        assert collector.wait_for(lambda r: len(r.frames) >= 8, 60), daemon.stderr()
        rss_before = daemon.rss_mb()
        lo.kill()
        time.sleep(3.0)  # the daemon keeps reading and redacting; its queue keeps only the newest
        assert daemon.proc.poll() is None, daemon.stderr()
        last_before = collector.received.frames[-1][0]
        lo.start()
        assert collector.wait_for(lambda r: r.frames[-1][0] > last_before + CLIP_FPS * 2, 60), daemon.stderr()
        rss_after = daemon.rss_mb()
        assert daemon.proc.poll() is None
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.stderr()
        assert collector.wait_for(lambda r: r.available[-1:] == ["stopped"], 10)
        final = collector.received.finals()
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        collector.close()
        lo.stop()
    assert rss_after < rss_before + 64, f"RSS grew from {rss_before:.0f} to {rss_after:.0f} MB"
    assert "disconnected" in daemon.stderr()
    assert final and final[-1]["mqtt"]["connects"] >= 2
    assert final[-1]["mqtt"]["dropped_queue"] > 0, "frames made while the broker was away were dropped, not hoarded"
    assert collector.received.available.count("online") >= 2


def failing_detector(path: Path) -> Path:
    """The real detector behind a reshape to the self-test picture's size: it passes the start-up self-test
    (edgeanon.selftest), then fails on every camera frame, as a model that breaks after start-up would."""
    import onnx
    from onnx import TensorProto, helper

    from edgeanon.detector import MULTIPLE
    from edgeanon.selftest import SELFTEST_IMAGE

    h, w = cv2.imread(str(SELFTEST_IMAGE)).shape[:2]
    padded = [-(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE]
    model = onnx.load(str(REPO / "models" / "detector.onnx"))
    graph = model.graph
    name = graph.input[0].name
    graph.input[0].name = "camera"
    graph.initializer.append(helper.make_tensor("selftest_shape", TensorProto.INT64, [4], [1, 3, *padded]))
    graph.node.insert(0, helper.make_node("Reshape", ["camera", "selftest_shape"], [name]))
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("on_failure", ["drop", "mask"])
def test_failing_detector_fails_closed(tmp_path, clip, broker, on_failure):
    bad = failing_detector(tmp_path / "bad.onnx")
    notify = NotifySocket()
    collector = Collector(broker.port, camera="cam1")
    extra = f'[pipeline]\non_failure = "{on_failure}"\n'
    config = base_config(broker.port, f"file://{clip}").replace("[pipeline]\n", "[pipeline]\n" + extra[11:])
    daemon = start_daemon(tmp_path, config, notify, "--detector-model", str(bad))
    rc = daemon.wait()
    r = collector.finish()
    notify.close()
    assert rc == 0, daemon.stderr()
    final = r.final()
    assert final["frames_in"] == final["dropped_error"] == CLIP_FRAMES
    assert "redaction failed" in daemon.stderr()
    if on_failure == "drop":
        assert r.frames == [] and r.events == [], "nothing published when redaction fails"
        assert final["redacted"] == 0 and final["mqtt"]["handed"] == 0
    else:
        assert len(r.frames) == final["masked"] == final["redacted"] == final["mqtt"]["acked"] == CLIP_FRAMES
        for _, jpeg in r.frames:
            assert decode_jpeg(jpeg).max() <= 8, "a masked frame shows nothing of the scene"
        assert all(e["fully_masked"] and e["faces"] == 0 for e in r.events)
    assert any("READY=1" in m for m in notify.messages)


def test_missing_camera_retries_and_last_will(tmp_path, broker):
    notify = NotifySocket()
    collector = Collector(broker.port, camera="cam1")
    daemon = start_daemon(tmp_path, base_config(broker.port, "v4l2:///dev/video97"), notify)
    try:
        deadline = time.monotonic() + 60
        while daemon.stderr().count("retrying") < 4 and time.monotonic() < deadline:
            assert daemon.proc.poll() is None, daemon.stderr()
            time.sleep(0.2)
        assert daemon.stderr().count("/dev/video97 not present; retrying") >= 4
        assert collector.wait_for(lambda r: r.available[-1:] == ["online"], 10)
        assert daemon.proc.poll() is None
        daemon.proc.kill()  # an abrupt death: the broker publishes the last will
        daemon.proc.wait(10)
        assert collector.wait_for(lambda r: r.available[-1:] == ["offline"], 10)
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        collector.close()
        notify.close()
    assert any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in notify.messages), "start timeout extended"
    assert not any("READY=1" in m for m in notify.messages), "not ready before a first frame"
    assert "WATCHDOG=1" in notify.messages, "the loop stays alive while the camera is away"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_device_certificate_with_acl(tmp_path, clip):
    with Broker(tmp_path / "secure", tls=True) as secure:
        cert, key = secure.cert_for("cam1")
        viewer = Collector(secure.password_tls_port, camera="+", tls={"ca_certs": secure.ca_path},
                           auth=("viewer", secure.passwords["viewer"]))
        tls = f'[mqtt.tls]\nca = "{secure.ca_path}"\ncert = "{cert}"\nkey = "{key}"\n'
        daemon = start_daemon(tmp_path, base_config(secure.tls_port, f"file://{clip}", tls))
        rc = daemon.wait()
        viewer.wait_for(lambda r: r.available[-1:] == ["stopped"], 10)
        viewer.close()
    r = viewer.received
    assert rc == 0, daemon.stderr()
    assert [i for i, _ in r.frames] == list(range(CLIP_FRAMES))
    assert len(r.events) == CLIP_FRAMES and r.available == ["online", "stopped"]
    assert json.loads(json.dumps(r.stats[-1]))["mqtt"]["acked"] == CLIP_FRAMES


def test_missed_deadline_drops_frames(tmp_path, clip, broker):
    collector = Collector(broker.port, camera="cam1")
    config = base_config(broker.port, f"file://{clip}", deadline_ms=0.5)
    daemon = start_daemon(tmp_path, config)
    rc = daemon.wait()
    r = collector.finish()
    assert rc == 0, daemon.stderr()
    final = r.final()
    assert final["dropped_deadline"] == final["frames_in"] == CLIP_FRAMES
    assert r.frames == [] and final["redacted"] == final["mqtt"]["handed"] == 0, "a late frame is dropped, never sent"


def test_hung_camera_exits_for_a_restart(mosquitto_broker, detector_model):
    from edgeanon.config import config_from_dict
    from edgeanon.pipeline import Pipeline
    from edgeanon.publish.mqtt import MqttPublisher
    from edgeanon.redactor import Redactor
    from edgeanon.sources import Backoff, LiveSource
    from tests.runtime.test_sources import HungCapture

    cfg = config_from_dict({"source": {"stall_timeout_s": 0.5},
                            "mqtt": {"host": "127.0.0.1", "port": mosquitto_broker.port}})
    hung = HungCapture()
    source = LiveSource("test://hung", lambda: hung, Backoff(0.05, 0.1))
    publisher = MqttPublisher(cfg.mqtt, cfg.camera_id)
    publisher.start()
    try:
        # No frame ever comes, so the redactor is asked for none (only, for the final stats, for its method).
        redactor = Redactor.from_config(cfg.model, video=True)
        assert Pipeline(cfg, source, redactor=redactor, publisher=publisher).run() == 1
    finally:
        hung.unblock.set()
        source.close()
