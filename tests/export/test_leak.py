"""Leak rate and collateral: unchanged faces leak, anonymized ones don't, codec noise changes neither; flat faces
are not counted; changes outside the faces are collateral."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.anonymize import classic
from edgeanon.video import VideoReader, VideoWriter
from export.eval.__main__ import main as eval_main
from export.eval.leak import LeakError, leak_rate
from export.eval.leak_metric import LeakTally, collateral, face_scores

FACE = [181, 58, 270, 178]
FRAMES = 6


def pan(face_image: np.ndarray) -> list[tuple[np.ndarray, list[float]]]:
    """Frames of a 320x240 pan over the astronaut with her face box in each."""
    out = []
    for i in range(FRAMES):
        x0 = 100 + 5 * i
        out.append((face_image[20:260, x0:x0 + 320].copy(), [FACE[0] - x0, FACE[1] - 20, FACE[2] - x0, FACE[3] - 20]))
    return out


def write(path: Path, frames: list[np.ndarray]) -> None:
    with VideoWriter(path, 10.0, (320, 240)) as w:
        for f in frames:
            w.write(f)


@pytest.fixture
def clip(tmp_path, face_image):
    frames = pan(face_image)
    src = tmp_path / "src.mp4"
    write(src, [f for f, _ in frames])
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"frames": [{"index": i, "faces": [{"id": 1, "box": b}, {"id": 2, "box": [0, 0, 8, 8]}]}
                                            for i, (_, b) in enumerate(frames)]}))
    with VideoReader(src) as r:
        decoded = [f.image for f in r]
    return src, truth, decoded, [b for _, b in frames]


def test_reencode_leaks_everything_anonymized_leaks_nothing(tmp_path, clip):
    src, truth, decoded, boxes = clip
    same = tmp_path / "same.mp4"
    write(same, decoded)  # codec noise only
    result = leak_rate(same, src, truth)
    assert result.faces == FRAMES  # the 8 px face doesn't count
    assert result.rate == 1.0 and result.people_rate == 1.0
    assert result.collateral < 0.001  # a re-encode changes nothing by the collateral test
    blurred = [f.copy() for f in decoded]
    for f, b in zip(blurred, boxes, strict=True):
        classic.blur(f, np.array(b, np.float32))
    anon = tmp_path / "anon.mp4"
    write(anon, blurred)
    assert leak_rate(anon, src, truth).rate == 0.0


def test_one_missed_frame_is_counted(tmp_path, clip):
    src, truth, decoded, boxes = clip
    frames = [f.copy() for f in decoded]
    for i, (f, b) in enumerate(zip(frames, boxes, strict=True)):
        if i != 3:
            classic.pixelate(f, np.array(b, np.float32))
    out = tmp_path / "flicker.mp4"
    write(out, frames)
    result = leak_rate(out, src, truth)
    assert result.leaked == 1 and result.rate == pytest.approx(1 / FRAMES)
    assert result.people_rate == 1.0  # that one person was exposed in one frame


def test_folder_of_images_and_the_command(tmp_path, face_image, capsys):
    src_dir, out_dir = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    cv2.imwrite(str(src_dir / "a.png"), face_image)
    cv2.imwrite(str(src_dir / "b.png"), face_image)
    blurred = face_image.copy()
    classic.blur(blurred, np.array(FACE, np.float32))
    cv2.imwrite(str(out_dir / "a.png"), blurred)
    cv2.imwrite(str(out_dir / "b.png"), face_image)
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"a.png": [FACE], "b.png": [FACE]}))
    report = tmp_path / "leak.json"
    assert eval_main(["leak", "--output", str(out_dir), "--source", str(src_dir), "--truth", str(truth),
                      "--json", str(report)]) == 0
    assert "leak rate 50.00%" in capsys.readouterr().out
    assert json.loads(report.read_text())["leaked"] == 1


def test_mismatches_are_clear_errors(tmp_path, clip, capsys):
    src, truth, decoded, _ = clip
    short = tmp_path / "short.mp4"
    write(short, decoded[:3])
    with pytest.raises(LeakError, match="only 3 frames"):
        leak_rate(short, src, truth)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert eval_main(["leak", "--output", str(src), "--source", str(src), "--truth", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err
    with pytest.raises(ValueError, match="320x240"):
        face_scores(np.zeros((240, 320, 3), np.uint8), np.zeros((100, 100, 3), np.uint8), [[0, 0, 50, 50]])


def test_a_flat_face_is_not_counted_and_a_real_one_is(face_image):
    flat = np.full((200, 200, 3), 120, np.uint8)
    (score,) = face_scores(flat, flat, [[50, 50, 110, 110]])
    assert score.flat and not score.leaked  # a heavy blur would not change it: the test cannot tell
    (real,) = face_scores(face_image, face_image, [FACE])
    assert not real.flat and real.leaked and real.ssim == pytest.approx(1.0)
    tally = LeakTally()
    tally.add(flat, flat, [[50, 50, 110, 110]])
    assert tally.faces == 0 and tally.flat == 1


def test_collateral_counts_changes_outside_the_grown_faces_only(face_image):
    out = face_image.copy()
    classic.blur(out, np.array(FACE, np.float32), mask_scale=1.3)  # inside the face grown 1.6x: free
    changed, outside = collateral(out, face_image, [FACE])
    assert changed == 0 and outside > 0
    out[400:450, 0:100] = 255 - out[400:450, 0:100]  # a 100x50 patch of background inverted
    changed, _ = collateral(out, face_image, [FACE])
    assert 0.8 * 5000 < changed <= 5000 + 400


def test_clip_scenes_are_picked_within_the_split_and_the_crowd_kind_needs_crowds():
    from export.eval.clip import pick_images
    from export.eval.leak import CLIP_KINDS

    face = [0, 0, 30, 30]
    boxes = {f"small{i}.jpg": [face] * 5 for i in range(4)} | {f"crowd{i}.jpg": [face] * 45 for i in range(3)}
    assert sorted(pick_images(boxes, 3, 0, 4, 20, min_total=CLIP_KINDS["crowd"]["min_total"])) == [
        "crowd0.jpg", "crowd1.jpg", "crowd2.jpg"]
    assert len(pick_images(boxes, 7, 0, 4, 20, min_total=CLIP_KINDS["clip"]["min_total"])) == 7
    picked = pick_images(boxes, 2, 0, 4, 20, names_filter=lambda n: n.startswith("small"))
    assert len(picked) == 2 and all(n.startswith("small") for n in picked)
    with pytest.raises(ValueError, match="only 3 images .* 40 faces in all"):
        pick_images(boxes, 4, 0, 4, 20, min_total=40)
