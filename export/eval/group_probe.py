"""Does an output still look like someone of the person's group? A nearest-centroid probe on recognizer embeddings.

Skin-tone measures read a few skin patches, the same patches the methods match, so they cannot see what the eye
sees on some faces: a dark-skinned person given a face of the same skin colour but another group's features
(docs/ksame.md, "What the pictures show"). The probe looks at the whole face as a recognizer does: each UTKFace
race label's centroid is the mean of the unit embeddings of the run's originals with that label (leaving the
face itself out), and a face is assigned the label whose centroid is nearest by cosine. Per label the probe's
lift says how much more often it names that label for its people than for everyone else, on the originals and
on the outputs (a share of own-label answers alone would reward outputs that all drift to the majority's
centroid: a blur is "white" for most faces). A method that keeps the crowd's look keeps the outputs' lift near
the originals'. Evaluation only: labels come from UTKFace's file
names, and nothing at run time infers them.
"""

from __future__ import annotations

import numpy as np


def unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def predicted_labels(originals: np.ndarray, outputs: np.ndarray, labels: np.ndarray,
                     classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(original, output): per face, the label (0..classes-1, as float) whose leave-one-out centroid is nearest;
    NaN for faces whose label is outside 0..classes-1, or the only one of their label (no centroid without them)."""
    o, a = unit(originals), unit(outputs)
    labels = np.asarray(labels)
    n = len(labels)
    sums = np.zeros((classes, o.shape[1]))
    counts = np.zeros(classes)
    for c in range(classes):
        sums[c] = o[labels == c].sum(axis=0)
        counts[c] = float((labels == c).sum())
    pred_orig, pred_out = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        own = int(labels[i])
        if not 0 <= own < classes or counts[own] < 2:
            continue
        s, k = sums.copy(), counts.copy()
        s[own] -= o[i]  # leave the face itself out of its label's centroid
        k[own] -= 1
        present = np.flatnonzero(k > 0)
        centroids = unit(s[present] / k[present, None])
        pred_orig[i] = float(present[np.argmax(centroids @ o[i])])
        pred_out[i] = float(present[np.argmax(centroids @ a[i])])
    return pred_orig, pred_out


def lift(predicted: np.ndarray, labels: np.ndarray, label: int) -> float:
    """How much more often the probe says `label` for people of that label than for everyone else (over faces
    with a prediction): 0 when the faces carry nothing of the group (a blur, one template face), NaN when one
    side is empty."""
    ok = np.isfinite(predicted)
    own, rest = ok & (labels == label), ok & (labels != label)
    if not own.any() or not rest.any():
        return float("nan")
    return float(np.mean(predicted[own] == label) - np.mean(predicted[rest] == label))
