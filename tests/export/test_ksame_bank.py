"""The k-Same reference bank: the committed file's format, and a tiny bank rebuilt from UTKFace's tuning faces."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
import torch

from edgeanon.anonymize import crops, gan, ksame
from edgeanon.anonymize.age_cue import AgeCue, normalised
from edgeanon.models import DEFAULT_KSAME_BANK
from export.datasets import UTK_ZIP
from export.splits import generator_holdout
from export.training import age_cue, ksame_bank
from scripts import ksame_bank_pairs


def test_the_committed_bank_is_small_and_covers_tones_and_turns():
    assert DEFAULT_KSAME_BANK.stat().st_size < 5_000_000
    bank = ksame.Bank.load(DEFAULT_KSAME_BANK)
    n = len(bank.images)
    assert n >= 100
    assert bank.images.shape == (n, ksame.REF_SIDE, ksame.REF_SIDE, 3)
    assert np.all(bank.k >= ksame_bank.K)  # nobody's face on their own
    assert np.all((bank.turn >= 0) & (bank.turn <= gan.MAX_TURN))
    assert bank.turn.max() > 0.25  # turned heads are covered, not only frontal ones
    assert bank.ita.min() < 0 and bank.ita.max() > 50  # dark and light skin alike
    assert bank.alpha.max() == 255 and bank.alpha.min() < 64  # opaque on the face, fading where no photo reached
    # Every reference's landmarks are a face's layout near the canvas template.
    assert np.abs(bank.landmarks - ksame.REF_LANDMARKS).max() < 0.3 * ksame.REF_EYES


@pytest.fixture(scope="module")
def tiny(shared_data, detector_model):
    """A bank of 12 references of 3 people from 300 tuning photos, lined up by the 5-point affine map only, plain
    averages (not exaggerated)."""
    photos = ksame_bank.load_photos(shared_data, detector_model, limit=300)
    bank, chosen = ksame_bank.build(photos, 3, 12, align="affine", gain=1.0)
    return photos, bank, chosen


def test_a_rebuilt_bank_holds_averages_of_tuning_faces_only(tiny, tmp_path):
    photos, bank, chosen = tiny
    assert len(photos) > 250 and len(chosen) == 12
    assert not any(generator_holdout(p.name) for p in photos)
    for g in chosen:
        assert len(g) == 3 and len(set(g)) == 3
        people = [photos[i] for i in g]
        assert len({(ksame_bank.band(p.age, ksame_bank.AGE_BANDS), p.gender) for p in people}) == 1
        assert max(p.ita for p in people) - min(p.ita for p in people) <= ksame_bank.MAX_ITA_SPREAD
    path = tmp_path / "bank.npz"
    bank.save(path)
    again = ksame.Bank.load(path)
    assert np.array_equal(again.landmarks, bank.landmarks) and np.array_equal(again.alpha, bank.alpha)
    # Each reference is its people's pixel average where all of them have pixels (the inner face), up to JPEG.
    g = chosen[0]
    inner = crops.ellipse_mask(bank.box, (ksame.REF_SIDE, ksame.REF_SIDE), 0.6) > 0
    mean = np.mean([photos[i].canvas.astype(np.float32) for i in g], axis=0)
    assert np.abs(again.images[0].astype(np.float32) - mean)[inner].mean() < 4.0
    # ... and no single one of them.
    for i in g:
        assert np.abs(again.images[0].astype(np.float32) - photos[i].canvas)[inner].mean() > 4.0


def test_exaggerated_references_move_away_from_their_neighbours_and_keep_their_peoples_tone(tiny):
    photos, plain, chosen = tiny
    bold, again = ksame_bank.build(photos, 3, 12, align="affine")  # the default gain
    assert again == chosen and ksame_bank.EXAGGERATE > 1
    # The choice reads the people's tone, not the exaggerated image's.
    assert np.array_equal(bold.lab, plain.lab) and np.array_equal(bold.landmarks, plain.landmarks)
    inner = crops.ellipse_mask(plain.box, (ksame.REF_SIDE, ksame.REF_SIDE), 0.6) > 0

    def spread(images):
        faces = images.astype(np.float32)[:, inner]
        return np.mean([np.abs(a - b).mean() for i, a in enumerate(faces) for b in faces[i + 1:]])

    assert spread(bold.images) > 1.2 * spread(plain.images)  # the references are further apart
    for r, g in enumerate(chosen):  # and still no single one of their people
        for i in g:
            assert np.abs(bold.images[r].astype(np.float32) - photos[i].canvas)[inner].mean() > 4.0


def test_exaggerate_scales_each_image_away_from_its_neighbours_mean():
    images = np.array([np.full((2, 2, 3), 100), np.full((2, 2, 3), 120), np.full((2, 2, 3), 200)], np.uint8)
    years, turns, itas = np.array([30.0, 30.0, 80.0]), np.zeros(3), np.array([40.0, 40.0, 40.0])
    assert np.array_equal(ksame_bank.exaggerate(images, years, turns, itas, 1.0), images)
    out = ksame_bank.exaggerate(images, years, turns, itas, 2.0).astype(float)
    # Image 0's neighbours' mean is almost all image 1 (same age) and little of image 2 (far older).
    w = np.exp(-0.5 * (np.log1p(80) - np.log1p(30)) ** 2 / ksame_bank.NEIGHBOURHOOD[0] ** 2)
    mean = (120 + w * 200) / (1 + w)
    assert out[0, 0, 0, 0] == pytest.approx(np.clip(mean + 2 * (100 - mean), 0, 255), abs=0.6)
    assert out[1].min() > 120 and out[0].max() < 100  # pushed apart
    assert out[2].min() == 255  # clipped, not wrapped


def laplacian_variance(image: np.ndarray, mask: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F)[mask].var())


def test_references_lined_up_by_shape_are_sharper_and_keep_their_landmarks(tiny):
    photos, affine, chosen = tiny
    assert sum(p.shape is not None for p in photos) > 0.9 * len(photos)  # a plausible 68-point fit for most
    shaped, again = ksame_bank.build(photos, 3, 12, align="shape", gain=1.0)  # each group warped onto its mean shape
    assert again == chosen  # the same people in each reference, only lined up better
    inner = crops.ellipse_mask(affine.box, (ksame.REF_SIDE, ksame.REF_SIDE), 0.6) > 0
    sharper = [laplacian_variance(s, inner) > laplacian_variance(a, inner)
               for s, a in zip(shaped.images, affine.images, strict=True)]
    assert np.mean(sharper) >= 0.75
    # The stored landmarks are where the warp took the people's 5 points: near their mean, not elsewhere.
    assert np.abs(shaped.landmarks - affine.landmarks).max() < 0.1 * ksame.REF_EYES
    # Still no single one of them.
    for r, g in enumerate(chosen):
        for i in g:
            assert np.abs(shaped.images[r].astype(np.float32) - photos[i].canvas)[inner].mean() > 4.0


def test_two_banks_of_the_same_groups_are_compared_pair_by_pair(tiny, shared_data, capsys):
    photos, affine, chosen = tiny
    shaped, _ = ksame_bank.build(photos, 3, 12, align="shape", gain=1.0)
    cache: dict = {}
    first = ksame_bank.measure(photos, affine, chosen, shared_data, cache=cache, refs=4, pairs=True)
    second = ksame_bank.measure(photos, shaped, chosen, shared_data, cache=cache, refs=4, pairs=True)
    for rec in ("sface", "dlib"):
        a, b = first[rec]["pairs"], second[rec]["pairs"]
        assert [p["reference"] for p in a] == [p["reference"] for p in b] and len(a) == 4
        assert all(len(p["contributors"]) == 3 for p in a)  # every person of each checked reference
        share = np.mean(np.concatenate([p["contributors"] for p in a]))
        assert share == pytest.approx(first[rec]["contributor_pair_share"])
    ksame_bank_pairs.contributors(first, second, np.random.default_rng(0))
    out = capsys.readouterr().out
    assert "sface, 4 references: contributor pairs" in out and "dlib, 4 references" in out
    # Banks of other groups are refused: their pairs do not match.
    other = {rec: {**second[rec], "pairs": second[rec]["pairs"][::-1]} for rec in ("sface", "dlib")}
    with pytest.raises(SystemExit):
        ksame_bank_pairs.contributors(first, other, np.random.default_rng(0))


def test_pooled_detail_is_sharper_and_comes_from_other_people(tiny):
    photos = tiny[0]
    # More references than `tiny`, so most have others of their stratum to borrow detail from.
    affine, chosen = ksame_bank.build(photos, 3, 60, align="affine", gain=1.0)
    pooled, again = ksame_bank.build(photos, 3, 60, align="pool", pool=9, gain=1.0)
    assert again == chosen
    # The landmarks stay the affine average's: its coarse face is kept.
    assert np.array_equal(pooled.landmarks, affine.landmarks)
    pools = [ksame_bank.pool_for(photos, chosen, g, 9) for g in chosen]
    for g, pool in zip(chosen, pools, strict=True):
        assert not set(pool) & set(g) and all(photos[i].shape is not None for i in pool)
        assert {ksame_bank.stratum(photos[i]) for i in pool} <= {ksame_bank.stratum(photos[g[0]])}
    inner = crops.ellipse_mask(affine.box, (ksame.REF_SIDE, ksame.REF_SIDE), 0.6) > 0
    has_pool = [r for r, pool in enumerate(pools) if len(pool) >= 6]
    assert len(has_pool) >= 10
    sharper = [laplacian_variance(pooled.images[r], inner) > laplacian_variance(affine.images[r], inner)
               for r in has_pool]
    assert np.mean(sharper) >= 0.75
    # The coarse face is the group's: below DETAIL_SIGMA the two banks agree closely.
    for r in has_pool:
        a, p = (cv2.GaussianBlur(b.images[r].astype(np.float32), (0, 0), 3 * ksame_bank.DETAIL_SIGMA)
                for b in (affine, pooled))
        assert np.abs(a - p)[inner].mean() < 2.0
    # Without any pool the reference is the affine average itself.
    assert np.array_equal(ksame_bank.pooled_detail(photos, chosen[0], affine.images[0], []), affine.images[0])


def test_a_label_typical_bank_keeps_each_labels_middle_tones_and_groups_within_a_label(tiny):
    photos = tiny[0]
    kept = ksame_bank.typical_tone(photos, (20.0, 80.0))
    assert 0.5 * len(photos) < len(kept) < 0.7 * len(photos)
    for race in {p.race for p in photos}:
        itas = np.array([p.ita for p in photos if p.race == race])
        mine = [p.ita for p in kept if p.race == race]
        lo, hi = np.percentile(itas, (20.0, 80.0))
        assert mine and lo <= min(mine) and max(mine) <= hi
    # Dim photos of light skin leave the dark end of ITA: the darkest tenth holds at least twice the share of
    # people labelled black (UTKFace label 1) that it held before (here 0.14 -> 0.40).
    def black_share_of_darkest(ps):
        return np.mean([p.race == 1 for p in sorted(ps, key=lambda p: p.ita)[: len(ps) // 10]])

    assert black_share_of_darkest(kept) > 2 * black_share_of_darkest(photos)
    _, chosen = ksame_bank.build(kept, 3, 12, align="affine", by_label=True)
    assert len(chosen) == 12
    for g in chosen:  # one label, gender and turn band (ages mixed only for the photos left over)
        assert len({(kept[i].race, kept[i].gender, ksame_bank.band(kept[i].turn, ksame_bank.TURN_BANDS))
                    for i in g}) == 1


def test_the_age_cue_learns_from_tuning_photos_and_its_onnx_reads_as_torch_does(tiny, shared_data):
    """The builder's age network on a small bank's photos: each photo drawn as several camera-like views, fitted
    briefly, it reads its photos' ages better than their mean does, and the ONNX bytes the bank stores answer as
    the torch network does."""
    photos, _, _ = tiny
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(shared_data / UTK_ZIP) as zf:
        x = np.stack([age_cue.views(ksame_bank.padded(zf.read(p.name)), p.original_landmarks, rng)
                      for p in photos[:200]])
    years = np.array([p.age for p in photos[:200]], np.float64)
    assert x.shape == (200, age_cue.VIEWS, 64, 64) and x.dtype == np.uint8
    assert not np.array_equal(x[0, 0], x[0, 1])  # views differ
    net = age_cue.fit(x, years, epochs=30)
    cue = AgeCue(age_cue.to_onnx(net))
    with torch.no_grad():
        mine = net(torch.from_numpy(normalised(x[:, 0]))[:, None])[:, 0].numpy()
    assert np.allclose(np.log1p(cue.read(x[:, 0])), np.clip(mine, 0, np.log1p(100)), atol=1e-4)
    error = np.abs(np.log1p(cue.read(x[:, 0])) - np.log1p(years)).mean()
    assert error < np.abs(np.log1p(years).mean() - np.log1p(years)).mean() * 0.8
