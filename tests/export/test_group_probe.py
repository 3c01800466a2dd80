"""export.eval.group_probe: the label whose leave-one-out centroid is nearest, for originals and outputs."""

from __future__ import annotations

import numpy as np

from export.eval.group_probe import own_label_kept

RNG = np.random.default_rng(0)
# Two groups on two axes, a little noise: every original sits nearest its own group's centroid.
GROUP_A = np.array([1.0, 0.0, 0.0]) + RNG.normal(0, 0.1, (5, 3))
GROUP_B = np.array([0.0, 1.0, 0.0]) + RNG.normal(0, 0.1, (5, 3))
ORIGINALS = np.vstack([GROUP_A, GROUP_B])
LABELS = np.array([0] * 5 + [1] * 5)


def test_outputs_that_keep_the_group_are_kept_and_swapped_ones_are_not():
    kept_orig, kept_out = own_label_kept(ORIGINALS, ORIGINALS * 3.0, LABELS, 2)  # scale does not matter
    assert kept_orig.tolist() == [1.0] * 10 and kept_out.tolist() == [1.0] * 10
    swapped = np.vstack([GROUP_B, GROUP_A])  # every output looks like the other group
    _, kept_out = own_label_kept(ORIGINALS, swapped, LABELS, 2)
    assert kept_out.tolist() == [0.0] * 10


def test_the_face_itself_is_left_out_of_its_centroid():
    # A lone member of group 1 sitting between the groups, a bit nearer group 0: with itself counted in its own
    # centroid it would be "kept"; left out, group 1's centroid is the other members' only.
    originals = np.vstack([GROUP_A, [[0.6, 0.5, 0.0]], [[0.0, 1.0, 0.0]]])
    labels = np.array([0] * 5 + [1, 1])
    kept_orig, _ = own_label_kept(originals, originals, labels, 2)
    assert kept_orig[5] == 0.0 and kept_orig[6] == 1.0


def test_faces_without_a_centroid_of_their_own_label_are_not_counted():
    labels = LABELS.copy()
    labels[0] = 2  # the only one of its label
    labels[1] = 7  # outside the classes
    kept_orig, kept_out = own_label_kept(ORIGINALS, ORIGINALS, labels, 3)
    assert np.isnan(kept_orig[:2]).all() and np.isnan(kept_out[:2]).all()
    assert not np.isnan(kept_orig[2:]).any()
