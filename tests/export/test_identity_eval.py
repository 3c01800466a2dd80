"""Identity evaluation's pure parts: UTKFace names, look-alike pairs and floor, re-identification, intervals."""

from __future__ import annotations

import numpy as np

from export.eval.identity import (
    demographics,
    lookalike_distances,
    lookalike_pairs,
    reidentified,
    stranger_distances,
    wilson_interval,
)


def test_demographics_from_utkface_names():
    assert demographics("utkface/26_1_2_20170116174525125.jpg.chip.jpg") == (26, 1, 2)
    assert demographics("utkface/notes.txt") is None


def test_strangers_pair_only_look_alikes():
    names = ["u/30_0_1_a.jpg", "u/33_0_1_b.jpg", "u/40_0_1_c.jpg", "u/31_1_1_d.jpg", "u/29_0_2_e.jpg"]
    emb = [np.array([0.0, 0.0]), np.array([0.3, 0.4]), np.zeros(2), np.zeros(2), np.zeros(2)]
    # Only (30, 33): same gender and race, 3 years apart.
    assert np.allclose(stranger_distances(lookalike_pairs(names), emb), [0.5])


def test_reidentification_counts_own_nearest_original():
    originals = [np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0])]
    kept = [o + 0.1 for o in originals]  # each still nearest to its own original
    swapped = [originals[1], originals[2], originals[0]]  # each looks like somebody else
    assert reidentified(kept, originals) == 1.0
    assert reidentified(swapped, originals) == 0.0


def test_lookalike_floor_compares_each_output_with_the_other_persons_original():
    names = ["u/30_0_1_a.jpg", "u/33_0_1_b.jpg", "u/60_0_1_c.jpg"]  # only a and b are look-alikes
    originals = [np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([5.0, 5.0])]
    anonymized = [np.array([0.9, 0.0]), np.array([1.0, 0.3]), np.array([1.0, 0.0])]
    # a's output against b's original (0.1), b's output against a's original (~1.04); c is nobody's look-alike.
    distances = lookalike_distances(lookalike_pairs(names), anonymized, originals)
    assert np.allclose(sorted(distances), [0.1, np.hypot(1.0, 0.3)])
    assert len(lookalike_distances(lookalike_pairs(names[2:]), anonymized[2:], originals[2:])) == 0


def test_share_interval_brackets_the_share_and_narrows_with_more_faces():
    lo, hi = wilson_interval(28, 861)  # the shipped gan's 3.3%
    assert lo < 28 / 861 < hi
    assert (round(lo, 3), round(hi, 3)) == (0.023, 0.047)  # Wilson 95% for 28 of 861
    small = wilson_interval(3, 86)
    assert small[1] - small[0] > hi - lo
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(0, 50)[1] > 0.0
