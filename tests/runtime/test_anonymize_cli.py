"""`edgeanon anonymize` end to end on real faces: images, folders, a video, --boxes, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.cli import main
from edgeanon.video import VideoReader

FACE = (181, 58, 270, 178)  # the astronaut's face (x1, y1, x2, y2)
FPS = 10.0
FRAMES = 8


def face_diff(a: np.ndarray, b: np.ndarray, box=FACE) -> float:
    x1, y1, x2, y2 = box
    return float(np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2]).mean())


def write_video(path: Path, face_image: np.ndarray, fourcc: str = "mp4v") -> list[np.ndarray]:
    """A small panning video of the astronaut (320x240): her face moves 6 px left per frame."""
    frames = [face_image[20:260, 100 + 6 * i: 420 + 6 * i].copy() for i in range(FRAMES)]
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), FPS, (320, 240))
    for f in frames:
        writer.write(f)
    writer.release()
    return frames


def video_face_box(i: int) -> tuple[int, int, int, int]:
    return FACE[0] - 100 - 6 * i, FACE[1] - 20, FACE[2] - 100 - 6 * i, FACE[3] - 20


@pytest.fixture
def cli(detector_model):
    def run(*args: str) -> int:
        return main(["anonymize", *map(str, args), "--detector-model", str(detector_model)])
    return run


def test_image_is_anonymized_outside_untouched(tmp_path, face_image, cli):
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), face_image)
    assert cli(src, "-o", tmp_path / "out", "--method", "blur") == 0
    out = cv2.imread(str(tmp_path / "out" / "astronaut.png"))
    assert out.shape == face_image.shape
    assert face_diff(out, face_image) > 8
    assert np.array_equal(out[300:, :150], face_image[300:, :150])  # far from the face: same pixels


def test_folder_input_keeps_names(tmp_path, face_image, cli):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), face_image)
    cv2.imwrite(str(folder / "b.png"), face_image[::2, ::2])
    assert cli(folder, "-o", tmp_path / "out", "--method", "pixelate") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.png"]


def test_video_keeps_frames_fps_size_and_every_frame_is_anonymized(tmp_path, face_image, cli):
    src = tmp_path / "pan.mp4"
    write_video(src, face_image)
    with VideoReader(src) as r:
        source = [f.image for f in r]
    target = tmp_path / "pan.anon.mp4"
    assert cli(src, "-o", target, "--method", "blur") == 0
    with VideoReader(target) as r:
        assert (r.info.width, r.info.height, r.info.frame_count) == (320, 240, FRAMES)
        assert r.info.fps == pytest.approx(FPS)
        out = [f.image for f in r]
    assert len(out) == FRAMES
    for i, (a, b) in enumerate(zip(out, source, strict=True)):
        assert face_diff(a, b, video_face_box(i)) > 8, f"frame {i}: face unchanged"
    assert not list(tmp_path.glob(".*partial*"))  # the temp file was renamed into place


def test_boxes_anonymize_exactly_those_regions_and_clamp(tmp_path, face_image, cli):
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), face_image)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"astronaut.png": [[400, 400, 600, 600]]}))  # reaches outside: clamped
    assert cli(src, "-o", tmp_path / "out", "--boxes", boxes, "--method", "fill") == 0
    out = cv2.imread(str(tmp_path / "out" / "astronaut.png"))
    assert face_diff(out, face_image) == 0  # no detection: the face was not in the boxes
    assert tuple(out[480, 480]) == (0, 0, 0)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('[[1, 2, 3, 4]]', "expected an object"),
    ('{"astronaut.png": [[1, 2, 3]]}', "is not [x1, y1, x2, y2]"),
    ('{"astronaut.png": [[50, 50, 10, 80]]}', "inverted"),
    ('{"astronaut.png": [[1, 2, "a", 4]]}', "is not [x1, y1, x2, y2]"),
])
def test_malformed_boxes_are_rejected(tmp_path, face_image, cli, capsys, content, message):
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), face_image)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(content)
    assert cli(src, "-o", tmp_path / "out", "--boxes", boxes) == 2
    err = capsys.readouterr().err
    assert message in err and "--boxes" in err and len(err.strip().splitlines()) == 1


def test_box_entirely_outside_the_image_is_an_error_naming_the_file(tmp_path, face_image, cli, capsys):
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), face_image)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"astronaut.png": [[900, 900, 950, 950]]}))
    assert cli(src, "-o", tmp_path / "out", "--boxes", boxes) == 1
    err = capsys.readouterr().err
    assert "astronaut.png" in err and "outside" in err


def test_unopenable_video_is_reported_and_others_still_processed(tmp_path, face_image, cli, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    good = tmp_path / "astronaut.png"
    cv2.imwrite(str(good), face_image)
    assert cli(bad, good, "-o", tmp_path / "out", "--method", "blur") == 1
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "cannot be opened" in err and "Traceback" not in err
    assert (tmp_path / "out" / "astronaut.png").is_file()
    assert not (tmp_path / "out" / "broken.mp4").exists()


def test_truncated_video_stops_cleanly_and_keeps_what_was_written(tmp_path, face_image, cli, capsys):
    full = tmp_path / "full.avi"
    write_video(full, face_image, fourcc="MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    target = tmp_path / "cut.anon.avi"
    assert cli(cut, "-o", target, "--method", "blur") == 1
    err = capsys.readouterr().err
    assert "cut.avi" in err and "truncated" in err
    with VideoReader(target) as r:
        kept = sum(1 for _ in r)
    assert 0 < kept < FRAMES


def test_unwritable_output_is_a_clear_error(tmp_path, face_image, cli, capsys):
    src = tmp_path / "pan.mp4"
    write_video(src, face_image)
    assert cli(src, "-o", tmp_path / "missing" / "dir" / "out.mp4") == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli(src, "-o", tmp_path / "out.xyz") == 1
    assert "cannot write .xyz" in capsys.readouterr().err
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), face_image)
    assert cli(img, "-o", blocker) == 2  # a folder is needed, a file is there
    assert "must be a folder" in capsys.readouterr().err


def test_missing_input_and_no_traceback_in_a_real_process(tmp_path, detector_model):
    proc = subprocess.run(
        [sys.executable, "-m", "edgeanon", "anonymize", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o"),
         "--detector-model", str(detector_model)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "nope.jpg" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_generator_for_gan_is_one_line(tmp_path, face_image, cli, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), face_image)
    assert cli(img, "-o", tmp_path / "o", "--method", "gan", "--generator-model", tmp_path / "none.onnx") == 2
    err = capsys.readouterr().err
    assert "none.onnx" in err and len(err.strip().splitlines()) == 1


def test_redactor_chain_keeps_covering_a_face_the_detector_loses(detector_model, face_image):
    from edgeanon.anonymize import classic
    from edgeanon.config import model_config
    from edgeanon.frames import Frame
    from edgeanon.redactor import Redactor

    # no doubtful tier: the hold alone keeps her covered
    chain = Redactor.from_config(model_config(detector=str(detector_model), method="blur", track=True, hold_s=0.5,
                                              low_threshold=0), video=True)
    for k in range(3):  # seen in three frames: a confirmed face
        first = chain.process(Frame(k, k * 0.04, face_image.copy()))
        assert len(first.faces) == 1 and first.faces[0].method == "blur"
    hidden = face_image.copy()
    classic.fill(hidden, np.array(FACE, np.float32), color=(128, 128, 128), mask_scale=1.4)
    from edgeanon.tracker import iou_matrix

    found = np.array([d.box for d in chain.detector.detect(hidden) if d.confident]).reshape(-1, 4)
    assert not (iou_matrix(found, np.array([FACE])) > 0.1).any()  # the detector no longer sees her face ...
    second = chain.process(Frame(3, 0.12, hidden))
    held = [f for f in second.faces if f.track_id == first.faces[0].track_id]
    assert len(held) == 1 and held[0].box[0] <= FACE[0] + 1  # ... the tracker still covers it
    later = chain.process(Frame(4, 1.0, hidden.copy()))
    assert first.faces[0].track_id not in [f.track_id for f in later.faces]  # until the hold time is over


def test_one_video_into_an_existing_folder_keeps_its_name(tmp_path, face_image, cli):
    src = tmp_path / "pan.mp4"
    write_video(src, face_image)
    (tmp_path / "out").mkdir()
    assert cli(src, "-o", tmp_path / "out", "--method", "fill", "--no-track") == 0
    with VideoReader(tmp_path / "out" / "pan.mp4") as r:
        assert r.info.frame_count == FRAMES


def test_input_without_an_entry_in_boxes_is_an_error_and_not_written(tmp_path, face_image, cli, capsys):
    """Issue 16 item 6: a file the boxes JSON does not name is never copied out untouched."""
    named, missing = tmp_path / "named.png", tmp_path / "missing.png"
    cv2.imwrite(str(named), face_image)
    cv2.imwrite(str(missing), face_image)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"named.png": [list(FACE)]}))
    assert cli(named, missing, "-o", tmp_path / "out", "--boxes", boxes, "--method", "blur") == 1
    err = capsys.readouterr().err
    assert "missing.png" in err and "no entry" in err
    assert not (tmp_path / "out" / "missing.png").exists()
    assert face_diff(cv2.imread(str(tmp_path / "out" / "named.png")), face_image) > 8  # the other one was done


def test_boxes_with_gan_find_landmarks_or_place_the_template_and_report_it(tmp_path, face_image, cli, capsys):
    """Issue 17 item 1: a given box is served by the generator, and the report says how."""
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), face_image)
    empty = (330, 330, 420, 440)  # wall and suit: no face for the detector, a face-sized box all the same
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"astronaut.png": [list(FACE), list(empty), [5, 5, 13, 14]]}))
    report = tmp_path / "report.json"
    assert cli(src, "-o", tmp_path / "out", "--boxes", boxes, "--method", "gan", "--report", report) == 0
    out = cv2.imread(str(tmp_path / "out" / "astronaut.png"))
    assert face_diff(out, face_image) > 8 and face_diff(out, face_image, empty) > 8
    faces = json.loads(report.read_text())["files"][str(src)]["faces"]
    assert [(f["method"], f.get("landmarks")) for f in faces] == [
        ("gan", "detected"), ("gan", "template"), ("blur", None)]  # 8 px: below the generator's minimum
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "3 face(s)" in summary and "gan 2 (landmarks detected 1, template 1)" in summary and "blur 1" in summary
