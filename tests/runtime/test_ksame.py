"""k-Same faces on a real face with the committed reference bank: replaced, by tone and turn, seeded, fail closed."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import Anonymizer, age_cue, crops, gan, grain, ksame, tone
from edgeanon.anonymize.classic import DEFAULT_MASK_SCALE
from edgeanon.config import ModelConfig
from edgeanon.device import camera_chain, share_models
from edgeanon.frames import Detection, Frame
from edgeanon.models import DEFAULT_KSAME_BANK
from edgeanon.redactor import Redactor
from edgeanon.tracker import Track


@pytest.fixture(scope="module")
def bank() -> ksame.Bank:
    assert DEFAULT_KSAME_BANK.is_file(), f"{DEFAULT_KSAME_BANK} is missing: it is committed (git checkout models/)"
    return ksame.Bank.load(DEFAULT_KSAME_BANK)


@pytest.fixture(scope="module")
def maker(bank) -> ksame.KSameFaces:
    return ksame.KSameFaces(bank)


def _skin(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    return tone.target(image, box, "face", DEFAULT_MASK_SCALE)


def _lightness(bgr: np.ndarray, box: np.ndarray) -> float:
    """Median L* (0-100) inside the box's ellipse shrunk to 0.6."""
    r = crops.ellipse_mask(box, bgr.shape[:2], 0.6) > 0
    return float(np.median(tone.lab_of(bgr)[..., 0][r]))


def test_the_face_is_replaced_inside_and_untouched_outside(face_image, faces, maker):
    image = face_image.copy()
    assert maker.replace(image, faces, [5]) == [True]
    box = faces[0].box
    x1, y1, x2, y2 = (int(v) for v in box)
    inner = slice(y1 + (y2 - y1) // 5, y2 - (y2 - y1) // 5), slice(x1 + (x2 - x1) // 5, x2 - (x2 - x1) // 5)
    assert np.abs(image[inner].astype(int) - face_image[inner].astype(int)).mean() > 8
    outside = crops.ellipse_mask(box, image.shape[:2], DEFAULT_MASK_SCALE * 1.05) == 0
    assert np.array_equal(image[outside], face_image[outside])


def test_one_seed_keeps_its_face_and_other_seeds_draw_others(face_image, faces, maker, bank):
    box, lm = faces[0].box, faces[0].landmarks
    picks = [bank.choose(_skin(face_image, box), crops.head_turn(lm), seed) for seed in range(20)]
    assert len(set(picks)) >= 5, picks
    other = next(seed for seed in range(1, 20) if picks[seed] != picks[0])
    a, b, c = (face_image.copy() for _ in range(3))
    maker.replace(a, faces, [0])
    maker.replace(b, faces, [0])
    maker.replace(c, faces, [other])
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 0.5


def test_the_reference_is_chosen_near_the_persons_tone_and_turn(bank):
    dark, light = np.array([30.0, 12.0, 20.0]), np.array([75.0, 12.0, 16.0])
    for seed in range(10):
        for skin in (dark, light):
            i = bank.choose(skin, 0.05, seed)
            nearest = np.min(np.abs(bank.ita - tone.ita(skin)))
            assert abs(bank.ita[i] - tone.ita(skin)) <= nearest + ksame.ITA_WINDOW + 1e-3
        turned = bank.choose(None, -0.4, seed)
        assert abs(bank.turn[turned] - 0.4) <= np.min(np.abs(bank.turn - 0.4)) + ksame.TURN_WINDOW + 1e-3


def test_a_darker_person_gets_a_darker_face(face_image, faces, maker):
    box = faces[0].box
    dark_in = (face_image * 0.45).astype(np.uint8)
    light, dark = face_image.copy(), dark_in.copy()
    maker.replace(light, faces, [3])
    maker.replace(dark, faces, [3])
    assert _lightness(dark, box) < _lightness(light, box) - 15
    assert abs(_lightness(dark, box) - _lightness(dark_in, box)) < 8


def test_a_head_turned_the_other_way_gets_the_mirrored_reference(face_image, faces, maker):
    """The astronaut mirrored gets (about) the mirror image of what the astronaut gets, with the same seed."""
    mirrored = np.ascontiguousarray(face_image[:, ::-1])
    w = face_image.shape[1]
    box = faces[0].box
    lm = faces[0].landmarks[ksame.MIRROR].copy()
    lm[:, 0] = w - lm[:, 0]
    flipped = Detection(np.array([w - box[2], box[1], w - box[0], box[3]], np.float32), 1.0, lm)
    a, b = face_image.copy(), mirrored.copy()
    maker.replace(a, faces, [4])
    maker.replace(b, [flipped], [4])
    x1, y1, x2, y2 = (int(v) for v in box)
    diff = np.abs(a[y1:y2, x1:x2].astype(int) - b[:, ::-1][y1:y2, x1:x2].astype(int)).mean()
    assert diff < 6, diff


def test_turned_heads_and_tiny_faces_get_the_fallback(face_image, faces, maker):
    lm = faces[0].landmarks.copy()
    lm[2, 0] = lm[1, 0]  # the nose level with the right eye: a profile
    assert abs(crops.head_turn(lm)) > gan.MAX_TURN
    profile = Track(1, faces[0].box, lm, 1.0, True)
    tiny = Track(2, np.array([10, 10, 20, 20], np.float32), faces[0].landmarks, 1.0, True)
    anonymizer = Anonymizer("ksame", generator=maker)
    image = face_image.copy()
    redacted = anonymizer.redact(Frame(0, 0.0, image), [profile, tiny])
    assert [f.method for f in redacted.faces] == ["blur", "blur"]
    served = anonymizer.redact(Frame(1, 0.0, face_image.copy()), [Track(3, faces[0].box, faces[0].landmarks, 1.0,
                                                                         True)])
    assert [f.method for f in served.faces] == ["ksame"]


def test_grey_in_grey_out(face_image, faces, maker):
    grey = np.repeat(cv2.cvtColor(face_image, cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2)
    image = grey.copy()
    maker.replace(image, faces, [2])
    assert np.abs(image[..., 0].astype(int) - image[..., 2].astype(int)).max() <= 2


def test_the_chain_serves_ksame_from_the_config(face_image, detector_model):
    chain = Redactor.from_config(ModelConfig(method="ksame", detector=str(detector_model), track=False))
    redacted = chain.process(Frame(0, 0.0, face_image.copy()))
    assert redacted.faces[0].method == "ksame"  # the astronaut (a doubtful candidate beside her gets blur)


def test_a_bank_that_is_not_one_is_refused_in_one_line(tmp_path, face_image):
    with pytest.raises(ksame.BankError, match="not found"):
        ksame.Bank.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a bank")
    with pytest.raises(ksame.BankError, match="not a k-Same reference bank"):
        ksame.Bank.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, format=np.array([ksame.FORMAT]))
    with pytest.raises(ksame.BankError, match="no side"):
        ksame.Bank.load(other)
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), face_image)
    run = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(img), "-o", str(tmp_path / "out"),
                          "--method", "ksame", "--bank", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0
    assert "not a k-Same reference bank" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out" / "in.png").exists()


def test_cameras_of_one_device_share_the_detector_and_one_bank(detector_model):
    chain = Redactor.from_config(ModelConfig(method="ksame", detector=str(detector_model)), video=True)
    _, shared = share_models(chain, cameras=2, wait_s=0.02)
    assert len(shared) == 1  # the detector; the bank is no model to batch
    camera = camera_chain(chain, shared)
    assert camera.anonymizer.generator is not chain.anonymizer.generator
    assert camera.anonymizer.generator.bank is chain.anonymizer.generator.bank


def _eye_mouth_ratio(lm: np.ndarray) -> float:
    """Eye centre to mouth centre distance over the eye distance."""
    lm = np.asarray(lm, np.float64).reshape(5, 2)
    return float(np.hypot(*((lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2)) / np.hypot(*(lm[1] - lm[0])))


def test_the_similarity_map_keeps_the_references_proportions_the_affine_one_takes_the_persons(faces, bank):
    ref = bank.landmarks[0].astype(np.float64)
    person = faces[0].landmarks.astype(np.float64).copy()
    centre = person.mean(0)
    person = centre + (person - centre) * [0.8, 1.3]  # a long, narrow face: eye-mouth far longer than the eyes
    assert _eye_mouth_ratio(person) > _eye_mouth_ratio(ref) * 1.2
    ratios = []
    for shape in (0.0, 0.5, 1.0):
        m = ksame.shape_fit(ref, person, shape)
        warped = ref @ m[:, :2].T + m[:, 2]
        ratios.append(_eye_mouth_ratio(warped))
        # Whatever the shape, the reference lands on the face: its points within a quarter eye distance.
        assert np.abs(warped - person).max() < 0.25 * np.hypot(*(person[1] - person[0])), shape
    assert abs(ratios[0] / _eye_mouth_ratio(ref) - 1) < 1e-6  # similarity: the reference's own proportions
    assert abs(ratios[2] / _eye_mouth_ratio(person) - 1) < 0.05  # affine: the person's
    assert ratios[0] < ratios[1] < ratios[2]
    assert np.allclose(ksame.shape_fit(ref, person, 0.0), crops.similarity_fit(ref, person))
    assert np.allclose(ksame.shape_fit(ref, person, 1.0), crops.affine_fit(ref, person))


def test_a_tracks_stretch_varies_the_references_proportions_not_the_persons_under_the_similarity_map(faces, bank):
    ref = bank.landmarks[0].astype(np.float64)
    person = faces[0].landmarks.astype(np.float64)
    centre = person.mean(0)
    narrow = centre + (person - centre) * [0.8, 1.3]
    wider = np.array([np.log(1.2), 0.0])  # the eyes 1.2x as far apart, the length kept

    def ratio(face, shape, log_stretch):
        m = ksame.face_map(ref, face, shape, log_stretch)
        return _eye_mouth_ratio(ref @ m[:, :2].T + m[:, 2])

    for face in (person, narrow):  # whoever the person is, the reference's proportions, stretched by the track
        assert ratio(face, 0.0, np.zeros(2)) == pytest.approx(_eye_mouth_ratio(ref), rel=1e-6)
        assert ratio(face, 0.0, wider) == pytest.approx(_eye_mouth_ratio(ref) / 1.2, rel=1e-3)
    # The affine map takes the person's, stretched the same way.
    assert ratio(narrow, 1.0, wider) == pytest.approx(_eye_mouth_ratio(narrow) / 1.2, rel=0.05)


def test_the_shape_setting_changes_the_paste_and_nothing_outside(face_image, faces, bank, maker):
    similar = ksame.KSameFaces(bank, person_shape=0.0 if ksame.PERSON_SHAPE > 0.5 else 1.0)
    a, b = face_image.copy(), face_image.copy()
    assert maker.replace(a, faces, [5]) == [True] and similar.replace(b, faces, [5]) == [True]
    outside = crops.ellipse_mask(faces[0].box, a.shape[:2], DEFAULT_MASK_SCALE * 1.05) == 0
    assert np.array_equal(b[outside], face_image[outside])
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.1
    with pytest.raises(ValueError, match="person shape"):
        ksame.KSameFaces(bank, person_shape=1.5)


def test_the_shape_jitter_stretches_each_tracks_face_its_own_way(face_image, faces, bank):
    lm = faces[0].landmarks.astype(np.float64)
    wide = ksame.stretch(lm, [np.log(1.2), 0.0])
    assert np.hypot(*(wide[1] - wide[0])) == pytest.approx(1.2 * np.hypot(*(lm[1] - lm[0])))
    assert _eye_mouth_ratio(wide) == pytest.approx(_eye_mouth_ratio(lm) / 1.2, rel=0.02)
    assert np.allclose(wide.mean(0), lm.mean(0))
    jittered = ksame.KSameFaces(bank, shape_jitter=0.15)
    plain = ksame.KSameFaces(bank, shape_jitter=0.0)
    a, b, c = face_image.copy(), face_image.copy(), face_image.copy()
    jittered.replace(a, faces, [9])
    jittered.replace(b, faces, [9])
    plain.replace(c, faces, [9])
    assert np.array_equal(a, b)  # a track keeps its face
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 0.1  # the same reference, stretched


def test_person_length_gives_the_face_the_references_length_and_keeps_its_width(faces, bank):
    ref = bank.landmarks[0].astype(np.float64)
    person = ksame.stretch(faces[0].landmarks.astype(np.float64), [0.0, np.log(0.8)])  # a short, child-like face
    assert ksame.length_ratio(person) < 0.9 * ksame.length_ratio(ref)
    kept = ksame.stretch(person, [0.0, np.log(ksame.length_ratio(ref) / ksame.length_ratio(person))])
    assert ksame.length_ratio(kept) == pytest.approx(ksame.length_ratio(ref), rel=1e-6)
    assert np.hypot(*(kept[1] - kept[0])) == pytest.approx(np.hypot(*(person[1] - person[0])))
    with pytest.raises(ValueError, match="person length"):
        ksame.KSameFaces(bank, person_length=1.5)


def test_person_length_and_a_jitter_along_and_across_change_the_paste(face_image, faces, bank, maker):
    outputs = []
    for options in ({}, {"person_length": 1.0}, {"shape_jitter": (0.2, 0.35)}):
        out = face_image.copy()
        assert ksame.KSameFaces(bank, **options).replace(out, faces, [9]) == [True]
        outputs.append(out.astype(int))
    assert np.abs(outputs[1] - outputs[0]).mean() > 0.1
    assert np.abs(outputs[2] - outputs[0]).mean() > 0.1
    assert ksame.KSameFaces(bank, shape_jitter=(0.2, 0.2)).shape_jitter.tolist() == [0.2, 0.2]
    same = face_image.copy()
    ksame.KSameFaces(bank, shape_jitter=(ksame.SHAPE_JITTER, ksame.SHAPE_JITTER)).replace(same, faces, [9])
    assert np.array_equal(same, outputs[0])  # one value is both


def test_a_coarser_crown_cover_changes_only_the_hair_above_the_brows(face_image, faces, bank, maker):
    crowned = ksame.KSameFaces(bank, crown_cells=3)
    a, b = face_image.copy(), face_image.copy()
    assert maker.replace(a, faces, [4]) == [True] and crowned.replace(b, faces, [4]) == [True]
    x1, y1, x2, y2 = faces[0].box[:4]
    h = y2 - y1
    diff = np.abs(a.astype(int) - b.astype(int)).sum(2)
    assert diff[: int(y1 + 0.2 * h)].mean() > 0.2  # above the brows: another cover
    below = diff[int(y1 + 0.6 * h):]
    assert below.max() <= 6 and below.mean() < 0.02 * diff[: int(y1 + 0.2 * h)].mean()  # the jaw: as it was (the
    # multi-band blend spreads a trace of the change)
    with pytest.raises(ValueError, match="crown cells"):
        ksame.KSameFaces(bank, crown_cells=0)


def _grainy(face_image: np.ndarray) -> np.ndarray:
    """The astronaut as a grainy camera would give it: seeded sensor noise of 6 grey levels."""
    noise = np.random.default_rng(0).normal(0.0, 6.0, face_image.shape[:2])[:, :, None]
    return np.clip(face_image + noise, 0, 255).astype(np.uint8)


def test_grain_off_is_the_default_and_changes_nothing(face_image, faces, bank, maker):
    assert ksame.GRAIN == 0.0
    a, b = face_image.copy(), face_image.copy()
    maker.replace(a, faces, [5])
    ksame.KSameFaces(bank, grain=0.0, grain_sigma=1.0).replace(b, faces, [5])
    assert np.array_equal(a, b)


def test_grain_brings_the_pasted_faces_fine_residual_to_the_frames_and_nothing_outside(face_image, faces, bank,
                                                                                          maker):
    grainy = _grainy(face_image)
    box = faces[0].box
    frame_level = grain.level(grainy, box)
    smooth, grained, again = grainy.copy(), grainy.copy(), grainy.copy()
    maker.replace(smooth, faces, [5])
    with_grain = ksame.KSameFaces(bank, grain=1.0)
    with_grain.replace(grained, faces, [5])
    with_grain.replace(again, faces, [5])
    assert np.array_equal(grained, again)  # seeded: one track, one grain
    assert grain.level(smooth, box) < 0.6 * frame_level  # the reference alone is smoother than the frame
    assert abs(grain.level(grained, box) - frame_level) < 0.15 * frame_level
    outside = crops.ellipse_mask(box, face_image.shape[:2], ksame.PASTE_RIM[1] * 1.02) == 0
    assert np.array_equal(grained[outside], smooth[outside])
    other = grainy.copy()
    with_grain.replace(other, faces, [6])
    assert not np.array_equal(other, grained)


def test_grain_is_grey_in_a_grey_frame(face_image, faces, bank):
    grey = np.repeat(cv2.cvtColor(_grainy(face_image), cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2)
    ksame.KSameFaces(bank, grain=1.0).replace(grey, faces, [2])
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])


def test_a_bank_of_another_side_is_read_and_serves_the_same_face(tmp_path, face_image, faces, bank):
    """A bank file says its references' side: one drawn at twice the side (what a builder at UTKFace's own
    resolution makes) loads and puts the same reference, as sharp or sharper, where the committed one does."""
    twice = ksame.Bank(np.stack([cv2.resize(im, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
                                 for im in bank.images]), bank.landmarks * 2, bank.lab, bank.turn, bank.k,
                       bank.box * 2, cv2.resize(bank.alpha, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR),
                       bank.age, bank.age_cue)
    twice.save(tmp_path / "twice.npz")
    loaded = ksame.Bank.load(tmp_path / "twice.npz")
    assert loaded.images.shape[1:] == (2 * ksame.REF_SIDE, 2 * ksame.REF_SIDE, 3)
    a, b = face_image.copy(), face_image.copy()
    assert ksame.KSameFaces(bank).replace(a, faces, [5]) == ksame.KSameFaces(loaded).replace(b, faces, [5]) == [True]
    x1, y1, x2, y2 = (int(v) for v in faces[0].box)
    assert np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2].astype(int)).mean() < 4  # the same face
    tiny = ksame.Bank(bank.images[:, ::4, ::4], bank.landmarks / 4, bank.lab, bank.turn, bank.k, bank.box / 4,
                      bank.alpha[::4, ::4])
    tiny.save(tmp_path / "tiny.npz")
    with pytest.raises(ksame.BankError, match="side 40"):
        ksame.Bank.load(tmp_path / "tiny.npz")


def test_the_references_resampling_is_a_setting_that_changes_only_the_paste(face_image, faces, bank):
    with pytest.raises(ValueError, match="interpolation 'nearest'"):
        ksame.KSameFaces(bank, interpolation="nearest")
    with pytest.raises(ValueError, match="max crop"):
        ksame.KSameFaces(bank, max_crop=16)
    out = {}
    for name in ksame.INTERPOLATIONS:
        out[name] = face_image.copy()
        assert ksame.KSameFaces(bank, interpolation=name).replace(out[name], faces, [5]) == [True]
    outside = crops.ellipse_mask(faces[0].box, face_image.shape[:2], DEFAULT_MASK_SCALE * 1.05) == 0
    assert all(np.array_equal(o[outside], face_image[outside]) for o in out.values())
    assert not np.array_equal(out["linear"], out["cubic"])
    x1, y1, x2, y2 = (int(v) for v in faces[0].box)
    lap = {n: cv2.Laplacian(cv2.cvtColor(o[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_32F).var()
           for n, o in out.items()}
    assert lap["cubic"] > lap["linear"] and lap["lanczos"] > lap["linear"]  # an enlargement keeps more detail


def test_a_tracked_face_keeps_its_reference_while_its_readings_wobble(face_image, faces, bank, monkeypatch):
    """Frame to frame the same person reads a little lighter or darker (exposure): chosen afresh the reference
    flips; a tracked face keeps its own until another is clearly better (a much darker frame). The age cue and the
    likeness term are off here so that only the skin-tone reading wobbles."""
    box, lm = faces[0].box, np.asarray(faces[0].landmarks, np.float64)
    keeping = ksame.KSameFaces(bank, age_window=0, unlike=0)
    fresh = ksame.KSameFaces(bank, age_window=0, keep_margin=0, unlike=0)
    rng = np.random.default_rng(3)
    kept, afresh, untracked = [], [], []
    for _ in range(16):
        frame = np.clip(face_image * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)
        kept.append(keeping.choose(frame, box, lm, 5, DEFAULT_MASK_SCALE, track=5)[0])
        afresh.append(fresh.choose(frame, box, lm, 5, DEFAULT_MASK_SCALE, track=5)[0])
        untracked.append(keeping.choose(frame, box, lm, 5, DEFAULT_MASK_SCALE)[0])
    flips = [sum(a != b for a, b in zip(picks, picks[1:], strict=False)) for picks in (kept, afresh)]
    assert flips[1] >= 5 and flips[0] <= 1, (kept, afresh)
    assert untracked == afresh  # a face without a track (a still image) is chosen afresh every time
    dark = (face_image * 0.4).astype(np.uint8)
    assert keeping.choose(dark, box, lm, 5, DEFAULT_MASK_SCALE, track=5)[0] != kept[-1]
    with pytest.raises(ValueError, match="keep margin"):
        ksame.KSameFaces(bank, keep_margin=-1)
    # Memory is bounded: the oldest tracks are forgotten first.
    monkeypatch.setattr(ksame, "KEPT_TRACKS", 3)
    for track in range(10, 15):
        keeping.choose(face_image, box, lm, 5, DEFAULT_MASK_SCALE, track=track)
    assert list(keeping.kept) == [12, 13, 14]


def test_a_tracked_face_is_served_the_kept_reference_through_replace(face_image, faces, bank):
    """replace() reads each face's track id: a Track keeps its reference, a plain Detection does not."""
    maker = ksame.KSameFaces(bank)
    det = faces[0]
    track = Track(7, det.box, det.landmarks, det.score, fresh=True)
    assert maker.replace(face_image.copy(), [track], [7]) == [True]
    assert list(maker.kept) == [7]
    maker.replace(face_image.copy(), [det], [3])
    assert list(maker.kept) == [7]


def test_likeness_is_the_correlation_of_the_interiors_and_a_reference_is_most_like_itself(face_image, faces, bank):
    lm = np.asarray(faces[0].landmarks, np.float64)
    canvas = age_cue.canvas(face_image, lm)
    own = ksame.interiors(np.stack([canvas, canvas, 255 - canvas]))
    assert own[0] @ own[1] == pytest.approx(1.0, abs=1e-4)
    assert own[0] @ own[2] == pytest.approx(-1.0, abs=1e-4)  # the negative is perfectly unlike
    z = bank.likeness(canvas)
    assert z.shape == (len(bank.images),) and abs(z.mean()) < 1e-6 and z.std() == pytest.approx(1.0, abs=1e-3)
    for i in (17, 200):
        assert int(np.argmax(bank.likeness(age_cue.canvas(bank.images[i], bank.landmarks[i])))) == i


def test_unlike_favours_the_references_least_like_the_person_among_those_that_fit(face_image, faces, bank):
    box, lm = faces[0].box, np.asarray(faces[0].landmarks, np.float64)
    z = bank.likeness(age_cue.canvas(face_image, lm))
    plain, unlike = (ksame.KSameFaces(bank, unlike=u) for u in (0.0, 2.0))
    years = plain.years(face_image, lm)
    picks = {u: [m.choose(face_image, box, lm, seed, DEFAULT_MASK_SCALE)[0] for seed in range(40)]
             for u, m in ((0.0, plain), (2.0, unlike))}
    assert z[picks[2.0]].mean() < z[picks[0.0]].mean() - 0.5, (z[picks[2.0]].mean(), z[picks[0.0]].mean())
    # the age is kept: the chosen references are of about the person's age either way
    ages = {u: np.median(np.abs(np.log1p(bank.age[p]) - np.log1p(years))) for u, p in picks.items()}
    assert ages[2.0] < ages[0.0] + 0.15, ages
    assert ksame.KSameFaces(bank).unlike == ksame.UNLIKE > 0  # on by default
    # a tracked face's likeness is smoothed over its frames, as its age is
    noisy = np.clip(face_image + np.random.default_rng(1).normal(0, 12, face_image.shape), 0, 255).astype(np.uint8)
    unlike.choose(face_image, box, lm, 3, DEFAULT_MASK_SCALE, track=9)
    unlike.choose(noisy, box, lm, 3, DEFAULT_MASK_SCALE, track=9)
    first, second = (bank.likeness(age_cue.canvas(img, lm)) for img in (face_image, noisy))
    assert not np.allclose(first, second, atol=0.01)
    assert np.allclose(unlike.kept[9][2], first + ksame.READING_SMOOTHING * (second - first))
    with pytest.raises(ValueError, match="unlike"):
        ksame.KSameFaces(bank, unlike=-1)
