"""Frame types: raw frames from a source, detections, and the redacted frames only the anonymizer makes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class BoxSize:
    """Width and height of anything with a `box` (x1, y1, x2, y2): detections and tracks alike."""

    box: np.ndarray

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


@dataclass(frozen=True)
class Detection(BoxSize):
    """One face: box (x1, y1, x2, y2) and landmarks (5 x [x, y], or None) in original pixels.

    `confident` is False for a doubtful candidate (score under the detector's threshold but over its low
    threshold): it is covered by a plain blur, whatever the method.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray | None = None
    confident: bool = True

    def to_json(self) -> dict:
        out = {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
               "confident": bool(self.confident)}
        out["landmarks"] = (
            None if self.landmarks is None
            else [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]
        )
        return out


@dataclass
class Frame:
    """A raw camera frame (BGR uint8, HxWx3). Never written, logged or published as is.

    `timestamp` is what events report (wall time for live sources, the position in a file); `clock`,
    when set, is monotonic seconds for the tracker, so a wall-clock step (NTP) cannot move tracked faces.
    """

    index: int
    timestamp: float
    image: np.ndarray
    clock: float | None = None

    @property
    def track_time(self) -> float:
        """Seconds on a clock that never goes backwards within one stream."""
        return self.timestamp if self.clock is None else self.clock

    def __repr__(self) -> str:  # never let pixels reach a log line
        return f"Frame(index={self.index}, shape={self.image.shape})"


@dataclass(frozen=True)
class FaceRecord:
    """What was done to one face of a redacted frame."""

    box: tuple[float, float, float, float]
    method: str
    track_id: int | None = None


_REDACTION_TOKEN = object()


@dataclass(frozen=True)
class RedactedFrame:
    """A frame in which every face was handled. Only `edgeanon.anonymize` may construct one."""

    index: int
    timestamp: float
    image: np.ndarray
    faces: tuple[FaceRecord, ...] = ()
    fully_masked: bool = False
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _REDACTION_TOKEN:
            raise TypeError("RedactedFrame can only be made by the anonymizer (edgeanon.anonymize)")

    def __repr__(self) -> str:
        return f"RedactedFrame(index={self.index}, faces={len(self.faces)}, shape={self.image.shape})"


def _make_redacted(frame: Frame, faces: tuple[FaceRecord, ...], fully_masked: bool = False) -> RedactedFrame:
    """Internal: wrap a frame whose faces were all handled. Called only from edgeanon.anonymize."""
    return RedactedFrame(frame.index, frame.timestamp, frame.image, faces, fully_masked, _REDACTION_TOKEN)
