"""Host-side helpers for the daemon's tests, demo and benchmark: a clip of real faces and a subscriber.

Not part of the device runtime; raw clips written here are test inputs made from
public sample images, never camera frames.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent


# -- sample faces ---------------------------------------------------------------------------------

# Crops of two of scikit-image's sample pictures, saved losslessly so the demo needs no scikit-image: the
# astronaut's head and shoulders (NASA, public domain; astronaut()[0:260, 90:350], no mission patch) and the
# cameraman (CC0, Lav Varshney; camera()[40:340, 110:380]).
SAMPLES = Path(__file__).resolve().parent / "samples"


def sample_faces(data_dir: Path | None = None, use_shared: bool = True, cameraman: bool = False) -> list[np.ndarray]:
    """BGR face pictures: the astronaut's head (public domain), optionally the cameraman, plus one
    shared-data face when present and wanted."""
    faces = [cv2.imread(str(SAMPLES / "astronaut.png"), cv2.IMREAD_COLOR)]
    if cameraman:
        faces.append(cv2.imread(str(SAMPLES / "camera.png"), cv2.IMREAD_COLOR))
    data_dir = data_dir or Path(os.environ.get("EDGEANON_DATA", REPO.parent / "shared" / "data"))
    boxes_file = data_dir / "wider-train" / "boxes.json"
    if use_shared and boxes_file.is_file():
        boxes = json.loads(boxes_file.read_text())
        # one large, isolated, frontal-ish face (deterministic pick)
        for name in sorted(boxes):
            b = boxes[name]
            if len(b) == 1 and 150 <= b[0][3] - b[0][1] <= 300:
                image = cv2.imread(str(data_dir / "wider-train" / name))
                if image is None:
                    continue
                x1, y1, x2, y2 = (int(v) for v in b[0])
                m = int(0.6 * (y2 - y1))
                crop = image[max(0, y1 - m):y2 + m, max(0, x1 - m):x2 + m]
                if crop.size:
                    faces.append(np.ascontiguousarray(crop))
                break
    return faces


def render_frame(faces: list[np.ndarray], t: float, size: tuple[int, int]) -> np.ndarray:
    """One frame at time t in [0, 1]: faces pan across a textured background while zooming slowly."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (80 + 60 * np.sin(xx / 37.0 + t * 6)).astype(np.uint8)
    frame[..., 1] = (90 + 40 * np.cos(yy / 23.0)).astype(np.uint8)
    frame[..., 2] = 110
    slots = len(faces)
    for i, face in enumerate(faces):
        zoom = 0.55 + 0.25 * t if i == 0 else 0.45 + 0.2 * (1 - t)
        target_h = max(16, int(height * zoom))
        fh, fw = face.shape[:2]
        target_w = max(16, int(fw * target_h / fh))
        target_w = min(target_w, width // slots)
        target_h = min(target_h, height)
        patch = cv2.resize(face, (target_w, target_h), interpolation=cv2.INTER_AREA)
        lane = width // slots
        x = int(i * lane + (lane - target_w) * (t if i % 2 == 0 else 1 - t))
        y = int((height - target_h) * (0.3 + 0.4 * t))
        frame[y:y + target_h, x:x + target_w] = patch
    return frame


def make_clip(path: Path, frames: int = 24, size: tuple[int, int] = (640, 360), fps: float = 12.0,
              data_dir: Path | None = None, faces: list[np.ndarray] | None = None) -> Path:
    """Write a short MJPEG .avi (or mp4v .mp4) clip of moving real faces; returns path."""
    faces = faces if faces is not None else sample_faces(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: cannot write video")
    try:
        for k in range(frames):
            writer.write(render_frame(faces, k / max(1, frames - 1), size))
    finally:
        writer.release()
    return path


# -- a subscriber ---------------------------------------------------------------------------------

@dataclass
class Received:
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (frame_index property, JPEG)
    frame_properties: list[dict] = field(default_factory=list)  # MQTT v5 properties of each frame
    frame_topics: list[str] = field(default_factory=list)  # the topic of each frame (which camera)
    events: list[dict] = field(default_factory=list)
    stats: list[dict] = field(default_factory=list)
    available: list[str] = field(default_factory=list)
    available_topics: list[str] = field(default_factory=list)  # the topic of each (which camera)
    other: list[tuple[str, bytes]] = field(default_factory=list)

    def finals(self) -> list[dict]:
        """The final stats messages (one per camera that ended), in arrival order."""
        return [s for s in self.stats if s.get("final")]

    def final(self) -> dict:
        """The last final stats message (IndexError when none arrived)."""
        return self.finals()[-1]


class Collector:
    """Subscribes to <prefix>/<camera>/# and keeps everything that arrives, in order."""

    def __init__(self, port: int, prefix: str = "edgeanon", camera: str = "+", host: str = "127.0.0.1",
                 tls: dict | None = None, auth: tuple[str, str] | None = None, extra_topics: tuple[str, ...] = (),
                 protocol: str = "5"):
        import paho.mqtt.client as mqtt

        self.received = Received()
        self.lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topics = [f"{prefix}/{camera}/#", *extra_topics]
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"collector-{os.getpid()}-{port}",
                                  protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        if tls:
            self.client.tls_set(**tls)
        if auth:
            self.client.username_pw_set(*auth)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("collector could not subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg) -> None:
        topic = msg.topic
        with self.lock:
            r = self.received
            if topic.endswith("/frame"):
                props = msg.properties.json() if getattr(msg, "properties", None) is not None else {}
                user = dict(props.get("UserProperty", []) or [])
                r.frames.append((int(user.get("frame_index", -1)), bytes(msg.payload)))
                r.frame_properties.append({**props, "retain": msg.retain, "qos": msg.qos})
                r.frame_topics.append(topic)
            elif topic.endswith("/events"):
                r.events.append(json.loads(msg.payload))
            elif topic.endswith("/stats"):
                r.stats.append(json.loads(msg.payload))
            elif topic.endswith("/available"):
                r.available.append(msg.payload.decode())
                r.available_topics.append(topic)
            else:
                r.other.append((topic, bytes(msg.payload)))

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self.received):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def finish(self, cameras: int = 1, timeout: float = 10.0, settle: float = 0.3) -> Received:
        """After the daemon ended: wait for `cameras` final stats, let late messages land, close, and return
        what arrived (the caller asserts on it; a missing final stats shows there)."""
        self.wait_for(lambda r: len(r.finals()) >= cameras, timeout)
        time.sleep(settle)
        self.close()
        return self.received


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a JPEG")
    return image


# -- a broker for machines without mosquitto ----------------------------------------------------

class EmbeddedBroker:
    """amqtt (pure Python, MQTT 3.1.1 only) in a background thread on 127.0.0.1:port.

    Only for the demo on machines without mosquitto: clients must use protocol 3.1.1.
    """

    host = "127.0.0.1"

    def __init__(self, port: int):
        self.port = port
        self._loop = None
        self._broker = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> EmbeddedBroker:
        import asyncio

        from amqtt.broker import Broker as AmqttBroker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def go() -> None:
                self._broker = AmqttBroker(config)
                await self._broker.start()

            try:
                loop.run_until_complete(go())
            except BaseException as exc:  # reported to the caller of start()
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt", daemon=True)
        self._thread.start()
        self._ready.wait(20)
        if self._error is not None or not self._ready.is_set():
            raise RuntimeError(f"amqtt broker did not start: {self._error}")
        return self

    def stop(self) -> None:
        import asyncio

        if self._loop is None or self._broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        with contextlib.suppress(Exception):  # best effort at exit
            future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
