"""The k-Same bank's age cue on real portraits (docs/portraits), and the reference choice that follows it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import ksame
from edgeanon.anonymize.age_cue import ARRAY, AgeCue
from edgeanon.detector import FaceDetector
from edgeanon.models import DEFAULT_KSAME_BANK

PORTRAITS = Path(__file__).resolve().parents[2] / "docs" / "portraits"
BACKDROP = (150, 160, 170)
MID_SKIN = np.array([55.0, 14.0, 18.0])  # CIELAB: a medium skin tone


@pytest.fixture(scope="module")
def bank() -> ksame.Bank:
    return ksame.Bank.load(DEFAULT_KSAME_BANK)


@pytest.fixture(scope="module")
def finder(detector_model) -> FaceDetector:
    return FaceDetector.from_path(detector_model, threads=1)


def laid(finder: FaceDetector, name: str, size: int) -> tuple[np.ndarray, object]:
    """A portrait's face shrunk (or enlarged) to `size` px on a plain backdrop, and the face found there."""
    image = cv2.imread(str(PORTRAITS / name))
    face = max(finder.detect(image), key=lambda f: f.score)
    s = size / max(face.box[2] - face.box[0], face.box[3] - face.box[1])
    scaled = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    scene = cv2.copyMakeBorder(scaled, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=BACKDROP)
    return scene, max(finder.detect(scene), key=lambda f: f.score)


def years_at(finder: FaceDetector, cue: AgeCue, name: str, size: int) -> float:
    scene, found = laid(finder, name, size)
    return cue.years(scene, np.asarray(found.landmarks))


def test_the_shipped_bank_records_ages_and_holds_a_cue(bank):
    assert bank.age_cue is not None and bank.age is not None
    assert bank.age.shape == (len(bank.images),)
    assert bank.age.min() < 4 and bank.age.max() > 60  # babies and old people among the references


def test_a_child_is_read_as_a_child_and_younger_than_grown_ups_at_camera_sizes(bank, finder):
    grown = ("grace-hopper.jpg", "obama.jpg", "biden.jpg")  # 70s, 50s, 60s
    for size in (40, 80, 160):
        child = years_at(finder, bank.age_cue, "painted-child.jpg", size)
        adults = [years_at(finder, bank.age_cue, name, size) for name in grown]
        assert child < 13 and min(adults) > child + 5, (size, child, adults)
        assert adults[0] > 50, (size, adults)  # the woman in her 70s reads old


def test_the_reading_holds_still_when_the_landmarks_move_a_pixel(bank, face_image, faces):
    """Frame to frame a detector's landmarks move by about a pixel: the reading moves by far less than an age
    band (AGE_WINDOW is 0.3 in log years)."""
    lm = np.asarray(faces[0].landmarks, np.float64)
    rng = np.random.default_rng(0)
    readings = [np.log1p(bank.age_cue.years(face_image, lm + rng.normal(0.0, 1.0, lm.shape))) for _ in range(12)]
    assert np.std(readings) < 0.2, np.expm1(readings)


def test_the_reference_follows_the_age_reading(bank):
    for seed in range(20):
        assert bank.age[bank.choose(MID_SKIN, 0.05, seed, years=5.0)] < 13
        assert bank.age[bank.choose(MID_SKIN, 0.05, seed, years=70.0)] >= 45
        # Off: the choice is tone and turn alone.
        assert bank.choose(MID_SKIN, 0.05, seed, years=5.0, age_window=0) == bank.choose(MID_SKIN, 0.05, seed)


def test_the_age_window_is_a_setting(face_image, faces, bank):
    lm = np.asarray(faces[0].landmarks)
    assert ksame.KSameFaces(bank).years(face_image, lm) > 13  # the astronaut is a grown-up
    assert ksame.KSameFaces(bank, age_window=0).years(face_image, lm) is None
    with pytest.raises(ValueError, match="age window"):
        ksame.KSameFaces(bank, age_window=-1)


def test_a_tracks_age_reading_is_smoothed_over_its_frames(bank, finder):
    """A track that reads as the child in one frame and as Joe Biden in the next moves only READING_SMOOTHING of the
    way (in log years); an untracked face is read afresh."""
    maker = ksame.KSameFaces(bank)
    (child, c), (adult, a) = laid(finder, "painted-child.jpg", 120), laid(finder, "biden.jpg", 120)
    young, old = (np.log1p(maker.years(img, np.asarray(f.landmarks))) for img, f in ((child, c), (adult, a)))
    assert old - young > 1.0
    maker.choose(child, np.asarray(c.box)[:4], np.asarray(c.landmarks), 1, 1.3, track=4)
    maker.choose(adult, np.asarray(a.box)[:4], np.asarray(a.landmarks), 1, 1.3, track=4)
    assert maker.kept[4][1] == pytest.approx(young + ksame.READING_SMOOTHING * (old - young))
    maker.choose(adult, np.asarray(a.box)[:4], np.asarray(a.landmarks), 1, 1.3)
    assert list(maker.kept) == [4]


def test_a_bank_without_ages_chooses_by_tone_and_turn_alone(tmp_path, bank):
    plain = ksame.Bank(bank.images, bank.landmarks, bank.lab, bank.turn, bank.k, bank.box, bank.alpha)
    plain.save(tmp_path / "plain.npz")
    loaded = ksame.Bank.load(tmp_path / "plain.npz")
    assert loaded.age is None and loaded.age_cue is None
    for seed in range(10):
        assert loaded.choose(MID_SKIN, 0.05, seed, years=5.0) == loaded.choose(MID_SKIN, 0.05, seed)


def test_a_bank_with_a_broken_age_cue_is_refused(tmp_path, bank):
    small = ksame.Bank(bank.images[:4], bank.landmarks[:4], bank.lab[:4], bank.turn[:4], bank.k[:4], bank.box,
                       bank.alpha, bank.age[:4], bank.age_cue)
    small.save(tmp_path / "good.npz")
    assert ksame.Bank.load(tmp_path / "good.npz").age_cue is not None
    with np.load(tmp_path / "good.npz") as z:
        arrays = {name: z[name] for name in z.files}
    np.savez(tmp_path / "garbled.npz", **{**arrays, ARRAY: np.frombuffer(b"not a network" * 9, np.uint8)})
    with pytest.raises(ksame.BankError, match="age cue"):
        ksame.Bank.load(tmp_path / "garbled.npz")
    np.savez(tmp_path / "ages.npz", **{**arrays, "age": arrays["age"][:3]})
    with pytest.raises(ksame.BankError, match="ages"):
        ksame.Bank.load(tmp_path / "ages.npz")
