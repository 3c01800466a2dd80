"""Keeps faces covered between detections: IoU matching, constant-velocity coasting, a hold time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeanon.frames import BoxSize, Detection


@dataclass(frozen=True)
class Track(BoxSize):
    """A face the tracker covers; same box/score/landmarks attributes as a Detection.

    `fresh` is True when a detection matched it on this update, False while it coasts on its motion.
    """

    track_id: int
    box: np.ndarray
    landmarks: np.ndarray | None
    score: float
    fresh: bool


@dataclass
class _State:
    track_id: int
    box: np.ndarray  # last detected box
    landmarks: np.ndarray | None
    score: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float64))  # d(box)/dt, px/s
    hits: int = 1

    def predict(self, timestamp: float, growth: float) -> np.ndarray:
        """Box at `timestamp`: moved at constant velocity, never smaller than the last detection,
        grown by `growth` per second unseen (the face may speed up or turn)."""
        dt = max(0.0, timestamp - self.last_seen)
        moved = self.box + self.velocity * dt
        cx, cy = (moved[0] + moved[2]) / 2, (moved[1] + moved[3]) / 2
        w0, h0 = self.box[2] - self.box[0], self.box[3] - self.box[1]
        grow = 1.0 + growth * dt
        w = max(moved[2] - moved[0], w0) * grow
        h = max(moved[3] - moved[1], h0) * grow
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float64)


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


class Tracker:
    """Associates detections over time and keeps covering a face for `hold_s` seconds after it is lost.

    A lost face follows its last measured motion (constant velocity of all four box edges), and its
    box never shrinks below the last detected one; it grows by `growth` (fraction per second) while
    coasting, so a face that changes speed stays under the mask. A track seen in fewer than
    `confirm_hits` frames (likely a false detection) is held for that fraction of `hold_s` only, and
    a lost track that overlaps a face detected now is dropped as its duplicate: both keep the
    covered area close to the faces themselves.
    """

    def __init__(self, hold_s: float = 1.0, iou_threshold: float = 0.2, smoothing: float = 0.5,
                 growth: float = 0.5, max_speed: float = 20.0, confirm_hits: int = 3):
        if hold_s < 0:
            raise ValueError(f"hold time must be >= 0 seconds, got {hold_s}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"IoU threshold must be in (0, 1], got {iou_threshold}")
        self.hold_s = hold_s
        self.iou_threshold = iou_threshold
        self.smoothing = smoothing  # weight of the newest velocity measurement
        self.growth = growth
        self.max_speed = max_speed  # face sizes per second: a bound against wild velocity from a mismatch
        self.confirm_hits = max(1, int(confirm_hits))
        self._tracks: list[_State] = []
        self._next_id = 1
        self._last_timestamp: float | None = None

    def reset(self) -> None:
        self._tracks.clear()
        self._last_timestamp = None

    def update(self, detections: Sequence[Detection], timestamp: float) -> list[Track]:
        """Match this frame's detections to tracks; return every face to cover now (fresh first)."""
        if self._last_timestamp is not None and timestamp < self._last_timestamp:
            self.reset()  # time went backwards: a new stream or a seek; old motion means nothing
        self._last_timestamp = timestamp
        predicted = np.array([t.predict(timestamp, 0.0) for t in self._tracks]).reshape(-1, 4)
        boxes = np.array([np.asarray(d.box, np.float64)[:4] for d in detections]).reshape(-1, 4)
        matches = self._match(predicted, boxes)
        out: list[Track] = []
        matched_tracks = set()
        for ti, di in matches:
            state, det = self._tracks[ti], detections[di]
            self._observe(state, det, timestamp)
            matched_tracks.add(ti)
            out.append(Track(state.track_id, np.asarray(det.box, np.float32), det.landmarks, float(det.score), True))
        matched_dets = {di for _, di in matches}
        covered = iou_matrix(predicted, boxes).max(axis=1) if len(boxes) else np.zeros(len(predicted))
        kept: list[_State] = []
        for ti, state in enumerate(self._tracks):
            hold = self.hold_s * min(1.0, state.hits / self.confirm_hits)
            if ti in matched_tracks:
                kept.append(state)
            elif timestamp - state.last_seen <= hold and covered[ti] < self.iou_threshold:
                kept.append(state)
                box = state.predict(timestamp, self.growth).astype(np.float32)
                out.append(Track(state.track_id, box, None, state.score, False))
        for di, det in enumerate(detections):
            if di in matched_dets:
                continue
            state = _State(self._next_id, np.asarray(det.box, np.float64)[:4].copy(), det.landmarks,
                           float(det.score), timestamp)
            self._next_id += 1
            kept.append(state)
            out.append(Track(state.track_id, np.asarray(det.box, np.float32), det.landmarks, float(det.score), True))
        self._tracks = kept
        out.sort(key=lambda t: not t.fresh)
        return out

    def _match(self, predicted: np.ndarray, boxes: np.ndarray) -> list[tuple[int, int]]:
        """Greedy one-to-one matching by descending IoU above the threshold."""
        iou = iou_matrix(predicted, boxes)
        pairs: list[tuple[int, int]] = []
        if iou.size == 0:
            return pairs
        order = np.argsort(-iou, axis=None)
        used_t, used_d = set(), set()
        for flat in order:
            ti, di = divmod(int(flat), iou.shape[1])
            if iou[ti, di] < self.iou_threshold:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            pairs.append((ti, di))
        return pairs

    def _observe(self, state: _State, det: Detection, timestamp: float) -> None:
        box = np.asarray(det.box, np.float64)[:4]
        dt = timestamp - state.last_seen
        if dt > 0:
            measured = (box - state.box) / dt
            size = max(box[2] - box[0], box[3] - box[1], 1.0)
            limit = self.max_speed * size
            measured = np.clip(measured, -limit, limit)
            a = self.smoothing if state.hits > 1 else 1.0
            state.velocity = a * measured + (1 - a) * state.velocity
        state.box = box.copy()
        state.landmarks = det.landmarks
        state.score = float(det.score)
        state.last_seen = timestamp
        state.hits += 1
