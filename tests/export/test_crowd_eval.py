"""The crowd measures on real faces: tone, diversity, identity with controls, SFace, seams, head turn."""

from __future__ import annotations

import copy
import json
import zipfile

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import Anonymizer, classic
from edgeanon.anonymize.crops import TEMPLATE_LANDMARKS, head_turn
from edgeanon.detector import FaceDetector
from export import datasets
from export.eval import crowd, incontext
from export.eval.sface import SAME_PERSON as SFACE_SAME
from export.eval.sface import SFace
from export.splits import in_generator_split
from scripts import pool_crowd


@pytest.fixture(scope="module")
def blurred_crowd(shared_data, detector_model):
    """40 tuning UTKFace faces laid into tuning scenes, blurred as the runtime does it (one real run)."""
    _, seen = crowd.collect(shared_data, detector_model, {"blur": Anonymizer("blur")}, 40, "tune", threads=1,
                            progress=False)
    assert len(seen.names) >= 36
    return seen


def with_output(seen: crowd.Crowd, label: str, faces: crowd.Faces) -> crowd.Crowd:
    out = copy.copy(seen)
    out.methods = {**seen.methods, label: faces}
    return out


def test_an_output_identical_to_the_original_keeps_tone_and_diversity_and_is_its_person(blurred_crowd):
    same = with_output(blurred_crowd, "same", blurred_crowd.original)
    s = crowd.summary(same.per_face("same"), same.groups(), np.arange(len(same.names)))
    assert s["tone_r"] == pytest.approx(1.0)
    assert s["dita_worst"] == 0.0
    assert s["seam"] == pytest.approx(1.0)
    for rec in crowd.RECOGNIZERS:
        assert s[f"{rec}_diversity"] == pytest.approx(1.0)
        assert s[f"{rec}_own"] == 1.0
        assert s[f"{rec}_reid_x_chance"] == pytest.approx(len(same.names))  # always re-identified
        # Taken for a look-alike exactly as often as the real person is: the control.
        assert s[f"{rec}_stranger"] == pytest.approx(s[f"{rec}_real"])
        assert s[f"{rec}_gap"] == pytest.approx(1.0 - s[f"{rec}_real"])


def test_blur_leaves_no_identity_gap_and_less_detail_along_the_seam(blurred_crowd):
    s = crowd.summary(blurred_crowd.per_face("blur"), blurred_crowd.groups(), np.arange(len(blurred_crowd.names)))
    for rec in crowd.RECOGNIZERS:
        # Near zero (an identical output scores 1 - the look-alike rate): a blurred face is its own person no
        # more often than a look-alike's, up to the noise of 40 faces and their few look-alike pairs.
        assert s[f"{rec}_own"] <= 0.1
        assert abs(s[f"{rec}_gap"]) <= 0.1
        assert s[f"{rec}_diversity"] < 0.9  # blurred faces look alike to a recognizer
    assert s["seam"] < 0.8
    assert s["tone_r"] > 0.5  # blur keeps a face's mean colour


def test_one_face_for_everyone_has_no_diversity_and_no_tone(blurred_crowd):
    one = crowd.Faces()
    n = len(blurred_crowd.names)
    for key in ("lightness", "ita", "seam", "served"):
        setattr(one, key, [getattr(blurred_crowd.original, key)[0]] * n)
    one.embeddings = {r: [e[0]] * n for r, e in blurred_crowd.original.embeddings.items()}
    seen = with_output(blurred_crowd, "one", one)
    s = crowd.summary(seen.per_face("one"), seen.groups(), np.arange(n))
    assert np.isnan(s["tone_r"])  # a constant output correlates with nothing
    for rec in crowd.RECOGNIZERS:
        assert s[f"{rec}_diversity"] == pytest.approx(0.0, abs=1e-6)  # 1 - cosine of a unit vector with itself, float32


def test_bootstrap_gives_intervals_around_each_value_and_paired_differences(blurred_crowd):
    same = with_output(blurred_crowd, "same", blurred_crowd.original)
    stats = crowd.bootstrap({m: same.per_face(m) for m in ("same", "blur")}, same.groups(), reps=50)
    tone = stats["methods"]["blur"]["tone_r"]
    assert tone["ci"][0] <= tone["value"] <= tone["ci"][1]
    diff = stats["paired"]["same - blur"]["dlib_diversity"]
    assert diff["value"] > 0 and diff["ci"][0] > 0  # the originals are surely more varied than their blurs
    assert "tone: L* correlation" in crowd.format_report(stats)


def test_own_rank_is_the_share_of_other_originals_nearer_than_ones_own():
    d = np.array([[0.1, 0.5, 0.9, 0.7],   # own nearest: 0 of 3
                  [0.2, 0.6, 0.3, 0.9],   # two of three nearer
                  [0.4, 0.4, 0.4, 0.8],   # two ties: half each
                  [0.1, 0.2, 0.3, 0.9]])  # all nearer
    assert crowd.own_rank(d).tolist() == pytest.approx([0.0, 2 / 3, 1 / 3, 1.0])
    # Within bands {0, 1} and {2, 3}: only the other member of one's band counts.
    bands = np.array([0, 0, 1, 1])
    among = bands[:, None] == bands[None, :]
    assert crowd.own_rank(d, among).tolist() == pytest.approx([0.0, 1.0, 0.0, 1.0])
    assert crowd.reid_among(d, among).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert crowd.reid_among(d, np.ones((4, 4), bool)).tolist() == [1.0, 0.0, 0.0, 0.0]  # a tie: the first wins
    alone = np.eye(4, dtype=bool)  # nobody else in one's band: no rank, but nearest of its gallery of one
    assert np.isnan(crowd.own_rank(d, alone)).all() and crowd.reid_among(d, alone).tolist() == [1.0] * 4


def test_own_rank_is_near_chance_for_blur_and_zero_for_the_original(blurred_crowd):
    same = with_output(blurred_crowd, "same", blurred_crowd.original)
    n = len(same.names)
    for rec in crowd.RECOGNIZERS:
        assert crowd.summary(same.per_face("same"), same.groups(), np.arange(n))[f"{rec}_own_rank_found"] == 0.0
        blur = crowd.summary(blurred_crowd.per_face("blur"), blurred_crowd.groups(), np.arange(n))
        assert 0.25 < blur[f"{rec}_own_rank_found"] < 0.65  # blur leaves a weak signal at most (40 faces)
        assert crowd.summary(same.per_face("same"), same.groups(), np.arange(n))[f"{rec}_band_rank_found"] == 0.0
        assert 0.2 < blur[f"{rec}_band_rank_found"] < 0.8  # within an age band, blur is near chance too


def test_runs_pool_into_one_report_each_face_ranked_in_its_own_run(blurred_crowd, tmp_path, capsys):
    same = with_output(blurred_crowd, "same", blurred_crowd.original)
    n = len(same.names)
    run = {"names": same.names, "per_face": {m: {k: v.tolist() for k, v in same.per_face(m).items()}
                                             for m in ("blur", "same")}}
    one = crowd.summary(same.per_face("same"), same.groups(), np.arange(n))
    assert one["dlib_reid_x_chance"] == pytest.approx(n)  # every original is its own nearest: n x chance
    names, pooled = crowd.pool([run, run])
    assert names == same.names * 2 and set(pooled) == {"blur", "same"}
    two = crowd.summary(pooled["same"], crowd.race_labels(names), np.arange(2 * n))
    # Two galleries of n: still n x chance (not 2n), and the same own ranks and diversity.
    for key in ("dlib_reid_x_chance", "sface_reid_found_x_chance", "sface_own_rank_found", "dlib_band_rank_found",
                "sface_diversity", "tone_r"):
        assert two[key] == pytest.approx(one[key])
    # A run without the pooled methods' values: only the methods every run has are pooled.
    only_blur = {"names": run["names"], "per_face": {"blur": run["per_face"]["blur"]}}
    assert set(crowd.pool([run, only_blur])[1]) == {"blur"}
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(run))
    second.write_text(json.dumps(run))
    assert pool_crowd.main([str(first), str(second), "--base", "blur"]) == 0
    report = capsys.readouterr().out
    assert f"faces: {2 * n} from 2 runs" in report and "same - blur" in report and "in age band" in report
    assert pool_crowd.main([str(first), "--base", "gan"]) == 2


def test_skin_tone_follows_the_light_of_the_face(face_image, faces):
    lm = faces[0].landmarks
    lightness, ita = crowd.skin_tone(face_image, lm)
    darker, ita_dark = crowd.skin_tone((face_image * 0.5).astype(np.uint8), lm)
    assert 40 < lightness < 95 and darker < lightness - 15 and ita_dark < ita


def test_seam_energy_rises_with_a_dotted_ring_and_falls_with_a_blur(face_image, faces):
    box = faces[0].box
    ringed = face_image.copy()
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    axes = (int((box[2] - box[0]) / 2 * 1.25), int((box[3] - box[1]) / 2 * 1.25))
    ring = np.zeros(face_image.shape[:2], np.uint8)
    cv2.ellipse(ring, (int(cx), int(cy)), axes, 0, 180, 360, 1, 3)
    checker = (np.indices(ring.shape).sum(0) % 2).astype(bool)
    ringed[(ring > 0) & checker] = 255
    ringed[(ring > 0) & ~checker] = 0
    blurred = face_image.copy()
    classic.blur(blurred, box)
    assert crowd.seam_energy(face_image, face_image, box) == pytest.approx(1.0)
    assert crowd.seam_energy(face_image, ringed, box) > 1.2  # a 3 px half ring over textured hair
    assert crowd.seam_energy(face_image, blurred, box) < 0.8


def test_sface_knows_a_face_again_and_tells_different_people_apart(face_image, faces, blurred_crowd):
    sface = SFace(threads=1)
    lm = faces[0].landmarks
    own = sface(face_image, lm)
    brighter = sface(np.clip(face_image.astype(np.int16) + 20, 0, 255).astype(np.uint8), lm + 1.0)
    mirrored = face_image[:, ::-1].copy()
    w = face_image.shape[1]
    lm_m = lm.copy()
    lm_m[:, 0] = w - 1 - lm[:, 0]
    lm_m = lm_m[[1, 0, 2, 4, 3]]
    assert np.linalg.norm(own) == pytest.approx(1.0, abs=1e-5)
    assert SFace.distance(own, brighter) < SFACE_SAME
    assert SFace.distance(own, sface(mirrored, lm_m)) < SFACE_SAME
    people = np.array(blurred_crowd.original.embeddings["sface"])  # different UTKFace people, in scenes
    d = SFace.distance(people[:, None], people[None])
    strangers = d[~np.eye(len(people), dtype=bool)]
    assert np.mean(strangers > SFACE_SAME) > 0.9


def test_head_turn_is_zero_for_a_frontal_face_and_signed_for_turned_ones():
    frontal = TEMPLATE_LANDMARKS * 100
    assert abs(head_turn(frontal)) < 0.01
    turned = frontal.copy()
    turned[2, 0] = frontal[1, 0]  # nose level with one eye: a profile
    assert head_turn(turned) == pytest.approx(1.0, abs=0.02)
    mirrored = frontal.copy()
    mirrored[2, 0] = frontal[0, 0] + 0.25 * (frontal[1, 0] - frontal[0, 0])
    assert head_turn(mirrored) == pytest.approx(-0.5, abs=0.02)
    assert head_turn(np.zeros((5, 2))) == 1.0  # no eye line: treat as unservable


def test_diversity_across_seeds_is_the_seed_distance_over_the_spread_between_people(blurred_crowd):
    n = len(blurred_crowd.names)
    spread = crowd.summary(blurred_crowd.per_face("blur"), blurred_crowd.groups(), np.arange(n))
    faces = copy.copy(blurred_crowd.methods["blur"])
    # Two seeds as far apart as the outputs of two different people are, on average: diversity 1.
    mean_spread = float(blurred_crowd.per_face("blur")["dlib_spread_out"].mean())
    faces.reseeded = {"dlib": [mean_spread] * (n - 1) + [float("nan")], "sface": [0.0] * n}
    seen = with_output(blurred_crowd, "reseeded", faces)
    s = crowd.summary(seen.per_face("reseeded"), seen.groups(), np.arange(n))
    assert s["dlib_seed_diversity"] == pytest.approx(1.0)  # a face the generator did not serve is left out
    assert s["sface_seed_diversity"] == 0.0  # the latent changes nothing
    assert "dlib_seed_diversity" not in spread  # only where it was measured


def test_faces_the_detector_missed_are_reported_apart_from_the_method(blurred_crowd):
    """A missed face stays original under every method: it is re-identified whatever the method does, so the
    found-only measures leave it out (the gallery, and so chance, stay every face)."""
    n, missed = len(blurred_crowd.names), 3
    leaky = copy.copy(blurred_crowd.methods["blur"])
    leaky.embeddings = {r: list(blurred_crowd.original.embeddings[r][:missed]) + list(e[missed:])
                        for r, e in blurred_crowd.methods["blur"].embeddings.items()}
    seen = with_output(blurred_crowd, "leaky", leaky)
    seen.found = [False] * missed + [True] * (n - missed)
    v = seen.per_face("leaky")
    s = crowd.summary(v, seen.groups(), np.arange(n))
    for rec in crowd.RECOGNIZERS:
        assert s[f"{rec}_reid_x_chance"] >= missed  # the three originals are their own nearest originals
        assert s[f"{rec}_reid_found_x_chance"] == pytest.approx(v[f"{rec}_reid"][missed:].mean() * n)
        assert s[f"{rec}_reid_found_x_chance"] < s[f"{rec}_reid_x_chance"]
        assert s[f"{rec}_gap_found"] < s[f"{rec}_gap"]
    assert "re-id / chance, found faces" in crowd.format_report(crowd.bootstrap({"leaky": v}, seen.groups(), reps=5))


def test_an_offset_takes_a_part_of_the_split_that_offset_zero_never_took(shared_data):
    with zipfile.ZipFile(shared_data / datasets.UTK_ZIP) as zf:
        first, fresh = incontext.chosen_faces(zf, "holdout", 300), incontext.chosen_faces(zf, "holdout", 300, 1)
    assert len(first) == len(fresh) == 300
    assert not set(first) & set(fresh)
    assert all(in_generator_split(n, "holdout", halved=False) for n in fresh)


def test_an_attacker_aligns_on_the_face_it_finds_in_the_output(face_image, faces, detector_model):
    finder = FaceDetector.from_path(detector_model)
    box, own = faces[0].box, np.asarray(faces[0].landmarks, np.float32)
    far = own + 40.0  # landmarks somewhere else: the attacker does not use them when it finds the face
    found = crowd.attacker_landmarks(finder, face_image, box, far)
    assert np.abs(found - own).max() < 3.0
    blank = np.full_like(face_image, 128)  # no face to find: the original's landmarks stand in
    assert np.array_equal(crowd.attacker_landmarks(finder, blank, box, far), far)
