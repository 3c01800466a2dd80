"""docs/guide.md names every field of the events and stats messages the daemon really sends."""

from __future__ import annotations

import re
from pathlib import Path

from devkit.daemon_kit import make_clip
from edgeanon.config import config_from_dict
from edgeanon.frames import Frame
from edgeanon.pipeline import Pipeline
from edgeanon.publish.mqtt import MqttPublisher
from edgeanon.redactor import Redactor
from edgeanon.sources import FileSource

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"


def documented() -> set[str]:
    """Every `name` in the first column of the guide's tables (`a`, `b` rows count for both)."""
    names: set[str] = set()
    for line in GUIDE.read_text().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([a-z_.0-9]+)`", line.split(" | ")[0]))
    return names


def test_every_event_and_stats_field_is_in_the_guide(tmp_path, face_image, detector_model):
    clip = make_clip(tmp_path / "clip.avi", frames=2, size=(320, 180))
    cfg = config_from_dict({"model": {"method": "blur", "detector": str(detector_model)},
                            "source": {"uri": f"file://{clip}"}})
    publisher = MqttPublisher(cfg.mqtt, cfg.camera_id)  # never started: its counters are all there is to read
    pipeline = Pipeline(cfg, FileSource(str(clip)), Redactor.from_config(cfg.model, video=True), publisher)
    redacted = pipeline.redactor.process(Frame(0, 0.0, face_image.copy()))
    event = {**pipeline.event_for(redacted), "latency_ms": 1.0}  # the publisher adds latency_ms
    stats = pipeline.stats()
    names = documented()
    assert not set(event) - names, set(event) - names
    missing = {k for k in stats if k not in names and k not in ("mqtt", "telemetry")}
    missing |= {f"mqtt.{k}" for k in stats["mqtt"] if f"mqtt.{k}" not in names}
    assert not missing, f"fields the guide does not name: {sorted(missing)}"
    assert "final" in names
