"""Box matching and average precision shared by the evaluations (IoU 0.5, small faces ignored)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeanon.tracker import iou_matrix  # the runtime's IoU: one definition for tracking and evaluation

MIN_FACE = 16  # faces whose short side is smaller neither count as misses nor as false positives


def counted(truth: np.ndarray, min_face: int = MIN_FACE) -> np.ndarray:
    """Which ground-truth faces count: short side >= min_face pixels."""
    if len(truth) == 0:
        return np.zeros(0, dtype=bool)
    return np.minimum(truth[:, 2] - truth[:, 0], truth[:, 3] - truth[:, 1]) >= min_face


@dataclass
class ImageMatch:
    scores: np.ndarray  # score of each non-ignored detection
    true_positive: np.ndarray  # bool per non-ignored detection
    n_truth: int  # counted ground-truth faces


def match_image(pred_boxes: np.ndarray, pred_scores: np.ndarray, truth: np.ndarray, iou: float = 0.5,
                min_face: int = MIN_FACE) -> ImageMatch:
    """Greedy matching by descending score; a detection whose best match is a small face is ignored."""
    pred_boxes = np.asarray(pred_boxes, dtype=np.float32).reshape(-1, 4)
    pred_scores = np.asarray(pred_scores, dtype=np.float32).reshape(-1)
    truth = np.asarray(truth, dtype=np.float32).reshape(-1, 4)
    keep_truth = counted(truth, min_face)
    order = np.argsort(-pred_scores)
    overlaps = iou_matrix(pred_boxes[order], truth)
    taken = np.zeros(len(truth), dtype=bool)
    scores, tps = [], []
    for row, det in enumerate(order):
        candidates = np.where(~taken & (overlaps[row] >= iou))[0]
        if len(candidates):
            best = candidates[np.argmax(overlaps[row, candidates])]
            taken[best] = True
            if not keep_truth[best]:
                continue  # matched a face too small to count
            scores.append(pred_scores[det])
            tps.append(True)
        else:
            best_any = np.argmax(overlaps[row]) if len(truth) else -1
            if best_any >= 0 and overlaps[row, best_any] >= iou and not keep_truth[best_any]:
                continue  # a duplicate on a small face
            scores.append(pred_scores[det])
            tps.append(False)
    return ImageMatch(np.asarray(scores, np.float32), np.asarray(tps, bool), int(keep_truth.sum()))


def average_precision(matches: list[ImageMatch]) -> dict[str, float]:
    """All-point interpolated AP, plus recall and precision over all the detections given."""
    scores = np.concatenate([m.scores for m in matches]) if matches else np.zeros(0)
    tps = np.concatenate([m.true_positive for m in matches]) if matches else np.zeros(0, bool)
    n_truth = sum(m.n_truth for m in matches)
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(tps[order])
    fp = np.cumsum(~tps[order])
    recall = tp / max(n_truth, 1)
    precision = tp / np.maximum(tp + fp, 1)
    envelope = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(envelope) - 2, -1, -1):
        envelope[i] = max(envelope[i], envelope[i + 1])
    r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    ap = float(np.sum((r[1:] - r[:-1]) * envelope[1:]))
    return {
        "ap": ap,
        "recall": float(recall[-1]) if len(recall) else 0.0,
        "precision": float(precision[-1]) if len(precision) else 0.0,
        "faces": n_truth,
        "detections": int(len(scores)),
    }
