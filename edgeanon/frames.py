"""Frame types: raw frames from a source, detections, and the redacted frames only the anonymizer makes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

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
    # keyword-only: a subclass's own fields (boxmarks.BoxFace.source) keep their positions
    confident: bool = dataclasses.field(default=True, kw_only=True)

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


class RedactedFrame:
    """A frame in which every face (and, when plates are on, every licence plate) was handled. Only
    `edgeanon.anonymize` can make one.

    The pixels are a read-only copy that shares no buffer with the raw frame (which the caller may
    keep writing), and the object cannot be built, changed, copied, pickled or `dataclasses.replace`d
    around other pixels: the constructor always refuses, and the one factory is handed out once, to
    the anonymizer, when it is imported (see `_claim_factory`).
    """

    __slots__ = ("index", "timestamp", "image", "faces", "fully_masked", "plates")

    index: int
    timestamp: float
    image: np.ndarray
    faces: tuple[FaceRecord, ...]
    fully_masked: bool
    plates: tuple[FaceRecord, ...]  # the licence plates covered, recorded as faces are (box, method, track id)

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("RedactedFrame can only be made by the anonymizer (edgeanon.anonymize)")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RedactedFrame is read-only (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"RedactedFrame is read-only (cannot delete {name!r})")

    def __copy__(self) -> RedactedFrame:
        raise TypeError("RedactedFrame cannot be copied")

    def __deepcopy__(self, memo: dict) -> RedactedFrame:
        raise TypeError("RedactedFrame cannot be copied")

    def __reduce_ex__(self, protocol: object) -> object:
        raise TypeError("RedactedFrame cannot be pickled or copied")

    def __repr__(self) -> str:
        return (f"RedactedFrame(index={self.index}, faces={len(self.faces)}, plates={len(self.plates)}, "
                f"shape={self.image.shape})")


# The one factory is made inside _claim_factory and handed out once, so nothing else can import it.
_factory_claimed = False


def _claim_factory() -> Callable[..., RedactedFrame]:
    """Hand out the RedactedFrame factory once: edgeanon.anonymize takes it at import; later calls raise."""
    global _factory_claimed
    if _factory_claimed:
        raise RuntimeError("the RedactedFrame factory belongs to edgeanon.anonymize")
    _factory_claimed = True

    def make(frame: Frame, faces: tuple[FaceRecord, ...], fully_masked: bool = False,
             plates: tuple[FaceRecord, ...] = ()) -> RedactedFrame:
        # A view of an immutable bytes copy: shares no buffer with the raw frame, and numpy refuses to
        # make it writeable again (unlike an array that owns its memory).
        pixels = np.frombuffer(np.ascontiguousarray(frame.image).tobytes(), dtype=frame.image.dtype)
        pixels = pixels.reshape(frame.image.shape)
        out = object.__new__(RedactedFrame)
        for name, value in (("index", int(frame.index)), ("timestamp", float(frame.timestamp)), ("image", pixels),
                            ("faces", tuple(faces)), ("fully_masked", bool(fully_masked)),
                            ("plates", tuple(plates))):
            object.__setattr__(out, name, value)
        return out

    return make
