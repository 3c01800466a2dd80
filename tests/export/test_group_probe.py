"""export.eval.group_probe: the label whose leave-one-out centroid is nearest, and each label's lift."""

from __future__ import annotations

import numpy as np

from export.eval.group_probe import lift, predicted_labels

RNG = np.random.default_rng(0)
# Two groups on two axes, a little noise: every original sits nearest its own group's centroid.
GROUP_A = np.array([1.0, 0.0, 0.0]) + RNG.normal(0, 0.1, (5, 3))
GROUP_B = np.array([0.0, 1.0, 0.0]) + RNG.normal(0, 0.1, (5, 3))
ORIGINALS = np.vstack([GROUP_A, GROUP_B])
LABELS = np.array([0] * 5 + [1] * 5)


def test_outputs_that_keep_the_group_keep_the_lift_and_a_blur_has_none():
    pred_orig, pred_out = predicted_labels(ORIGINALS, ORIGINALS * 3.0, LABELS, 2)  # scale does not matter
    assert pred_orig.tolist() == LABELS.tolist() and pred_out.tolist() == LABELS.tolist()
    assert lift(pred_out, LABELS, 0) == lift(pred_out, LABELS, 1) == 1.0
    # Every output the same grey face, nearer group 0's centroid: the probe says 0 for everyone.
    _, pred_out = predicted_labels(ORIGINALS, np.tile([0.6, 0.4, 0.1], (10, 1)), LABELS, 2)
    assert pred_out.tolist() == [0.0] * 10
    assert lift(pred_out, LABELS, 0) == 0.0 and lift(pred_out, LABELS, 1) == 0.0
    swapped = np.vstack([GROUP_B, GROUP_A])  # every output looks like the other group
    _, pred_out = predicted_labels(ORIGINALS, swapped, LABELS, 2)
    assert lift(pred_out, LABELS, 0) == -1.0


def test_the_face_itself_is_left_out_of_its_centroid():
    # A member of group 1 between the groups, a bit nearer group 0: with itself counted in its own centroid it
    # would be named 1; left out, group 1's centroid is the other member's only.
    originals = np.vstack([GROUP_A, [[0.6, 0.5, 0.0]], [[0.0, 1.0, 0.0]]])
    labels = np.array([0] * 5 + [1, 1])
    pred_orig, _ = predicted_labels(originals, originals, labels, 2)
    assert pred_orig[5] == 0.0 and pred_orig[6] == 1.0


def test_faces_without_a_centroid_of_their_own_label_are_not_counted():
    labels = LABELS.copy()
    labels[0] = 2  # the only one of its label
    labels[1] = -1  # no label
    pred_orig, pred_out = predicted_labels(ORIGINALS, ORIGINALS, labels, 3)
    assert np.isnan(pred_orig[:2]).all() and np.isnan(pred_out[:2]).all()
    assert not np.isnan(pred_orig[2:]).any()
    assert np.isnan(lift(pred_orig, labels, 2))  # no face of label 2 has a prediction
