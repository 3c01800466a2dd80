"""The daemon with `[plates] enabled` on a real mosquitto: a real photo's plate is covered in every published frame,
events and stats count plates apart from faces, and a broken plate model publishes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from devkit.broker import Broker, mosquitto_binary
from devkit.daemon_kit import Collector, decode_jpeg
from tests.runtime.test_daemon import base_config, read_frames, start_daemon
from tests.runtime.test_plates import leaked, nan_plates, plate_photo, plates_model  # noqa: F401 (fixtures)

FRAMES = 8
FPS = 8.0

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


@pytest.fixture(scope="module")
def plate_clip(tmp_path_factory, plate_photo) -> tuple[Path, np.ndarray]:  # noqa: F811
    """FRAMES frames of the photo drifting 2 px a frame to the right (MJPEG .avi), and the plate box per frame."""
    path, box = plate_photo
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    clip = tmp_path_factory.mktemp("plates") / "plate.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    boxes = []
    for i in range(FRAMES):
        shift = np.float32([[1, 0, 2 * i], [0, 1, 0]])
        writer.write(cv2.warpAffine(image, shift, (w, h), borderMode=cv2.BORDER_REPLICATE))
        boxes.append(box + [2 * i, 0, 2 * i, 0])
    writer.release()
    return clip, np.array(boxes)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(tmp_path_factory.mktemp("broker")) as b:
        yield b


def plates_config(port: int, clip: Path, model: Path) -> str:
    return base_config(port, f"file://{clip}", extra=(f'[plates]\nenabled = true\nmethod = "synthetic"\n'
                                                      f'model = "{model}"\n'))


def test_daemon_covers_plates(tmp_path, plate_clip, broker, plates_model):  # noqa: F811
    clip, boxes = plate_clip
    collector = Collector(broker.port, camera="cam1")
    daemon = start_daemon(tmp_path, plates_config(broker.port, clip, plates_model))
    rc = daemon.wait()
    r = collector.finish()
    assert rc == 0, daemon.stderr()
    assert "licence AGPL-3.0" in daemon.stderr()
    sources = read_frames(clip)
    assert [i for i, _ in r.frames] == list(range(FRAMES))
    for (index, jpeg), event in zip(r.frames, r.events, strict=True):
        published = decode_jpeg(jpeg)
        assert not leaked(published, sources[index], boxes[index]), f"frame {index}: the plate is published raw"
        assert event["plates"] >= 1 and len(event["plate_boxes"]) == event["plates"]
        assert "synthetic" in event["plate_methods"]
        assert len(event["boxes"]) == event["faces"]  # faces are counted apart
    final = r.final()
    assert final["plates"] == sum(e["plates"] for e in r.events) >= FRAMES
    assert final["redacted"] == final["mqtt"]["acked"] == FRAMES and final["drops"] == 0
    assert f"{final['plates']} plates" in daemon.stderr()  # the last log line counts them apart too


def test_daemon_refuses_a_broken_plate_model(tmp_path, plate_clip, broker, plates_model):  # noqa: F811
    clip, _ = plate_clip
    bad = nan_plates(plates_model, tmp_path / "nan.onnx")
    collector = Collector(broker.port, camera="cam1")
    daemon = start_daemon(tmp_path, plates_config(broker.port, clip, bad))
    rc = daemon.wait()
    time.sleep(0.5)
    collector.close()
    assert rc == 1, daemon.stderr()
    assert "self-test failed" in daemon.stderr() and "Traceback" not in daemon.stderr()
    assert collector.received.frames == [] and collector.received.events == []
