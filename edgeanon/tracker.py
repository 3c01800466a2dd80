"""Keeps faces covered between detections: two-stage IoU matching (ByteTrack's idea), smoothed motion, a hold time.

A lost face coasts on its smoothed motion for `hold_s` seconds. Its box never shrinks below the last
detection and never grows beyond `max_growth` times it, so a lost face stays covered without the cover
turning into a blob over the scene. Doubtful
detections (`Detection.confident` False) keep an existing track alive but never start one. A lost track
is dropped early only when a detection of this frame is clearly the same face (IoU >= `duplicate_iou`,
above any overlap that NMS lets two detected faces have), never because another face is near it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeanon.defaults import DEFAULT_HOLD_S
from edgeanon.frames import BoxSize, Detection

# Velocity is the least-squares slope of the last HISTORY detected boxes: one frame's jitter of a few pixels,
# read as speed, would carry a small face's cover off the face within a few frames of coasting.
HISTORY = 6


@dataclass(frozen=True)
class Track(BoxSize):
    """A face the tracker covers; same box/score/landmarks/confident attributes as a Detection.

    `fresh` is True when a detection matched it on this update, False while it coasts on its motion.
    `track_id` is None for a doubtful detection that matched no track (covered this frame only).
    """

    track_id: int | None
    box: np.ndarray
    landmarks: np.ndarray | None
    score: float
    fresh: bool
    confident: bool = True


@dataclass
class _State:
    track_id: int
    box: np.ndarray  # last detected box
    landmarks: np.ndarray | None
    score: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float64))  # d(box)/dt, px/s, fitted
    hits: int = 1  # confident detections matched (doubtful ones keep a track alive but do not confirm it)
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))  # (time, box) of the last detections

    def predict(self, timestamp: float, growth: float = 0.0, max_growth: float = 1.0) -> np.ndarray:
        """Box at `timestamp`: centre and size moved by the smoothed velocity, the size never below the last
        detection (a lost face stays covered), grown by `growth` per second unseen, and never beyond
        `max_growth` times the last detected size (the cover stays about the face)."""
        dt = max(0.0, timestamp - self.last_seen)
        moved = self.box + self.velocity * dt
        cx, cy = (moved[0] + moved[2]) / 2, (moved[1] + moved[3]) / 2
        w0, h0 = self.box[2] - self.box[0], self.box[3] - self.box[1]
        grow = 1.0 + growth * dt
        w = min(max(moved[2] - moved[0], w0) * grow, w0 * max_growth)
        h = min(max(moved[3] - moved[1], h0) * grow, h0 * max_growth)
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float64)


def _leaving(box: np.ndarray, size: tuple[int, int], margin: float = 2.0) -> bool:
    """True when the box touches or crosses the frame's edge and is still partly inside it (detections are
    clipped to the frame, so a face cut by the edge has a box that touches it)."""
    h, w = size
    inside = box[0] < w and box[1] < h and box[2] > 0 and box[3] > 0
    return bool(inside and (box[0] <= margin or box[1] <= margin or box[2] >= w - margin or box[3] >= h - margin))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (n, 4) and b (m, 4), x1y1x2y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a, b = a[:, None, :4].astype(np.float64), b[None, :, :4].astype(np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs by descending IoU, each at or above `threshold`."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    used_r, used_c = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < threshold:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


class Tracker:
    """Associates detections over time and keeps covering a face for `hold_s` seconds after it is lost.

    A track seen in fewer than `confirm_hits` frames (likely a false detection) is not held at all once
    lost (as ByteTrack drops an unconfirmed track at its first miss); with `hold_unconfirmed` it is held for
    that fraction of `hold_s`. `max_speed` bounds a measured velocity (face sizes per second) against a
    wild value from a mismatch. Timestamps must come from a monotonic clock; time going backwards
    (a new stream, a seek) resets the tracker, and so does `cut()` (a scene cut or a zoom jump).
    """

    def __init__(self, hold_s: float = DEFAULT_HOLD_S, iou_threshold: float = 0.2,
                 growth: float = 0.0, max_growth: float = 1.5, max_speed: float = 10.0, confirm_hits: int = 3,
                 duplicate_iou: float = 0.6, edge_hold_s: float = 2.0, hold_unconfirmed: bool = False):
        if hold_s < 0:
            raise ValueError(f"hold time must be >= 0 seconds, got {hold_s}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"IoU threshold must be in (0, 1], got {iou_threshold}")
        if growth < 0 or max_growth < 1.0:
            raise ValueError(f"growth must be >= 0 and max growth >= 1, got {growth} and {max_growth}")
        self.hold_s = hold_s
        self.iou_threshold = iou_threshold
        self.growth = growth
        self.max_growth = max_growth
        self.max_speed = max_speed
        self.confirm_hits = max(1, int(confirm_hits))
        self.duplicate_iou = duplicate_iou
        self.edge_hold_s = max(edge_hold_s, hold_s)
        self.hold_unconfirmed = hold_unconfirmed
        self._tracks: list[_State] = []
        self._next_id = 1
        self._last_timestamp: float | None = None

    def reset(self) -> None:
        """Forget every track (a new stream)."""
        self._tracks.clear()
        self._last_timestamp = None

    def cut(self) -> None:
        """The picture jumped (scene cut, zoom jump): lost faces are no longer where they were."""
        self._tracks.clear()

    @property
    def active(self) -> int:
        return len(self._tracks)

    def update(self, detections: Sequence[Detection], timestamp: float,
               size: tuple[int, int] | None = None) -> list[Track]:
        """Match this frame's detections to tracks; return every face to cover now (fresh first).

        With the frame's `size` (height, width), a confirmed face that is leaving the picture (its box cut by
        the frame's edge, where the detector cannot see a face) stays covered for up to `edge_hold_s`, until
        its box has left the frame.
        """
        if self._last_timestamp is not None and timestamp < self._last_timestamp:
            self.reset()
        self._last_timestamp = timestamp
        predicted = np.array([t.predict(timestamp) for t in self._tracks]).reshape(-1, 4)
        boxes = np.array([np.asarray(d.box, np.float64)[:4] for d in detections]).reshape(-1, 4)
        iou = iou_matrix(predicted, boxes)
        confident = [i for i, d in enumerate(detections) if getattr(d, "confident", True)]
        doubtful = [i for i, d in enumerate(detections) if not getattr(d, "confident", True)]
        # Stage 1: confident detections; stage 2: doubtful ones keep the remaining tracks alive.
        matches = [(t, confident[d]) for t, d in greedy_match(iou[:, confident], self.iou_threshold)]
        free = [t for t in range(len(self._tracks)) if t not in {m[0] for m in matches}]
        matches += [(free[t], doubtful[d])
                    for t, d in greedy_match(iou[np.ix_(free, doubtful)], self.iou_threshold)]
        out: list[Track] = []
        for ti, di in matches:
            state, det = self._tracks[ti], detections[di]
            self._observe(state, det, timestamp)
            out.append(Track(state.track_id, np.asarray(det.box, np.float32), det.landmarks, float(det.score),
                             True, True))
        matched_tracks = {ti for ti, _ in matches}
        matched_dets = {di for _, di in matches}
        kept = [self._tracks[ti] for ti in sorted(matched_tracks)]
        for di, det in enumerate(detections):
            if di in matched_dets:
                continue
            box = np.asarray(det.box, np.float64)[:4]
            if getattr(det, "confident", True):
                state = _State(self._next_id, box.copy(), det.landmarks, float(det.score), timestamp)
                self._next_id += 1
                kept.append(state)
                out.append(Track(state.track_id, box.astype(np.float32), det.landmarks, float(det.score), True))
            else:
                out.append(Track(None, box.astype(np.float32), det.landmarks, float(det.score), True, False))
        fresh_boxes = np.array([t.box for t in out], np.float64).reshape(-1, 4)
        for ti, state in enumerate(self._tracks):
            if ti in matched_tracks:
                continue
            box = state.predict(timestamp, self.growth, self.max_growth)
            confirmed = state.hits >= self.confirm_hits
            hold = self.hold_s if confirmed else (
                self.hold_s * state.hits / self.confirm_hits if self.hold_unconfirmed else 0.0)
            if size is not None and confirmed and _leaving(box, size):
                hold = self.edge_hold_s
            if timestamp - state.last_seen > hold:
                continue
            same = iou_matrix(box[None], fresh_boxes)
            if same.size and same.max() >= self.duplicate_iou:
                continue  # this frame's detection of the same face already covers it
            kept.append(state)
            out.append(Track(state.track_id, box.astype(np.float32), None, state.score, False))
        self._tracks = kept
        return out

    def _observe(self, state: _State, det: Detection, timestamp: float) -> None:
        box = np.asarray(det.box, np.float64)[:4]
        if not state.history:
            state.history.append((state.last_seen, state.box.copy()))
        state.history.append((timestamp, box.copy()))
        times = np.array([t for t, _ in state.history])
        if times.max() - times.min() > 0:
            boxes = np.array([b for _, b in state.history])
            dt = times - times.mean()
            measured = (dt[:, None] * (boxes - boxes.mean(0))).sum(0) / (dt * dt).sum()
            size = max(box[2] - box[0], box[3] - box[1], 1.0)
            limit = self.max_speed * size
            state.velocity = np.clip(measured, -limit, limit)
        state.box = box.copy()
        if det.landmarks is not None or getattr(det, "confident", True):
            state.landmarks = det.landmarks
        state.score = float(det.score)
        state.last_seen = timestamp
        if getattr(det, "confident", True):
            state.hits += 1
