"""The frame loop's fail-closed rules, fast: a real Anonymizer and real faces, small fakes around them.

The end-to-end versions (a real daemon, broker and detector) are in test_daemon.py; here each rule is one
frame through `Pipeline.handle` or a few through `Pipeline.run`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from edgeanon.anonymize import Anonymizer
from edgeanon.config import Config, config_from_dict
from edgeanon.frames import Detection, Frame, RedactedFrame
from edgeanon.pipeline import Pipeline
from edgeanon.sources import SourceEnded

FACE = np.array([181, 58, 270, 178], np.float32)  # the astronaut's face (x1, y1, x2, y2)


class ListSource:
    """Hands over the given frames, then ends like a file."""

    uri = "test://frames"

    def __init__(self, frames: list[Frame]):
        self.frames = list(frames)
        self.closed = False

    def read(self, timeout: float = 1.0) -> Frame | None:
        if not self.frames:
            raise SourceEnded(self.uri)
        return self.frames.pop(0)

    def stalled_s(self) -> float:
        return 0.0

    def stats(self) -> dict[str, Any]:
        return {"left": len(self.frames)}

    def close(self) -> None:
        self.closed = True


class RecordingPublisher:
    """Keeps what it is given (a copy of the pixels at publish time); refuses frames when `refuse` is set."""

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.frames: list[tuple[RedactedFrame, np.ndarray, dict]] = []
        self.stats_sent: list[dict] = []
        self.closed = False

    def wait_connected(self, timeout: float) -> bool:
        return True

    def publish_frame(self, frame: RedactedFrame, event: dict[str, Any], started: float | None = None) -> float | None:
        assert isinstance(frame, RedactedFrame)
        if self.refuse:
            return None
        self.frames.append((frame, frame.image.copy(), dict(event)))
        return 12.5

    def publish_stats(self, stats: dict[str, Any]) -> None:
        self.stats_sent.append(stats)

    def stats(self) -> dict[str, Any]:
        return {"acked": len(self.frames)}

    def stop_sending(self, timeout: float = 1.0) -> None:
        pass

    def close(self, timeout: float = 3.0, state: str = "stopped") -> None:
        self.closed = state


class FaceRedactor:
    """The real anonymizer on a known face box (no detector needed)."""

    def __init__(self, method: str = "fill", generator: Any = None, face: np.ndarray = FACE):
        self.anonymizer = Anonymizer(method, generator=generator)
        self.method = method
        self.face = face

    def process(self, frame: Frame) -> RedactedFrame:
        return self.anonymizer.redact(frame, [Detection(self.face, 0.9)])

    def mask_all(self, frame: Frame) -> RedactedFrame:
        return self.anonymizer.mask_all(frame)


class RaisingRedactor(FaceRedactor):
    def process(self, frame: Frame) -> RedactedFrame:
        raise RuntimeError("detector exploded")


class LateRedactor(FaceRedactor):
    """Redacts correctly, but after the deadline."""

    def __init__(self, delay_s: float):
        super().__init__()
        self.delay_s = delay_s

    def process(self, frame: Frame) -> RedactedFrame:
        time.sleep(self.delay_s)
        return super().process(frame)


class RawRedactor(FaceRedactor):
    """A broken redactor that hands back the raw frame."""

    def process(self, frame: Frame) -> Any:
        return frame


class BrokenMaskRedactor(RaisingRedactor):
    def mask_all(self, frame: Frame) -> RedactedFrame:
        raise RuntimeError("no memory left")


def config(on_failure: str = "drop", deadline_ms: float = 1000.0) -> Config:
    return config_from_dict({"pipeline": {"on_failure": on_failure, "deadline_ms": deadline_ms},
                             "model": {"method": "fill"}})


def raw_frame(face_image: np.ndarray, index: int = 0) -> Frame:
    return Frame(index, index / 10, face_image.copy())


def face_pixels(image: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = FACE.astype(int)
    return image[y1:y2, x1:x2]


def test_a_redacted_frame_is_published_with_its_event(face_image):
    publisher = RecordingPublisher()
    pipeline = Pipeline(config(), ListSource([]), FaceRedactor(), publisher)
    assert pipeline.handle(raw_frame(face_image, 3)) is not None
    [(frame, pixels, event)] = publisher.frames
    assert not np.array_equal(face_pixels(pixels), face_pixels(face_image))  # the face was filled
    assert event == {"camera": pipeline.cfg.camera_id, "frame_index": 3, "timestamp": 0.3, "faces": 1,
                     "boxes": [[181.0, 58.0, 270.0, 178.0]], "methods": ["fill"], "track_ids": [None],
                     "fully_masked": False}  # the latency is the publisher's answer, not written into the event
    c = pipeline.counters
    assert (c.frames_in, c.redacted, c.faces, c.fallbacks) == (1, 1, 1, 0)
    assert pipeline.stats()["latency_ms"]["p50"] == 12.5


def test_the_method_and_its_fallbacks_are_the_chains_not_the_configs(face_image):
    """Unset in the config, the method is what the chain resolved (blur without a generator): no fallbacks."""
    pipeline = Pipeline(Config(), ListSource([]), FaceRedactor("blur"), RecordingPublisher())
    assert pipeline.handle(raw_frame(face_image)) is not None
    assert pipeline.counters.fallbacks == 0 and pipeline.stats()["method"] == "blur"


def test_a_face_the_generator_cannot_serve_is_a_fallback(face_image, generator):
    """A 10 px face is below what the generator serves: blur covers it, and the stats count it."""
    tiny = np.array([20, 20, 30, 30], np.float32)
    pipeline = Pipeline(Config(), ListSource([]), FaceRedactor("gan", generator, face=tiny), RecordingPublisher())
    redacted = pipeline.handle(raw_frame(face_image))
    assert [f.method for f in redacted.faces] == ["blur"]
    assert pipeline.counters.fallbacks == 1 and pipeline.stats()["method"] == "gan"


@pytest.mark.parametrize("redactor, counter", [
    (RaisingRedactor(), "dropped_error"),
    (RawRedactor(), "dropped_error"),
    (LateRedactor(delay_s=0.05), "dropped_deadline"),
], ids=["raises", "returns-the-raw-frame", "late"])
def test_a_failed_or_late_frame_is_dropped_never_sent(face_image, redactor, counter):
    publisher = RecordingPublisher()
    pipeline = Pipeline(config(deadline_ms=10.0), ListSource([]), redactor, publisher)
    assert pipeline.handle(raw_frame(face_image)) is None
    assert publisher.frames == []
    assert getattr(pipeline.counters, counter) == 1 and pipeline.counters.redacted == 0


@pytest.mark.parametrize("redactor", [RaisingRedactor(), LateRedactor(delay_s=0.05)], ids=["raises", "late"])
def test_on_failure_mask_sends_a_fully_masked_frame_instead(face_image, redactor):
    publisher = RecordingPublisher()
    pipeline = Pipeline(config(on_failure="mask", deadline_ms=10.0), ListSource([]), redactor, publisher)
    assert pipeline.handle(raw_frame(face_image)) is not None
    [(frame, pixels, event)] = publisher.frames
    assert frame.fully_masked and event["fully_masked"] and event["faces"] == 0
    assert not pixels.any()  # nothing of the scene survives the fill
    assert pipeline.counters.masked == 1


def test_when_masking_fails_too_the_frame_is_dropped(face_image):
    publisher = RecordingPublisher()
    pipeline = Pipeline(config(on_failure="mask"), ListSource([]), BrokenMaskRedactor(), publisher)
    assert pipeline.handle(raw_frame(face_image)) is None
    assert publisher.frames == [] and pipeline.counters.masked == 0


def test_a_frame_the_publisher_refuses_is_counted(face_image):
    pipeline = Pipeline(config(), ListSource([]), FaceRedactor(), RecordingPublisher(refuse=True))
    assert pipeline.handle(raw_frame(face_image)) is None
    assert pipeline.counters.dropped_publish == 1 and pipeline.counters.redacted == 0


def test_run_to_the_end_of_a_source_then_final_stats_and_close(face_image):
    source = ListSource([raw_frame(face_image, i) for i in range(3)])
    publisher = RecordingPublisher()
    pipeline = Pipeline(config(), source, FaceRedactor(), publisher)
    assert pipeline.run() == 0
    assert [f.index for f, _, _ in publisher.frames] == [0, 1, 2]
    final = publisher.stats_sent[-1]
    assert final["final"] and final["redacted"] == 3 and final["mqtt"] == {"acked": 3}
    assert source.closed and publisher.closed == "stopped"
